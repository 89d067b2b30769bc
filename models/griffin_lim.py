"""Griffin-Lim as a vocoder: Griffin and Lim 1984, "Signal Estimation from Modified
Short-Time Fourier Transform", with the fast (momentum) variant of Perraudin, Balazs and
Sondergaard 2013, "A fast Griffin-Lim algorithm".

Nothing is trained: the "model" is its settings (params `griffin_lim:`) plus the feature
contract, written by the `griffin_lim` stage to `data/models/griffin_lim/config.json` so
that it sits beside the trained vocoders, with the same `generate(mel)` interface, and a
change of its settings re-evaluates exactly the pairs that use it. The inversion itself is
`tts.audio.griffin_lim` (the one feature definition).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from tts.audio import griffin_lim
from tts.contract import AudioConfig, ConfigError


@dataclass(frozen=True)
class GriffinLimConfig:
    n_iter: int = 32  # phase-reconstruction iterations (more: cleaner, linearly slower)
    momentum: float = 0.99  # fast Griffin-Lim momentum (0 = the original algorithm)
    seed: int = 0  # initial random phase, so a mel always gives the same audio

    def validate(self, key: str) -> None:
        if self.n_iter < 1:
            raise ConfigError(f"params: `{key}.n_iter` must be at least 1")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"params: `{key}.momentum` must be in [0, 1)")


class GriffinLim(nn.Module):
    """Mel -> waveform by phase reconstruction; `audio` is the feature contract
    (`tts.config.AudioConfig` or any object with its fields)."""

    def __init__(self, cfg: GriffinLimConfig, audio):
        super().__init__()
        self.cfg, self.audio = cfg, audio

    @torch.no_grad()
    def generate(self, mel: Tensor) -> Tensor:
        """mel (B, n_mels, T) -> audio (B, T * hop) in [-1, 1]."""
        return torch.stack([griffin_lim(m, self.audio, self.cfg.n_iter, self.cfg.momentum,
                                        self.cfg.seed) for m in mel])  # (B, T * hop)


SETTINGS_KEY = "griffin_lim"  # the settings record: {SETTINGS_KEY: config, "audio": contract}


def settings(cfg: GriffinLimConfig, audio) -> dict:
    """The record the `griffin_lim` stage writes: its settings and the feature contract
    (`audio`: an AudioConfig), as plain JSON-able values."""
    return {SETTINGS_KEY: dataclasses.asdict(cfg), "audio": dataclasses.asdict(audio)}


def from_settings(saved: dict) -> tuple[GriffinLim, Any]:
    """(vocoder, its feature contract) from a `settings` record (KeyError / TypeError when
    it is not one)."""
    audio = AudioConfig(**saved["audio"])
    return GriffinLim(GriffinLimConfig(**saved[SETTINGS_KEY]), audio), audio
