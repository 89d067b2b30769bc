"""Predicted mean opinion score (1-5) with DistillMOS.

    mos = load_mos_predictor()
    mos(wav, sample_rate)         # float, 1 (bad) .. 5 (excellent)

DistillMOS (Stahl & Gamper, 2025; the `distillmos` wheel, MIT) is a small convolutional
transformer distilled from an XLS-R speech-quality model; it needs no reference, so it
scores text-to-speech output, copy synthesis and the recordings alike. Its weights ship
inside the wheel and are checked against the SHA-256 pinned here before loading. Input is
16 kHz mono; the model peak-normalizes each 7.68 s window itself and averages windows.

Reference points measured with this module (mean over clips): real LJSpeech recordings
4.40, their Griffin-Lim copy synthesis 3.25; the eSpeak builtin corpus 2.28.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from tts.digest import sha256_file
from tts.recognizer import resample

MOS_RATE = 16000  # Hz, DistillMOS's input rate
MOS_MIN, MOS_MAX = 1.0, 5.0
DISTILLMOS_WEIGHTS = "weights/distill_mos_v7.pt"  # inside the distillmos package
DISTILLMOS_SHA256 = "b18b3ac60227267cfb91e5d00ce22cc7b73716fd92f269484da1446e27031a40"
MIN_SECONDS = 0.1  # shorter audio has no score (NaN)


class MOSError(RuntimeError):
    """The predictor cannot be loaded; the message says what to install or fix."""


@functools.lru_cache(maxsize=None)
def _weights_path() -> Path:
    try:
        import distillmos
    except ImportError as exc:
        raise MOSError("predicted MOS needs `distillmos` (pip install -r requirements.txt)") \
            from exc
    path = Path(distillmos.__file__).parent / DISTILLMOS_WEIGHTS
    if not path.is_file():
        raise MOSError(f"{path} is missing; reinstall distillmos")
    got = sha256_file(path)
    if got != DISTILLMOS_SHA256:
        raise MOSError(f"{path} has SHA-256 {got}, expected {DISTILLMOS_SHA256}: the installed "
                       f"distillmos is not the pinned version; reinstall it from "
                       f"requirements.txt")
    return path


class MOSPredictor:
    """DistillMOS on `device`; call with (wav, sample_rate) -> MOS in [1, 5]."""

    name = "distillmos"

    def __init__(self, device: str = "cpu"):
        path = _weights_path()
        from distillmos import ConvTransformerSQAModel

        model = ConvTransformerSQAModel(load_weights=False)  # loaded here, after the check
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, wav: np.ndarray, sample_rate: int) -> float:

        audio = resample(wav, sample_rate, MOS_RATE)
        if len(audio) < MIN_SECONDS * MOS_RATE or not np.any(audio):
            return float("nan")
        if not np.isfinite(audio).all():
            raise ValueError("predicted MOS: the audio has non-finite samples")
        x = torch.from_numpy(audio)[None].to(self.device)  # (1, N)
        score = self.model(x)  # (1, 1)
        return float(score.reshape(-1)[0].clamp(MOS_MIN, MOS_MAX))


def load_mos_predictor(device: str = "cpu") -> MOSPredictor:
    return MOSPredictor(device)
