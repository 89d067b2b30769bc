"""`overfit`: the one "can this network fit one batch?" loop the model tests share.

Plain Adam on a fixed batch, `loss(batch)["loss"]` each step; returns every step's loss
terms (read before that step's update), so a test compares the first and last entries.
"""

from __future__ import annotations

import torch


def overfit(model: torch.nn.Module, batch: dict, steps: int, lr: float = 3e-3,
            grad_clip: float = 0.0, params=None, reseed: int | None = None
            ) -> list[dict[str, float]]:
    """Train `model` on `batch` for `steps` Adam steps; -> per-step loss terms as floats.

    `grad_clip` > 0 clips the global gradient norm; `params` trains a subset (default: all);
    `reseed` seeds torch with `reseed + step` before each step (networks that draw noise).
    """
    params = list(model.parameters() if params is None else params)
    optimizer = torch.optim.Adam(params, lr=lr)
    history = []
    for step in range(steps):
        if reseed is not None:
            torch.manual_seed(reseed + step)
        losses = model.loss(batch)
        optimizer.zero_grad()
        losses["loss"].backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


def assert_learns_to_align(model: torch.nn.Module, batch: dict, steps: int, lr: float,
                           grad_clip: float, term: str, ratio: float, min_mass: float) -> dict:
    """An attention model overfit on `batch` lowers loss term `term` below `ratio` x its
    start, and aligns: diagonal mass above `min_mass` teacher-forced and free-running, no
    free-running item hitting the length cap. -> `model.sample(batch)` (eval mode)."""
    first = float(model.loss(batch)[term].detach())
    last = overfit(model, batch, steps, lr, grad_clip)[-1]
    assert last[term] < ratio * first, (first, last)
    model.eval()
    scores = model.scores(batch)
    assert scores["align_teacher_forced_diagonal_mass"] > min_mass, scores
    assert scores["align_diagonal_mass"] > min_mass, scores  # free-running synthesis
    assert scores["align_hit_max_rate"] == 0, scores  # stopped at the end of the text
    return model.sample(batch)
