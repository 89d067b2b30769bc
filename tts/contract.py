"""The leaf of the import graph: what every layer shares about params and features.

`ConfigError` (a params problem), `check` (the one validation helper every config's
`validate(key)` calls), `AudioConfig` (the feature contract: sample rate, STFT, mel) and
the names of the contract fields a network config receives from `audio:` or from the
symbol table instead of from its own params section. It imports nothing of the project,
so `models/`, `tts/text.py` and every other module can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A params problem; the message names the dotted key and what to do."""


def check(ok: bool, key: str, message: str) -> None:
    """Raise `ConfigError("params: `key` message")` unless `ok`."""
    if not ok:
        raise ConfigError(f"params: `{key}` {message}")


@dataclass(frozen=True)
class AudioConfig:
    """The feature contract: one definition of sample rate, STFT and mel."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    f0_min: float = 71.0
    f0_max: float = 800.0
    log_floor: float = 1e-5

    def validate(self, key: str) -> None:
        check(self.sample_rate > 0, f"{key}.sample_rate", "must be positive")
        check(0 < self.hop_length <= self.n_fft, f"{key}.hop_length",
              f"must be in 1..n_fft ({self.n_fft})")
        check(0 < self.win_length <= self.n_fft, f"{key}.win_length",
              f"must be in 1..n_fft ({self.n_fft})")
        check(self.n_mels > 0, f"{key}.n_mels", "must be positive")
        check(0 <= self.fmin < self.fmax, f"{key}.fmin", "must be >= 0 and below audio.fmax")
        check(self.fmax <= self.sample_rate / 2, f"{key}.fmax",
              f"must not exceed sample_rate / 2 = {self.sample_rate / 2:g}")
        check(0 < self.f0_min < self.f0_max < self.sample_rate / 2, f"{key}.f0_min",
              "need 0 < f0_min < f0_max < sample_rate / 2")
        check(0 < self.log_floor < 1, f"{key}.log_floor", "must be in (0, 1)")

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate


# Network config fields filled from `audio:` (same names) or from the symbol table; a
# network's params section may not set them.
CONTRACT_FROM_AUDIO = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels",
                       "fmin", "fmax", "log_floor")
CONTRACT_FIELDS = frozenset(CONTRACT_FROM_AUDIO + ("n_symbols",))
