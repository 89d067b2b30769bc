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
