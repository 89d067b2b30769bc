"""Metrics on known cases: identity gives zero, DTW absorbs a delay, known WER values."""

from __future__ import annotations

import numpy as np
import pytest

from tts import metrics as M
from tts.audio import load_wav
from tts.config import AudioConfig

CFG = AudioConfig()
SR = CFG.sample_rate


def voiced_signal(seconds: float = 1.0, f0: float = 160.0, seed: int = 0) -> np.ndarray:
    """A buzzy vowel-like signal with a slow F0 glide and some noise."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))) / SR
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (0.3 * harmonics / 3 + noise).astype(np.float32)


def test_identical_signals_have_zero_distances():
    wav = voiced_signal()
    result = M.spectral_metrics(wav, wav, CFG)
    assert result["mcd"] == pytest.approx(0.0, abs=1e-6)
    assert result["log_f0_rmse"] == pytest.approx(0.0, abs=1e-6)
    assert result["voicing_error"] == 0.0
    assert M.stft_distance(wav, wav) == pytest.approx(0.0, abs=1e-5)


def test_dtw_absorbs_a_delay_that_frame_by_frame_comparison_does_not():
    wav = voiced_signal(seconds=1.5)
    delay = int(0.2 * SR)
    delayed = np.concatenate([np.zeros(delay, np.float32) + 1e-4, wav])[: len(wav)]
    ref, syn = M.mel_cepstrum(wav, CFG), M.mel_cepstrum(delayed, CFG)
    with_dtw = M.mcd(ref, syn, M.dtw_align(ref, syn))
    n = min(len(ref), len(syn))
    straight = M.mcd(ref, syn, M.Alignment(np.arange(n), np.arange(n)))
    assert with_dtw < 0.5 * straight


def test_mcd_grows_with_distortion():
    wav = voiced_signal()
    rng = np.random.default_rng(1)
    light = wav + rng.normal(0, 0.01, len(wav)).astype(np.float32)
    heavy = wav + rng.normal(0, 0.1, len(wav)).astype(np.float32)
    assert 0 < M.spectral_metrics(wav, light, CFG)["mcd"] < M.spectral_metrics(wav, heavy, CFG)["mcd"]


def test_octave_error_is_1200_cents():
    low, high = voiced_signal(f0=120.0), voiced_signal(f0=240.0)
    ref_cep = M.mel_cepstrum(low, CFG)
    path = M.Alignment(np.arange(len(ref_cep)), np.arange(len(ref_cep)))
    errors = M.f0_errors(low, high, path, CFG)
    assert errors["f0_rmse_cents"] == pytest.approx(1200, rel=0.05)


def test_error_rates_known_cases():
    assert M.error_rates("the cat sat", "the cat sat") == {"wer": 0.0, "cer": 0.0}
    assert M.error_rates("The cat, sat!", "the bat sat")["wer"] == pytest.approx(1 / 3)
    assert M.error_rates("one two three four", "one two four")["wer"] == pytest.approx(0.25)
    assert M.error_rates("hello", "")["wer"] == 1.0
    with pytest.raises(ValueError, match="no words"):
        M.error_rates("...", "hello")


def test_real_time_factor():
    assert M.real_time_factor(0.5, SR, SR) == pytest.approx(0.5)


def test_recognizer_finds_words_of_real_speech(mini_corpus):
    recognizer = M.Recognizer()
    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    text = "in being comparatively modern"
    result = M.error_rates(text, recognizer.transcribe(wav, SR))
    assert result["wer"] < 0.75  # the floor real speech sets for this small recognizer


def test_pesq_and_stoi_rank_a_clean_copy_above_a_noisy_one(mini_corpus):
    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    noisy = wav + np.random.default_rng(0).normal(0, 0.05, len(wav)).astype(np.float32)
    assert M.pesq_wb(wav, wav, SR) > M.pesq_wb(wav, noisy, SR)
    assert M.stoi(wav, wav, SR) == pytest.approx(1.0, abs=1e-3)
    assert M.stoi(wav, noisy, SR) < 1.0
