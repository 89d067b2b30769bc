"""Objective metrics: MCD with DTW, log-F0 RMSE and voicing error, multi-resolution STFT
distance, PESQ (wide band), STOI, and real-time factor. Word/character error rates and the
recognizers live in `tts.recognizer`, predicted MOS in `tts.mos`.

MCD is computed as the field does (Kubichek 1993; the Merlin/SPTK recipe):

- spectral envelope: WORLD's CheapTrick on the F0 of `tts.audio.pitch` (DIO + StoneMask),
  frame shift = `audio.hop_length`;
- mel-cepstrum: SPTK's `sp2mc` (`pysptk`), all-pass constant `all_pass_constant(rate)`
  (SPTK's best mel-scale fit: 0.455 at 22.05 kHz, 0.41 at 16 kHz), order `MCEP_ORDER` =
  34 (c1..c34; c0, the frame energy, excluded);
- frames paired by dynamic time warping on c1..c34, then per frame
  MCD = 10 / ln(10) * sqrt(2 * sum_d (c_d - c'_d)^2) dB, averaged over the path.

Which ESPnet choice this matches: ESPnet's `evaluate_mcd.py` picks order 34 and all-pass
constant 0.45 at 22.05 kHz and uses the same formula over a DTW path. Its WORLD version
(`world_extract`: CheapTrick envelope, then `pysptk.sp2mc`) is what this module computes
(the only differences: alpha from SPTK's fit, 0.455, and librosa's exact DTW instead of
fastdtw); its later SPTK version takes the mel-cepstra from SPTK's iterative `mcep` on
windowed STFT frames instead. The WORLD route is kept because CheapTrick's envelope does
not depend on where the harmonics fall, so a vocoder's pitch error shows in the F0
columns rather than in MCD. The value does not depend on the mel features (`n_mels`): it
is computed from the waveforms. It does see the whole band up to Nyquist, so a system
that resynthesizes from mels ending at `audio.fmax` cannot go below `band_limit_mcd` (the
recording against its own fmax low-pass: 8.5-10 dB on LJSpeech with fmax 8 kHz at
22.05 kHz; Griffin-Lim copy synthesis scores 11.3 dB there).
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import librosa
import numpy as np
import torch

from tts import audio as A

MCEP_ORDER = 34  # cepstral coefficients compared (c1..c34)
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per natural-log cepstral distance
ENVELOPE_FLOOR = 1e-10  # power floor of the WORLD envelope (digital silence: -100 dB)
PESQ_RATE = 16000  # wide-band PESQ is defined at 16 kHz
BAND_LIMIT_ORDER = 10  # Butterworth order of the fmax low-pass in `band_limit_mcd`


@functools.lru_cache(maxsize=None)
def all_pass_constant(sample_rate: int) -> float:
    """SPTK's all-pass constant that best fits the mel scale at `sample_rate`."""
    import pysptk

    return float(pysptk.util.mcepalpha(sample_rate))


def envelope(wav: np.ndarray, cfg, f0: np.ndarray | None = None,
             voiced: np.ndarray | None = None) -> np.ndarray:
    """(T, fft_size // 2 + 1) WORLD CheapTrick power envelope on the mel frame grid."""
    import pyworld

    x = np.ascontiguousarray(wav, dtype=np.float64)
    if f0 is None:
        f0, voiced = A.pitch(x, cfg)
    f0 = np.ascontiguousarray(np.where(voiced, f0, 0.0), dtype=np.float64)
    times = np.arange(len(f0)) * cfg.hop_length / cfg.sample_rate
    fft_size = pyworld.get_cheaptrick_fft_size(cfg.sample_rate, cfg.f0_min)
    sp = pyworld.cheaptrick(x, f0, times, cfg.sample_rate, f0_floor=cfg.f0_min,
                            fft_size=fft_size)
    return np.maximum(sp, ENVELOPE_FLOOR)


def mel_cepstrum(wav: np.ndarray, cfg, f0: np.ndarray | None = None,
                 voiced: np.ndarray | None = None) -> np.ndarray:
    """(T, MCEP_ORDER) SPTK mel-cepstra c1..c34 of a waveform's WORLD envelope (c0 out)."""
    import pysptk

    sp = envelope(wav, cfg, f0, voiced)
    mc = pysptk.sp2mc(sp, MCEP_ORDER, all_pass_constant(cfg.sample_rate))  # (T, order + 1)
    return mc[:, 1:]


@dataclass
class Alignment:
    """A DTW path between reference frames and synthesized frames."""

    ref: np.ndarray  # (P,) reference frame indices
    syn: np.ndarray  # (P,) synthesized frame indices


def dtw_align(ref_cep: np.ndarray, syn_cep: np.ndarray) -> Alignment:
    _, path = librosa.sequence.dtw(X=ref_cep.T, Y=syn_cep.T, metric="euclidean")
    path = path[::-1]
    return Alignment(path[:, 0], path[:, 1])


def mcd(ref_cep: np.ndarray, syn_cep: np.ndarray, path: Alignment) -> float:
    """Mean mel-cepstral distortion (dB) over the DTW path."""
    diff = ref_cep[path.ref] - syn_cep[path.syn]
    return float(MCD_SCALE * np.mean(np.sqrt(np.sum(diff ** 2, axis=1))))


def f0_errors(ref_wav: np.ndarray, syn_wav: np.ndarray, path: Alignment, cfg,
              ref_pitch=None, syn_pitch=None) -> dict:
    """log-F0 RMSE (natural log, and in cents) over frames voiced in both, and the voicing
    decision error rate, on the DTW-paired frames (pitches: `tts.audio.pitch` results)."""
    ref_f0, ref_voiced = ref_pitch or A.pitch(np.asarray(ref_wav, dtype=np.float64), cfg)
    syn_f0, syn_voiced = syn_pitch or A.pitch(np.asarray(syn_wav, dtype=np.float64), cfg)
    r = np.minimum(path.ref, len(ref_f0) - 1)
    s = np.minimum(path.syn, len(syn_f0) - 1)
    both = ref_voiced[r] & syn_voiced[s]
    voicing_error = float(np.mean(ref_voiced[r] != syn_voiced[s]))
    if not both.any():
        return {"log_f0_rmse": float("nan"), "f0_rmse_cents": float("nan"),
                "voicing_error": voicing_error}
    diff = np.log(syn_f0[s][both]) - np.log(ref_f0[r][both])
    rmse = float(np.sqrt(np.mean(diff ** 2)))
    return {"log_f0_rmse": rmse, "f0_rmse_cents": rmse * 1200 / math.log(2),
            "voicing_error": voicing_error}


def spectral_metrics(ref_wav: np.ndarray, syn_wav: np.ndarray, cfg) -> dict:
    """MCD-DTW and the F0 errors between a recording and a synthesized version of it."""
    ref_pitch = A.pitch(np.asarray(ref_wav, dtype=np.float64), cfg)
    syn_pitch = A.pitch(np.asarray(syn_wav, dtype=np.float64), cfg)
    ref_cep = mel_cepstrum(ref_wav, cfg, *ref_pitch)
    syn_cep = mel_cepstrum(syn_wav, cfg, *syn_pitch)
    path = dtw_align(ref_cep, syn_cep)
    return {"mcd": mcd(ref_cep, syn_cep, path),
            **f0_errors(ref_wav, syn_wav, path, cfg, ref_pitch, syn_pitch)}


def band_limit_mcd(wav: np.ndarray, cfg) -> float:
    """MCD between a recording and itself low-passed at `cfg.fmax`: the least MCD any
    system reaches that resynthesizes from mels ending at fmax (the mel-cepstrum spans the
    whole band to Nyquist). About 9 dB for LJSpeech at 22.05 kHz with fmax 8 kHz."""
    from scipy.signal import butter, sosfiltfilt

    if cfg.fmax >= cfg.sample_rate / 2:
        return 0.0
    sos = butter(BAND_LIMIT_ORDER, cfg.fmax, fs=cfg.sample_rate, output="sos")
    low = sosfiltfilt(sos, np.asarray(wav, dtype=np.float64)).astype(np.float32)
    ref_cep, low_cep = mel_cepstrum(wav, cfg), mel_cepstrum(low, cfg)
    return mcd(ref_cep, low_cep, Alignment(np.arange(len(ref_cep)), np.arange(len(ref_cep))))


def stft_distance(ref_wav: np.ndarray, syn_wav: np.ndarray) -> float:
    """Multi-resolution STFT distance of two time-aligned signals (trimmed to the shorter)."""
    n = min(len(ref_wav), len(syn_wav))
    x = torch.from_numpy(np.asarray(syn_wav[:n], dtype=np.float32))[None]
    y = torch.from_numpy(np.asarray(ref_wav[:n], dtype=np.float32))[None]
    return float(A.stft_distance(x, y))


def _resample(wav: np.ndarray, rate: int, target: int) -> np.ndarray:
    return librosa.resample(np.asarray(wav, dtype=np.float32), orig_sr=rate, target_sr=target)


def pesq_wb(ref_wav: np.ndarray, syn_wav: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, 1.0-4.6); NaN when PESQ finds no speech to compare."""
    from pesq import PesqError, pesq

    n = min(len(ref_wav), len(syn_wav))
    ref, syn = (_resample(w[:n], sample_rate, PESQ_RATE) for w in (ref_wav, syn_wav))
    try:
        return float(pesq(PESQ_RATE, ref, syn, "wb"))
    except PesqError:
        return float("nan")


def stoi(ref_wav: np.ndarray, syn_wav: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi as _stoi

    n = min(len(ref_wav), len(syn_wav))
    return float(_stoi(ref_wav[:n], syn_wav[:n], sample_rate, extended=False))


# ------------------------------------------------------------------------------ speed


@contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t()` -> seconds elapsed inside the block."""
    start = time.perf_counter()
    elapsed = [None]
    yield lambda: elapsed[0] if elapsed[0] is not None else time.perf_counter() - start
    elapsed[0] = time.perf_counter() - start


def real_time_factor(compute_seconds: float, n_samples: int, sample_rate: int) -> float:
    """Compute time over audio duration: below 1 is faster than real time."""
    return compute_seconds / max(n_samples / sample_rate, 1e-9)
