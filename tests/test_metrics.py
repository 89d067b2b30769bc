"""Metrics on known cases: identity gives zero, DTW absorbs a delay, known WER values."""

from __future__ import annotations

import numpy as np
import pytest

from tts import metrics as M
from tts.audio import load_wav
from tts.config import AudioConfig
from tts.recognizer import PocketSphinxRecognizer, error_rates

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
    assert with_dtw < 0.6 * straight


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
    assert error_rates("the cat sat", "the cat sat") == {"wer": 0.0, "cer": 0.0}
    assert error_rates("The cat, sat!", "the bat sat")["wer"] == pytest.approx(1 / 3)
    assert error_rates("one two three four", "one two four")["wer"] == pytest.approx(0.25)
    assert error_rates("hello", "")["wer"] == 1.0
    with pytest.raises(ValueError, match="no words"):
        error_rates("...", "hello")


def test_real_time_factor():
    assert M.real_time_factor(0.5, SR, SR) == pytest.approx(0.5)


def test_recognizer_finds_words_of_real_speech(mini_corpus):
    recognizer = PocketSphinxRecognizer()
    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    text = "in being comparatively modern"
    result = error_rates(text, recognizer.transcribe(wav, SR))
    assert result["wer"] < 0.75  # the floor real speech sets for this small recognizer


def test_pesq_and_stoi_rank_a_clean_copy_above_a_noisy_one(mini_corpus):
    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    noisy = wav + np.random.default_rng(0).normal(0, 0.05, len(wav)).astype(np.float32)
    assert M.pesq_wb(wav, wav, SR) > M.pesq_wb(wav, noisy, SR)
    assert M.stoi(wav, wav, SR) == pytest.approx(1.0, abs=1e-3)
    assert M.stoi(wav, noisy, SR) < 1.0


def _warped_cepstrum(power: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Independent mel-cepstrum of one power envelope (0..pi): resample the log amplitude on
    the all-pass-warped frequency axis, then a cosine transform (no SPTK code). SPTK's
    convention, the one the MCD formula assumes: log|H(w~)| = c0 + sum_m c_m cos(m w~)."""
    bins = len(power)
    omega = np.linspace(0, np.pi, bins)
    dense = np.linspace(0, np.pi, 16 * bins)  # warped axis
    # inverse all-pass warping: linear frequency that maps onto each warped frequency
    linear = dense - 2 * np.arctan(alpha * np.sin(dense) / (1 + alpha * np.cos(dense)))
    log_amp = 0.5 * np.interp(linear, omega, np.log(power))
    m = np.arange(1, order + 1)[:, None]
    return 2 * np.trapezoid(log_amp * np.cos(m * dense), dense, axis=1) / np.pi


def _plain_dtw_mcd(ref: np.ndarray, syn: np.ndarray) -> float:
    """Textbook DTW (steps (1,0), (0,1), (1,1)) and the MCD formula, in plain numpy."""
    cost = np.sqrt(((ref[:, None, :] - syn[None, :, :]) ** 2).sum(-1))
    acc = np.full((len(ref) + 1, len(syn) + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, len(ref) + 1):
        for j in range(1, len(syn) + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j, dists = len(ref), len(syn), []
    while i > 0 and j > 0:
        dists.append(cost[i - 1, j - 1])
        step = np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        i, j = (i - 1, j - 1) if step == 0 else ((i - 1, j) if step == 1 else (i, j - 1))
    return 10 / np.log(10) * np.sqrt(2) * float(np.mean(dists))


def test_mcd_matches_an_independent_warped_cepstrum_computation(mini_corpus):
    """Golden test: SPTK's sp2mc route against a direct numerical all-pass warping of the
    same WORLD envelopes, and librosa's DTW against a textbook one."""
    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)[: SR]  # 1 s of real speech
    noisy = wav + np.random.default_rng(0).normal(0, 0.02, len(wav)).astype(np.float32)
    alpha = M.all_pass_constant(SR)
    assert alpha == pytest.approx(0.455, abs=0.005)
    ceps = {}
    for name, x in (("ref", wav), ("syn", noisy)):
        sp = M.envelope(x, CFG)
        ours = M.mel_cepstrum(x, CFG)
        golden = np.stack([_warped_cepstrum(frame, M.MCEP_ORDER, alpha) for frame in sp])
        assert ours.shape == golden.shape == (len(sp), 34)
        assert np.abs(ours - golden).max() < 0.02 * np.abs(golden).max()
        ceps[name] = golden
    ours = M.spectral_metrics(wav, noisy, CFG)["mcd"]
    assert ours == pytest.approx(_plain_dtw_mcd(ceps["ref"], ceps["syn"]), rel=0.03)
    assert 1.0 < ours < 15.0  # the range published MCDs live in


def test_mcd_scale_does_not_depend_on_n_mels(mini_corpus):
    import dataclasses

    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    noisy = wav + np.random.default_rng(0).normal(0, 0.02, len(wav)).astype(np.float32)
    values = [M.spectral_metrics(wav, noisy, dataclasses.replace(CFG, n_mels=n))["mcd"]
              for n in (40, 80, 128)]
    assert values[0] == pytest.approx(values[1]) == pytest.approx(values[2])


def test_band_limit_floor_of_mcd_on_real_speech(mini_corpus):
    """The mels stop at audio.fmax (8 kHz); the recording against its own low-pass there
    is the MCD no resynthesis from those mels can beat."""
    import dataclasses

    wav = load_wav(mini_corpus / "wavs" / "LJ001-0002.wav", SR)
    floor = M.band_limit_mcd(wav, CFG)
    assert 5.0 < floor < 14.0
    assert M.band_limit_mcd(wav, dataclasses.replace(CFG, fmax=SR / 2)) == 0.0
