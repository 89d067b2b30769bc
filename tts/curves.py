"""Learning curves: is a network still improving when its training stopped?

Training writes one DVC plots TSV per network (`plots/train/<network>.tsv`, one row per
logged step). Validation rows carry `val_loss` and, where the validation probe runs
(`tts.quality`), `val_mos` (predicted MOS, higher is better) and `val_cer` (recognizer
CER, lower is better). `trend` reads the validation points of each signal and calls a
network *still improving* when, for any of them, the last point is a new best by more
than `tolerance` of the curve's range: more steps would probably still pay.
`training_scale` sets each network's budget against the GPU recipe
(presets/ljspeech-gpu.yaml, the papers' steps and batches): how far from its published
scale the curve stopped.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import models
from tts import plots

SIGNALS = (("val_cer", "low"), ("val_mos", "high"), ("val_loss", "low"))  # in order of say
MIN_POINTS = 3  # fewer validation points say nothing about a trend
TOLERANCE = 0.05  # a new best must beat the earlier best by this share of the range


def read_curve(path: Path) -> list[dict]:
    """Rows of a plots TSV as floats (empty cells dropped)."""
    with open(path, newline="") as f:
        rows = []
        for row in csv.DictReader(f, delimiter="\t"):
            values = {}
            for k, v in row.items():
                try:
                    values[k] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(values)
    return rows


def series(rows: list[dict], name: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one column where it is finite."""
    points = [(r["step"], r[name]) for r in rows
              if "step" in r and name in r and math.isfinite(r[name])]
    return [p[0] for p in points], [p[1] for p in points]


def trend(rows: list[dict], tolerance: float = TOLERANCE) -> dict:
    """{"signal", "improving", "last", "previous", "last_steps", "points"}: still improving
    when any signal of `SIGNALS` with at least `MIN_POINTS` points is (reported: the first
    such signal; otherwise the first signal checked); {} when no signal has enough points.
    A CER stuck at 1 while the loss still falls is an under-trained network too."""
    found = []
    for name, better in SIGNALS:
        steps, values = series(rows, name)
        if len(values) < MIN_POINTS:
            continue
        sign = 1.0 if better == "low" else -1.0
        earlier_best = min(sign * v for v in values[:-1])
        span = max(values) - min(values)
        improving = sign * values[-1] < earlier_best - tolerance * span and span > 0
        found.append({"signal": name, "improving": bool(improving), "last": values[-1],
                      "previous": values[-2], "last_steps": int(steps[-1] - steps[-2]),
                      "points": len(values)})
    if not found:
        return {}
    return next((f for f in found if f["improving"]), found[0])


def network_trends(folder: Path, tolerance: float = TOLERANCE) -> dict[str, dict]:
    """{network: trend + steps_key} for every plots TSV in `folder`."""
    out = {}
    for path in sorted(Path(folder).glob("*.tsv")):
        result = trend(read_curve(path), tolerance)
        if result:
            network = models.REGISTRY.get(path.stem)
            result["steps_key"] = network.steps_key if network else f"{path.stem}.steps"
            out[path.stem] = result
    return out


def examples_per_step(name: str, train) -> int:
    """What one step trains on: utterances (text models), or mel frames of segments."""
    if models.REGISTRY[name].data == "segments":
        return train.batch_size * train.segment_frames
    return train.batch_size


def batch_words(name: str, train) -> str:
    """A step's batch in words: "8 utterances", or "4 segments of 8 frames"."""
    if models.REGISTRY[name].data == "segments":
        return f"{train.batch_size} segments of {train.segment_frames} frames"
    return f"{train.batch_size} utterances"


def training_scale(trends: dict[str, dict], here, recipe) -> dict[str, dict]:
    """{network: {"steps", "batch", "recipe_steps", "recipe_batch", "share"}} for every
    network with a trend: its step budget and batch (in words) in `here` (this run's
    params) against `recipe` (the GPU recipe's params), and the share of the recipe's
    training examples it saw (steps x utterances, or steps x segment frames)."""
    out = {}
    for name in trends:
        if name not in models.REGISTRY:
            continue
        (train, _), (full, _) = here.network(name), recipe.network(name)
        seen = train.steps * examples_per_step(name, train)
        needed = full.steps * examples_per_step(name, full)
        out[name] = {"steps": train.steps, "batch": batch_words(name, train),
                     "recipe_steps": full.steps, "recipe_batch": batch_words(name, full),
                     "share": seen / needed if needed else math.nan}
    return out


def scale_sentence(name: str, scale: dict, trend: dict) -> str:
    """One line: how far a network got, against what its paper trains."""
    state = ("still improving: more steps pay here" if trend.get("improving")
             else "flat over its last points")
    return (f"{name}: {scale['steps']:,} steps of {scale['batch']}, "
            f"{100 * scale['share']:.2g}% of the training examples of its GPU recipe "
            f"({scale['recipe_steps']:,} steps of {scale['recipe_batch']}); "
            f"{trend['signal']} {trend['last']:.3g}, {state}.")


def curve_figure(rows: list[dict], title: str):
    """A small figure: validation loss, and predicted MOS / CER where logged, per step."""

    present = [(name, better) for name, better in SIGNALS if series(rows, name)[1]]
    fig, axes = plots.plt.subplots(1, max(len(present), 1), figsize=(2.6 * max(len(present), 1),
                                                                     2.0), squeeze=False)
    for ax, (name, better) in zip(axes[0], present):
        steps, values = series(rows, name)
        ax.plot(steps, values, marker="o", markersize=3)
        ax.set_title(f"{title}: {name} ({'↓' if better == 'low' else '↑'})", fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def write_curve_figures(folder: Path, out: Path, dpi: int) -> dict[str, str]:
    """{network: PNG} under `out`, one per plots TSV in `folder`."""

    made = {}
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(folder).glob("*.tsv")):
        rows = read_curve(path)
        if not any(series(rows, name)[1] for name, _ in SIGNALS):
            continue
        fig = curve_figure(rows, path.stem)
        target = out / f"{path.stem}.png"
        fig.savefig(target, dpi=dpi)
        plots.close(fig)
        made[path.stem] = str(target)
    return made
