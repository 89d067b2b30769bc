"""Whisper recognizer and DistillMOS on real LJSpeech clips: offline, pinned, and they hear
what users hear."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from tts import mos as MOS
from tts import recognizer as R

CLIPS = ("LJ001-0002", "LJ001-0009")  # short real clips


def _clip(corpus, uid):
    wav, rate = sf.read(corpus / "wavs" / f"{uid}.wav", dtype="float32")
    text = {line.split("|")[0]: line.split("|")[1]
            for line in (corpus / "metadata.csv").read_text().splitlines()}[uid]
    return wav, rate, text


@pytest.fixture(scope="module")
def whisper():
    return R.load_recognizer("whisper")


def test_scoring_normalizes_numbers_abbreviations_and_initialisms():
    assert R.error_rates("He paid 12 dollars in 1462.", "he paid twelve dollars in "
                         "fourteen sixty-two") == {"wer": 0.0, "cer": 0.0}
    assert R.error_rates("Mr. Smith of the FBI", "Mister Smith of the F.B.I.")["wer"] == 0.0
    assert R.error_rates("the cat sat", "the bat sat")["wer"] == pytest.approx(1 / 3)
    assert R.error_rates("hello", "") == {"wer": 1.0, "cer": 1.0}
    with pytest.raises(ValueError, match="no words"):
        R.error_rates("...", "hello")


def test_whisper_hears_real_speech_and_is_deterministic(mini_corpus, whisper, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for uid in CLIPS:
        wav, rate, text = _clip(mini_corpus, uid)
        heard = whisper.transcribe(wav, rate)
        assert R.error_rates(text, heard)["wer"] <= 0.2, (uid, text, heard)
        assert whisper.transcribe(wav, rate) == heard


def test_whisper_hears_nothing_in_noise(whisper):
    noise = np.random.default_rng(0).normal(0, 0.1, 22050).astype(np.float32)
    assert R.error_rates("printing in the only sense", whisper.transcribe(noise, 22050))[
        "wer"] >= 0.8


def test_bundled_model_is_checked_against_pinned_hashes(monkeypatch):
    R.bundled_whisper_model.cache_clear()
    monkeypatch.setitem(R.BUNDLED_WHISPER_SHA256, "config.json", "0" * 64)
    with pytest.raises(R.RecognizerError, match="SHA-256"):
        R.bundled_whisper_model()
    R.bundled_whisper_model.cache_clear()


def test_unknown_recognizer_and_bad_model_folder_are_clear_errors(tmp_path):
    with pytest.raises(R.RecognizerError, match="choose from"):
        R.load_recognizer("kaldi")
    with pytest.raises(R.RecognizerError, match="recognizer_model"):
        R.load_recognizer("whisper", model=tmp_path)


def test_predicted_mos_ranks_recordings_above_degraded_copies(mini_corpus):
    predict = MOS.load_mos_predictor()
    wav, rate, _ = _clip(mini_corpus, CLIPS[0])
    clean = predict(wav, rate)
    noisy = predict(wav + np.random.default_rng(0).normal(0, 0.05, len(wav)), rate)
    assert MOS.MOS_MIN <= noisy < clean - 1.0 <= MOS.MOS_MAX
    assert clean > 3.5  # real studio speech
    assert predict(wav, rate) == clean  # deterministic
    assert math.isnan(predict(np.zeros(100, np.float32), rate))
