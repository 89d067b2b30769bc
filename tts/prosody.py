"""Per-phone prosody targets: log-F0 and energy averaged over each phone's frames."""

from __future__ import annotations

import numpy as np


def phone_averages(dur: np.ndarray, f0: np.ndarray, voiced: np.ndarray,
                   energy: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Phone-level z-normalized log-F0 (voiced frames; 0 if none) and energy."""
    edges = np.concatenate([[0], np.cumsum(dur)])
    pitch, power = np.zeros(len(dur)), np.zeros(len(dur))
    log_f0 = np.log(np.maximum(f0, 1e-5))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        v = voiced[a:b].astype(bool)
        if v.any():
            pitch[k] = (log_f0[a:b][v].mean() - stats["log_f0_mean"]) / stats["log_f0_std"]
        power[k] = (energy[a:b].mean() - stats["energy_mean"]) / stats["energy_std"]
    return pitch, power
