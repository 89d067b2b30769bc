"""Objective metrics: MCD with DTW, log-F0 RMSE and voicing error, multi-resolution STFT
distance, PESQ (wide band), STOI, word/character error rate of an offline recognizer, and
real-time factor.

Mel-cepstra are the orthonormal DCT-II of the project's own log-mel (natural log of the
mel *magnitude*, `tts.audio.mel_spectrogram`), coefficients 1..`MCEP_ORDER` (c0, the
frame energy, is excluded). In natural-log-amplitude units the usual definition
MCD = 10 / ln(10) * sqrt(2 * sum_d (c_d - c'_d)^2) applies per frame (dB); frames are
paired by dynamic time warping on the cepstra, so a delayed or re-timed copy is compared
with the right frames. This is a DCT mel-cepstrum rather than SPTK's all-pass-warped one;
values are comparable within this project, and of the same order as published MCDs.
"""

from __future__ import annotations

import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass

import jiwer
import librosa
import numpy as np
import torch

from tts import audio as A

MCEP_ORDER = 24  # cepstral coefficients compared (c1..c24)
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per natural-log cepstral distance
PESQ_RATE = 16000  # wide-band PESQ is defined at 16 kHz
ASR_RATE = 16000  # PocketSphinx's bundled en-us model
PCM16_MAX = 32767


def mel_cepstrum(wav: np.ndarray, cfg) -> np.ndarray:
    """(T, MCEP_ORDER) DCT mel-cepstra of a waveform, c0 excluded."""
    log_mel = A.mel_spectrogram(torch.from_numpy(np.asarray(wav, dtype=np.float32)), cfg)
    cepstra = librosa.feature.mfcc(S=log_mel.numpy().astype(np.float64), n_mfcc=MCEP_ORDER + 1,
                                   dct_type=2, norm="ortho")  # (order + 1, T)
    return cepstra[1:].T


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


def f0_errors(ref_wav: np.ndarray, syn_wav: np.ndarray, path: Alignment, cfg) -> dict:
    """log-F0 RMSE (natural log, and in cents) over frames voiced in both, and the voicing
    decision error rate, on the DTW-paired frames."""
    ref_f0, ref_voiced = A.pitch(np.asarray(ref_wav, dtype=np.float64), cfg)
    syn_f0, syn_voiced = A.pitch(np.asarray(syn_wav, dtype=np.float64), cfg)
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
    ref_cep, syn_cep = mel_cepstrum(ref_wav, cfg), mel_cepstrum(syn_wav, cfg)
    path = dtw_align(ref_cep, syn_cep)
    return {"mcd": mcd(ref_cep, syn_cep, path), **f0_errors(ref_wav, syn_wav, path, cfg)}


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


# ------------------------------------------------------------------------ intelligibility

_NON_WORD = re.compile(r"[^a-z' ]+")


def normalize_words(text: str) -> str:
    """Lowercase words only: what a recognizer's output is compared on."""
    return " ".join(_NON_WORD.sub(" ", text.lower().replace("-", " ")).split())


def error_rates(reference: str, hypothesis: str) -> dict:
    """Word and character error rates of `hypothesis` against `reference` (normalized)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        raise ValueError("error_rates: the reference text has no words")
    return {"wer": float(jiwer.wer(ref, hyp)) if hyp else 1.0,
            "cer": float(jiwer.cer(ref, hyp)) if hyp else 1.0}


class Recognizer:
    """Offline speech recognizer: PocketSphinx with its bundled US English model."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        pcm = _resample(wav, sample_rate, ASR_RATE)
        pcm = (np.clip(pcm, -1, 1) * PCM16_MAX).astype(np.int16)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


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
