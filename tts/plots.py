"""Figures for validation and the report: mel spectrograms, attention, pitch contours.

Every figure function returns a matplotlib Figure (Agg backend, no display needed);
callers `save` it or hand it to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIG_WIDTH = 8.0  # inches
FIG_HEIGHT = 3.0


def _array(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def mel_figure(mels: dict[str, object], title: str = "") -> plt.Figure:
    """One panel per named log-mel (n_mels, T), stacked vertically on a shared colour scale."""
    arrays = {k: _array(v) for k, v in mels.items()}
    low = min(a.min() for a in arrays.values())
    high = max(a.max() for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), 1, figsize=(FIG_WIDTH, FIG_HEIGHT * len(arrays)),
                             squeeze=False)
    for ax, (name, mel) in zip(axes[:, 0], arrays.items()):
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=low, vmax=high,
                          interpolation="none")
        ax.set_title(f"{title} {name}".strip())
        ax.set_ylabel("mel bin")
        fig.colorbar(image, ax=ax)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return fig


def attention_figure(attention, title: str = "attention") -> plt.Figure:
    """Attention weights (T_out, L) as decoder step (x) against input token (y)."""
    weights = _array(attention)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH * 0.75, FIG_HEIGHT * 1.5))
    image = ax.imshow(weights.T, origin="lower", aspect="auto", interpolation="none")
    ax.set_xlabel("decoder step")
    ax.set_ylabel("input token")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def pitch_figure(contours: dict[str, object], frame_seconds: float,
                 title: str = "F0") -> plt.Figure:
    """F0 contours in Hz against time; zeros (unvoiced) are left as gaps."""
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, FIG_HEIGHT))
    for name, f0 in contours.items():
        f0 = _array(f0).astype(float)
        f0[f0 <= 0] = np.nan
        ax.plot(np.arange(len(f0)) * frame_seconds, f0, label=name)
    ax.set_xlabel("seconds")
    ax.set_ylabel("Hz")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def close(fig: plt.Figure) -> None:
    plt.close(fig)


def save(fig: plt.Figure, path, dpi: int) -> str:
    """Write `fig` to `path` (folders created), free it, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    close(fig)
    return str(path)
