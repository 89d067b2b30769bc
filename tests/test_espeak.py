"""The eSpeak NG binding: sample rate, determinism (also across processes), IPA, errors."""

import multiprocessing

import numpy as np
import pytest

from tts import espeak

SENTENCE = "The quick brown fox jumps over the lazy dog."


def _synth_bytes(args):
    return espeak.synthesize(*args).tobytes()


def test_sample_rate_and_output():
    assert espeak.SAMPLE_RATE == espeak.sample_rate() == 22050
    audio = espeak.synthesize(SENTENCE, "en-us", 160, 50)
    assert audio.dtype == np.int16 and audio.ndim == 1
    seconds = len(audio) / espeak.SAMPLE_RATE
    assert 1.0 < seconds < 6.0, seconds  # nine words at 160 wpm
    assert np.abs(audio.astype(np.int32)).max() > 1000  # not silence


def test_same_arguments_give_identical_bytes():
    first = espeak.synthesize(SENTENCE, "en-us", 170, 45).tobytes()
    espeak.synthesize("Something else entirely, and louder!", "en", 230, 80)
    espeak.to_ipa("interleaved phonemization")
    again = espeak.synthesize(SENTENCE, "en-us", 170, 45).tobytes()
    assert first == again


def test_identical_in_worker_processes():
    args = (SENTENCE, "en-us", 150, 55)
    here = _synth_bytes(args)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        there = pool.map(_synth_bytes, [args, args, (SENTENCE, "en-us", 200, 55)])
    assert there[0] == here and there[1] == here
    assert len(there[2]) < len(here)  # faster speech is shorter


def test_rate_and_pitch_change_the_audio():
    slow = espeak.synthesize(SENTENCE, "en-us", 120, 50)
    fast = espeak.synthesize(SENTENCE, "en-us", 240, 50)
    assert len(fast) < 0.75 * len(slow)
    high = espeak.synthesize(SENTENCE, "en-us", 160, 90)
    low = espeak.synthesize(SENTENCE, "en-us", 160, 10)
    assert high.tobytes() != low.tobytes()


def test_ipa():
    ipa = espeak.to_ipa("hello world")
    assert ipa.count(" ") == 1 and "ˈ" in ipa and ipa.startswith("h")
    words = espeak.to_phonemes("cat")
    assert words == [["k", "ˈæ", "t"]]


def test_errors_are_clear(monkeypatch):
    with pytest.raises(espeak.EspeakError, match="no voice 'xx-nonexistent'"):
        espeak.synthesize("hello", "xx-nonexistent", 160, 50)
    with pytest.raises(ValueError, match="rate_wpm"):
        espeak.synthesize("hello", "en-us", 5, 50)
    with pytest.raises(ValueError, match="pitch"):
        espeak.synthesize("hello", "en-us", 160, 150)
    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak.so")
    with pytest.raises(espeak.EspeakError, match="/nonexistent/libespeak.so"):
        espeak._Engine()
