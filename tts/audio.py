"""THE feature definition: wav IO, log-mel, linear spectrogram, energy, F0, STFT distance
and Griffin-Lim. Every stage and model computes features through this module only.

Conventions (the feature contract, `audio:` in params.yaml):
- STFT: Hann window of `win_length`, `n_fft` points, hop `hop_length`, `center=True` with
  reflect padding, so a signal of N samples has T = 1 + N // hop frames and frame i is
  centred on sample i * hop.
- Mel: magnitude (power 1) STFT through a Slaney-style filterbank (librosa's default,
  area-normalized triangles on the Slaney mel scale) between fmin and fmax; log-mel is the
  natural log of max(mel, log_floor). Magnitude rather than power keeps the log-mel range
  compact (the common choice of Tacotron 2 / HiFi-GAN style recipes).
- F0: WORLD's DIO followed by StoneMask refinement (Morise et al., 2016) on the same frame
  grid; unvoiced frames are linearly interpolated between voiced neighbours (edges held)
  and flagged by a boolean `voiced` array.
- Energy: the L2 norm over frequency of each frame's STFT magnitude.

`cfg` arguments are duck-typed: any object with `sample_rate n_fft hop_length win_length
n_mels fmin fmax log_floor` (`tts.config.AudioConfig` or a model config carrying the
contract fields); `pitch` also needs `f0_min f0_max`.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from tqdm import tqdm

# Multi-resolution STFT settings (n_fft, hop, win) for `stft_distance`, as in the Parallel
# WaveGAN / Parallel WaveNet style spectral losses.
STFT_RESOLUTIONS_FINE = (512, 128, 512)
STFT_RESOLUTIONS_MEDIUM = (1024, 256, 1024)
STFT_RESOLUTIONS_COARSE = (2048, 512, 2048)
DEFAULT_STFT_RESOLUTIONS = (STFT_RESOLUTIONS_FINE, STFT_RESOLUTIONS_MEDIUM,
                            STFT_RESOLUTIONS_COARSE)

STFT_EPS = 1e-7  # magnitude floor inside stft_distance (log and division safety)
PCM16_SUBTYPE = "PCM_16"
# DIO decimates the signal by `speed` before its F0 search; 4 keeps the analysis rate
# above 5 kHz at 22.05 kHz (F0 <= 800 Hz), ~7x faster than speed 1 with matching F0
# after StoneMask refinement (see benchmarks/features.py).
DIO_TARGET_RATE = 5000.0
# Parallel extraction: utterances per task handed to a worker, at most EXTRACT_MAX_CHUNK and
# small enough that each worker gets ~EXTRACT_CHUNKS_PER_WORKER tasks (load balance).
EXTRACT_MAX_CHUNK = 16
EXTRACT_CHUNKS_PER_WORKER = 8


class AudioError(ValueError):
    """An unreadable, empty or unusable audio file; the message names the file."""


# ------------------------------------------------------------------------------- wav IO


def load_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a wav as mono float32 (N,) in [-1, 1] at `sample_rate` (resampled if needed)."""
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:  # what libsndfile raises
        raise AudioError(f"{path}: cannot read audio ({exc}); re-export it as a wav "
                         f"file or drop the utterance") from exc
    audio = audio.mean(axis=1)  # (N,) mono
    if audio.size == 0:
        raise AudioError(f"{path}: audio file is empty (0 samples); drop the utterance")
    if file_rate != sample_rate:
        audio = AF.resample(torch.from_numpy(audio), file_rate, sample_rate).numpy()
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)


def save_wav(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write mono audio (N,) in [-1, 1] as 16-bit PCM (values outside are clipped)."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    audio = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate, subtype=PCM16_SUBTYPE)


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frame count of an N-sample signal under the centred STFT: T = 1 + N // hop."""
    return 1 + n_samples // hop_length


def fit_to_frames(audio: np.ndarray, hop_length: int) -> np.ndarray:
    """Zero-pad/trim audio (N,) to exactly T * hop samples, T = 1 + N // hop (the grid rule)."""
    length = n_frames(len(audio), hop_length) * hop_length
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


# --------------------------------------------------------------------------- spectrograms


def _key(cfg) -> tuple:
    return (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.win_length, cfg.n_mels,
            float(cfg.fmin), float(cfg.fmax))


@functools.lru_cache(maxsize=None)
def _window(win_length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(win_length, device=device, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _mel_basis(key: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney filterbank, cached per (config, device, dtype)."""
    sample_rate, n_fft, _, _, n_mels, fmin, fmax = key
    fb = AF.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sample_rate,
                            norm="slaney", mel_scale="slaney")  # (n_freqs, n_mels)
    return fb.T.contiguous().to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _mel_pinv(key: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) pseudo-inverse of the filterbank, for Griffin-Lim."""
    basis = _mel_basis(key, torch.device("cpu"), torch.float64)
    return torch.linalg.pinv(basis).to(device=device, dtype=dtype)


def _stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """(..., N) -> (..., n_fft // 2 + 1, 1 + N // hop) centred, reflect-padded |STFT|."""
    shape, n = audio.shape, audio.shape[-1]
    flat = audio.reshape(-1, n)  # (B, N)
    shortfall = n_fft // 2 + 1 - n
    if shortfall > 0:  # reflect padding needs more than half a window: extend with silence
        flat = F.pad(flat, (0, shortfall))
    spec = torch.stft(flat, n_fft, hop, win, _window(win, audio.device, audio.dtype),
                      center=True, pad_mode="reflect", return_complex=True)
    spec = spec[..., : 1 + n // hop]  # the frame-count rule holds for short signals too
    return spec.abs().reshape(*shape[:-1], *spec.shape[-2:])  # (..., F, T)


def _as_tensor(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(audio)) if isinstance(audio, np.ndarray) else audio


def linear_spectrogram(audio: torch.Tensor, cfg) -> torch.Tensor:
    """Magnitude STFT: (..., N) -> (..., n_fft // 2 + 1, 1 + N // hop)."""
    return _stft_magnitude(_as_tensor(audio), cfg.n_fft, cfg.hop_length, cfg.win_length)


def mel_spectrogram(audio: torch.Tensor, cfg) -> torch.Tensor:
    """THE log-mel: (..., N) -> (..., n_mels, 1 + N // hop), natural log, floored.

    Differentiable and device-agnostic (the filterbank follows the input's device/dtype).
    """
    return _log_mel(linear_spectrogram(audio, cfg), cfg)


def _log_mel(magnitude: torch.Tensor, cfg) -> torch.Tensor:
    """(..., F, T) STFT magnitude -> (..., n_mels, T) floored natural-log mel."""
    mel = _mel_basis(_key(cfg), magnitude.device, magnitude.dtype) @ magnitude
    return torch.log(torch.clamp(mel, min=cfg.log_floor))


def energy(audio: torch.Tensor, cfg) -> torch.Tensor:
    """Frame energy, the L2 norm of each STFT magnitude frame: (..., N) -> (..., T)."""
    return torch.linalg.vector_norm(linear_spectrogram(audio, cfg), dim=-2)


# --------------------------------------------------------------------------------- pitch


def pitch(audio: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz on the mel frame grid: audio (N,) -> (f0 (T,) float32, voiced (T,) bool).

    DIO + StoneMask with the search range [cfg.f0_min, cfg.f0_max] and a frame period of
    hop / sample_rate, forced to T = 1 + N // hop frames. Unvoiced frames are linearly
    interpolated from their voiced neighbours (edges hold the nearest voiced value); an
    utterance without any voiced frame gets f0 = f0_min everywhere (all `voiced` False).
    """
    import pyworld  # imported here: only the features stage and metrics need it

    x = np.ascontiguousarray(audio, dtype=np.float64)
    period_ms = 1000.0 * cfg.hop_length / cfg.sample_rate
    speed = max(1, int(cfg.sample_rate // DIO_TARGET_RATE))
    f0, times = pyworld.dio(x, cfg.sample_rate, f0_floor=cfg.f0_min, f0_ceil=cfg.f0_max,
                            frame_period=period_ms, speed=speed)
    f0 = pyworld.stonemask(x, f0, times, cfg.sample_rate)
    count = n_frames(len(x), cfg.hop_length)
    if len(f0) < count:  # DIO's frame count can differ by one at the end: hold the edge
        f0 = np.pad(f0, (0, count - len(f0)))
    f0 = f0[:count]
    voiced = f0 > 0
    if not voiced.any():
        return np.full(count, cfg.f0_min, dtype=np.float32), voiced
    frames = np.arange(count)
    f0 = np.interp(frames, frames[voiced], f0[voiced])  # holds edges
    return f0.astype(np.float32), voiced


# ------------------------------------------------------------------------ STFT distance


def stft_distance(x: torch.Tensor, y: torch.Tensor,
                  resolutions=DEFAULT_STFT_RESOLUTIONS) -> torch.Tensor:
    """Multi-resolution STFT distance between audio x and reference y, both (..., N).

    Per resolution: spectral convergence ||Y - X||_F / ||Y||_F plus the mean absolute
    log-magnitude difference; averaged over resolutions (and the batch). Differentiable:
    a loss (Parallel WaveNet) and a metric (noise-schedule search, evaluation).
    """
    total = x.new_zeros(())
    for n_fft, hop, win in resolutions:
        mx = _stft_magnitude(x, n_fft, hop, win).clamp(min=STFT_EPS)  # (..., F, T)
        my = _stft_magnitude(y, n_fft, hop, win).clamp(min=STFT_EPS)
        dims = (-2, -1)
        convergence = (torch.linalg.vector_norm(my - mx, dim=dims)
                       / torch.linalg.vector_norm(my, dim=dims))
        log_l1 = (torch.log(my) - torch.log(mx)).abs().mean(dim=dims)
        total = total + (convergence + log_l1).mean()
    return total / len(resolutions)


def loudness_distance(x: torch.Tensor, y: torch.Tensor,
                      resolutions=DEFAULT_STFT_RESOLUTIONS) -> torch.Tensor:
    """Mean |log frame energy(x) - log frame energy(y)|, x and y (..., N), per resolution
    (frame energy: the sum of |STFT|^2 over frequency), averaged over resolutions.

    A loudness envelope: for white noise against speech it is least at the speech's own
    level, and its gradient does not vanish as x goes quiet (log energy), unlike the
    log-magnitude term of `stft_distance`, which scores flat-spectrum noise better the
    quieter it is (speech's quiet bins outnumber its loud ones), and unlike a linear power
    spectrum, whose gradient shrinks with the amplitude.
    """
    total = x.new_zeros(())
    for n_fft, hop, win in resolutions:
        ex = _stft_magnitude(x, n_fft, hop, win).pow(2).sum(-2)  # (..., T)
        ey = _stft_magnitude(y, n_fft, hop, win).pow(2).sum(-2)
        floor = STFT_EPS ** 2 * (n_fft // 2 + 1)
        total = total + (torch.log(ex + floor) - torch.log(ey + floor)).abs().mean()
    return total / len(resolutions)


# --------------------------------------------------------------------------- Griffin-Lim


def griffin_lim(log_mel: torch.Tensor, cfg, n_iter: int = 32, momentum: float = 0.99,
                seed: int | None = 0) -> torch.Tensor:
    """Invert a log-mel (n_mels, T) to audio (T * hop,) with Griffin-Lim (1984).

    The linear magnitude is the filterbank pseudo-inverse applied to exp(log_mel), clamped
    at zero (one matmul: much faster than torchaudio's iterative InverseMelScale, and as
    good once Griffin-Lim's phase iterations run); then torchaudio's fast Griffin-Lim
    (momentum, Perraudin et al., 2013). `seed` fixes the random initial phase (None: the
    global RNG) so a given mel always gives the same audio.
    """
    mel = torch.exp(log_mel.float())  # (n_mels, T)
    linear = (_mel_pinv(_key(cfg), mel.device, mel.dtype) @ mel).clamp(min=0)  # (F, T)
    frames = mel.shape[-1]
    min_frames = cfg.n_fft // cfg.hop_length + 1  # the iSTFT needs a window's worth of signal
    linear = F.pad(linear, (0, max(min_frames - frames, 0)))  # silent frames, trimmed below
    devices = [mel.device] if mel.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        audio = AF.griffinlim(linear, _window(cfg.win_length, mel.device, mel.dtype),
                              cfg.n_fft, cfg.hop_length, cfg.win_length, power=1.0,
                              n_iter=n_iter, momentum=momentum, length=None,
                              rand_init=True)  # ((T - 1) * hop,): the centred iSTFT length
    audio = F.pad(audio, (0, max(frames * cfg.hop_length - audio.shape[-1], 0)))
    return audio[: frames * cfg.hop_length].clamp(-1.0, 1.0)  # (T * hop,)


# ------------------------------------------------------------------- corpus extraction


def utterance_features(path: str | Path, cfg) -> dict[str, np.ndarray]:
    """All stored features of one wav, on one frame grid (the features stage's unit).

    The audio is zero-padded to T * hop samples (T = 1 + N // hop of the file's N); mel,
    energy and F0 are computed on that padded audio and cut to its first T frames, so
    `mel == mel_spectrogram(audio)[..., :T]` holds for the stored pair.
    """
    audio = fit_to_frames(load_wav(path, cfg.sample_rate), cfg.hop_length)
    frames = len(audio) // cfg.hop_length
    with torch.no_grad():
        magnitude = linear_spectrogram(torch.from_numpy(audio), cfg)[:, :frames]  # (F, T)
        log_mel = _log_mel(magnitude, cfg)  # (n_mels, T)
        frame_energy = torch.linalg.vector_norm(magnitude, dim=0)  # (T,)
    f0, voiced = pitch(audio, cfg)
    return {"mel": log_mel.numpy(), "f0": f0[:frames], "voiced": voiced[:frames],
            "energy": frame_energy.numpy(), "audio": audio}


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core; intra-op threads would oversubscribe


def _extract_job(job: tuple) -> dict[str, np.ndarray]:
    path, cfg = job
    return utterance_features(path, cfg)


def extract_many(paths: list[Path], cfg, workers: int = 0, desc: str = "features"):
    """Yield `utterance_features` of every path, in order, over `workers` processes.

    workers: 0 = all cores; 1 = in this process. Each worker runs torch on one thread,
    which also makes the output independent of the worker count (bit-identical).
    """
    if not workers:  # the cores this process may use (affinity), else all
        affinity = getattr(os, "sched_getaffinity", None)
        workers = len(affinity(0)) if affinity else os.cpu_count() or 1
    jobs = [(p, cfg) for p in paths]
    bar = tqdm(total=len(jobs), desc=desc, unit="utt", smoothing=0.05)
    if workers == 1 or len(jobs) <= 1:
        threads = torch.get_num_threads()
        _init_worker()
        try:
            for job in jobs:
                item = _extract_job(job)
                bar.update()
                yield item
        finally:
            torch.set_num_threads(threads)
            bar.close()
        return
    # fork: workers start in milliseconds (spawn would re-import torch in each)
    method = "fork" if "fork" in mp.get_all_start_methods() else None
    chunksize = max(1, min(EXTRACT_MAX_CHUNK, len(jobs) // (workers * EXTRACT_CHUNKS_PER_WORKER)))
    with mp.get_context(method).Pool(workers, initializer=_init_worker) as pool:
        try:
            for item in pool.imap(_extract_job, jobs, chunksize=chunksize):
                bar.update()
                yield item
        finally:
            bar.close()
