"""Piper's VITS voice: pinned model, seeded noise (same seed, same bytes; any order), speech."""

import hashlib

import numpy as np
import pytest

from tts import piper_voice
from tts.config import BuiltinCorpusConfig

SENTENCE = "the quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def voice():
    return piper_voice.load()


def _speak(voice, seed, noise=(0.667, 0.8), length=1.0, text=SENTENCE):
    return voice.speak(text, length, *noise, np.random.default_rng(seed))


def test_speech_at_the_voice_rate(voice):
    audio = _speak(voice, 0)
    assert voice.sample_rate == piper_voice.SAMPLE_RATE == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < audio.size / voice.sample_rate < 5.0  # nine words
    assert np.isclose(np.abs(audio).max(), piper_voice.PEAK, atol=1e-6)


def test_seeded_noise_is_repeatable_in_any_order(voice):
    first = _speak(voice, 7).tobytes()
    _speak(voice, 8, text="something else entirely, to move any hidden generator on.")
    assert _speak(voice, 7).tobytes() == first  # the graph's own generators are gone
    assert _speak(voice, 9).tobytes() != first  # the seed is what varies it
    quiet = _speak(voice, 7, noise=(0.0, 0.0)).tobytes()
    assert quiet != first and _speak(voice, 9, noise=(0.0, 0.0)).tobytes() == quiet


def test_length_scale_slows_speech(voice):
    normal = _speak(voice, 0, noise=(0.0, 0.0)).size
    slow = _speak(voice, 0, noise=(0.0, 0.0), length=1.3).size
    assert 1.15 < slow / normal < 1.45


def test_utterance_settings_depend_only_on_its_key(voice):
    cfg = BuiltinCorpusConfig(seed=3)
    a = piper_voice.speak_utterance(voice, cfg, SENTENCE, 1, 5)
    piper_voice.speak_utterance(voice, cfg, SENTENCE, 1, 6)
    assert piper_voice.speak_utterance(voice, cfg, SENTENCE, 1, 5).tobytes() == a.tobytes()
    assert piper_voice.speak_utterance(voice, cfg, SENTENCE, 2, 5).tobytes() != a.tobytes()


def test_model_hash_is_checked(tmp_path):
    model, config = piper_voice.voice_files()
    assert hashlib.sha256(model.read_bytes()).hexdigest() == piper_voice.MODEL_SHA256
    fake = tmp_path / "en_US-joe-medium.onnx"
    fake.write_bytes(b"not the voice")
    with pytest.raises(piper_voice.VoiceError, match="en_US-joe-medium.onnx: sha256 .* pinned"):
        piper_voice.load(fake, config)
