"""tts/audio.py: the feature definition (frame grid, mel, pitch, energy, STFT distance, IO)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tts import audio
from tts.config import AudioConfig

CFG = AudioConfig()
SR = CFG.sample_rate
TONE_HZ = 200.0
TONE_SECONDS = 1.0


def tone(freq: float = TONE_HZ, seconds: float = TONE_SECONDS, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 255, 256, 257, 5000, 22050])
def test_mel_frame_count_rule(n):
    mel = audio.mel_spectrogram(torch.zeros(n + 1024), CFG)  # reflect pad needs N > n_fft/2
    assert mel.shape == (CFG.n_mels, 1 + (n + 1024) // CFG.hop_length)
    fitted = audio.fit_to_frames(np.zeros(n, np.float32), CFG.hop_length)
    assert len(fitted) == (1 + n // CFG.hop_length) * CFG.hop_length


def test_mel_batched_matches_single_and_floor():
    x = torch.from_numpy(np.stack([tone(), tone(440.0)]))
    batch = audio.mel_spectrogram(x, CFG)  # (2, n_mels, T)
    assert batch.shape[:2] == (2, CFG.n_mels)
    assert torch.allclose(batch[1], audio.mel_spectrogram(x[1], CFG), atol=1e-5)
    silent = audio.mel_spectrogram(torch.zeros(4096), CFG)
    assert torch.allclose(silent, torch.full_like(silent, np.log(CFG.log_floor)))


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_mel_of_sine_peaks_at_its_mel_bin(freq):
    import torchaudio.functional as AF

    mel = audio.mel_spectrogram(torch.from_numpy(tone(freq)), CFG)  # (n_mels, T)
    peak = int(mel[:, 10:-10].mean(dim=1).argmax())
    fb = AF.melscale_fbanks(CFG.n_fft // 2 + 1, CFG.fmin, CFG.fmax, CFG.n_mels, SR,
                            norm="slaney", mel_scale="slaney")  # (F, n_mels)
    expected = int(fb[round(freq * CFG.n_fft / SR)].argmax())
    assert abs(peak - expected) <= 1


def test_mel_is_differentiable_and_follows_dtype():
    x = torch.from_numpy(tone()).double().requires_grad_()
    mel = audio.mel_spectrogram(x, CFG)
    assert mel.dtype == torch.float64
    mel.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_energy_and_pitch_share_the_mel_grid():
    x = tone()
    frames = audio.mel_spectrogram(torch.from_numpy(x), CFG).shape[-1]
    assert audio.energy(torch.from_numpy(x), CFG).shape == (frames,)
    assert audio.linear_spectrogram(torch.from_numpy(x), CFG).shape == (CFG.n_fft // 2 + 1, frames)
    f0, voiced = audio.pitch(x, CFG)
    assert f0.shape == voiced.shape == (frames,) and voiced.dtype == bool


def test_energy_scales_with_amplitude():
    quiet, loud = (audio.energy(torch.from_numpy(tone(amp=a)), CFG) for a in (0.1, 0.4))
    assert torch.allclose(loud[5:-5], 4 * quiet[5:-5], rtol=1e-3)


def test_pitch_of_200hz_tone():
    f0, voiced = audio.pitch(tone(), CFG)
    assert voiced.mean() > 0.9
    assert abs(np.median(f0[voiced]) - TONE_HZ) < 2.0


def test_pitch_interpolates_unvoiced_gap():
    x = tone(seconds=2.0)
    gap = slice(int(0.8 * SR), int(1.2 * SR))
    x[gap] = 0.0
    f0, voiced = audio.pitch(x, CFG)
    assert not voiced.all()
    assert np.all(f0 > 0) and np.all(np.abs(f0 - TONE_HZ) < 10.0)  # gap filled, edges held
    f0, voiced = audio.pitch(np.zeros(SR, np.float32), CFG)
    assert not voiced.any() and np.all(f0 == CFG.f0_min)


def test_stft_distance():
    x = torch.from_numpy(tone())[None]
    assert audio.stft_distance(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = torch.from_numpy(tone(240.0))[None].requires_grad_()
    d = audio.stft_distance(y, x)
    d.backward()
    assert d.item() > 0.1 and torch.isfinite(y.grad).all()
    other = torch.from_numpy(tone(240.0))[None]
    assert audio.stft_distance(0.9 * x, x) < audio.stft_distance(other, x)  # closer is closer


def test_griffin_lim_inverts_a_mel():
    x = torch.from_numpy(tone(seconds=0.5))
    mel = audio.mel_spectrogram(x, CFG)
    y = audio.griffin_lim(mel, CFG, n_iter=16)
    assert y.shape == (mel.shape[-1] * CFG.hop_length,)
    assert torch.equal(y, audio.griffin_lim(mel, CFG, n_iter=16))  # seeded
    error = (audio.mel_spectrogram(y, CFG)[:, :mel.shape[-1]] - mel)[:, 4:-4].abs().mean()
    assert error < 0.5


def test_wav_round_trip_and_resample(tmp_path):
    x = tone()
    audio.save_wav(tmp_path / "a.wav", torch.from_numpy(x), SR)
    info = sf.info(str(tmp_path / "a.wav"))
    assert info.subtype == "PCM_16" and info.samplerate == SR
    y = audio.load_wav(tmp_path / "a.wav", SR)
    assert y.dtype == np.float32 and y.shape == x.shape and np.abs(y - x).max() < 1e-3
    z = audio.load_wav(tmp_path / "a.wav", SR // 2)
    assert abs(len(z) - len(x) // 2) <= 1
    stereo = np.stack([x, x], axis=1)
    sf.write(str(tmp_path / "s.wav"), stereo, SR)
    assert audio.load_wav(tmp_path / "s.wav", SR).shape == x.shape


def test_bad_wavs_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(audio.AudioError, match="corrupt.wav"):
        audio.load_wav(corrupt, SR)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), SR)
    with pytest.raises(audio.AudioError, match="empty.wav.*empty"):
        audio.load_wav(empty, SR)
    with pytest.raises(audio.AudioError, match="missing.wav"):
        audio.load_wav(tmp_path / "missing.wav", SR)


def test_utterance_features_grid(tmp_path):
    x = tone(seconds=0.7)
    audio.save_wav(tmp_path / "u.wav", x, SR)
    item = audio.utterance_features(tmp_path / "u.wav", CFG)
    frames = 1 + len(x) // CFG.hop_length
    assert item["mel"].shape == (CFG.n_mels, frames)
    assert item["f0"].shape == item["voiced"].shape == item["energy"].shape == (frames,)
    assert item["audio"].shape == (frames * CFG.hop_length,)
    full = audio.mel_spectrogram(torch.from_numpy(item["audio"]), CFG)[:, :frames]
    assert np.allclose(item["mel"], full.numpy(), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU check: no CUDA device here")
def test_mel_and_griffin_lim_on_gpu():
    x = torch.from_numpy(tone())
    cpu = audio.mel_spectrogram(x, CFG)
    gpu = audio.mel_spectrogram(x.cuda(), CFG)
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-3)
    y = audio.griffin_lim(gpu, CFG, n_iter=4)
    assert y.device.type == "cuda" and y.shape == (cpu.shape[-1] * CFG.hop_length,)


def test_very_short_signals_keep_the_frame_rule_and_invert():
    """A one-frame mel (an acoustic model that stopped at once) must not crash anything."""
    from tts.config import AudioConfig

    cfg = AudioConfig()
    for n in (1, 100, cfg.hop_length, cfg.n_fft // 2):
        mel = audio.mel_spectrogram(torch.zeros(n), cfg)
        assert mel.shape == (cfg.n_mels, 1 + n // cfg.hop_length)
    one_frame = torch.full((cfg.n_mels, 1), -5.0)
    assert audio.griffin_lim(one_frame, cfg, n_iter=2).shape == (cfg.hop_length,)
