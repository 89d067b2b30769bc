"""Attention alignment: the guided-attention prior, alignment scores, padding masks.

Guided attention follows Tachibana et al. 2018 ("Efficiently Trainable Text-to-Speech
System Based on Deep Convolutional Networks with Guided Attention", eq. 4):

    W[n, t] = 1 - exp(-(n / N - t / T)^2 / (2 g^2))

for input token n of N and output frame t of T. The penalty on `A * W` pushes the
attention `A` towards the diagonal. Attention matrices here are stored output-major,
`(T_out, L)` (one row per decoder step), so the matrices built below are `W[t, n]`.

Alignment scores make "did the attention align?" a number:
- `diagonal_mass`: share of attention mass with |n / N - t / T| <= band (1.0 is a perfect
  near-diagonal alignment; a uniform attention gets about 1 - (1 - band)^2).
- `skip_rate`: share of input tokens the argmax path never lands on.
- `repeat_rate`: share of input tokens the argmax path returns to after having moved past
  them (attention jumping back and reading a token again).
Both rates come from the argmax path over output frames. A model whose decoder step spans
more frames than a short phone (reduction factor r, DCTTS's 1/4 frame rate) may skip a
few very short tokens even when aligned well, so compare rates at equal reduction.
These scores measure the *shape* of an alignment: an attention that merely follows the
guided-attention prior also scores well, so read them together with the mel loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

GUIDED_ATTENTION_G = 0.2  # the paper's width g


def length_mask(lengths: Tensor, size: int) -> Tensor:
    """(B,) lengths -> (B, size) bool, True on valid positions (every model's padding mask)."""
    return torch.arange(size, device=lengths.device)[None] < lengths[:, None]
DIAGONAL_BAND = 0.2  # half-width of the diagonal band, in normalized (n/N - t/T) units


def _lengths(lengths: Tensor | None, size: int, batch: int, device) -> Tensor:
    if lengths is None:
        return torch.full((batch,), size, dtype=torch.long, device=device)
    return lengths.to(device=device, dtype=torch.long)


def _distance(out_lengths: Tensor, in_lengths: Tensor, t_out: int, n_in: int) -> Tensor:
    """|n / N - t / T| per item, with a validity mask: ((B, T_out, L), (B, T_out, L))."""
    t = torch.arange(t_out, device=out_lengths.device, dtype=torch.float32)
    n = torch.arange(n_in, device=out_lengths.device, dtype=torch.float32)
    t_rel = t[None, :, None] / out_lengths[:, None, None].clamp(min=1)  # (B, T_out, 1)
    n_rel = n[None, None, :] / in_lengths[:, None, None].clamp(min=1)  # (B, 1, L)
    valid = ((t[None, :, None] < out_lengths[:, None, None])
             & (n[None, None, :] < in_lengths[:, None, None]))  # (B, T_out, L)
    return (n_rel - t_rel).abs(), valid


def guided_attention_weights(t_out: int, n_in: int, out_lengths: Tensor | None = None,
                             in_lengths: Tensor | None = None,
                             g: float = GUIDED_ATTENTION_G) -> Tensor:
    """W[b, t, n] = 1 - exp(-(n/N_b - t/T_b)^2 / (2 g^2)), 0 on padding: (B, T_out, L).

    Without lengths, returns the single unpadded matrix (T_out, L).
    """
    if g <= 0:
        raise ValueError(f"guided attention width g must be positive, got {g}")
    given = [x for x in (out_lengths, in_lengths) if x is not None]
    single = not given
    batch = len(given[0]) if given else 1
    device = given[0].device if given else torch.device("cpu")
    out_lengths = _lengths(out_lengths, t_out, batch, device)
    in_lengths = _lengths(in_lengths, n_in, batch, device)
    dist, valid = _distance(out_lengths, in_lengths, t_out, n_in)
    w = (1 - torch.exp(-dist ** 2 / (2 * g ** 2))) * valid  # (B, T_out, L)
    return w[0] if single else w


def guided_attention_loss(attention: Tensor, out_lengths: Tensor, in_lengths: Tensor,
                          g: float = GUIDED_ATTENTION_G) -> Tensor:
    """sum_n A[t, n] W[t, n], averaged over the valid output frames; attention (B, T_out, L).

    Each attention row sums to 1, so this is the expected penalty of one frame's attention,
    in [0, 1) whatever the text length. (The paper averages over all N * T cells, which is
    this divided by N: its weight would have to grow with the text length.)
    """
    b, t_out, n_in = attention.shape
    w = guided_attention_weights(t_out, n_in, out_lengths, in_lengths, g)  # (B, T_out, L)
    frames = out_lengths.to(attention.device).sum()
    return (attention * w.to(attention.dtype)).sum() / frames.clamp(min=1)


def diagonal_mass(attention: Tensor, out_lengths: Tensor | None = None,
                  in_lengths: Tensor | None = None, band: float = DIAGONAL_BAND) -> Tensor:
    """Per item share of attention mass within `band` of the diagonal: (B,) or scalar."""
    single = attention.dim() == 2
    att = attention[None] if single else attention  # (B, T_out, L)
    b, t_out, n_in = att.shape
    out_lengths = _lengths(out_lengths, t_out, b, att.device)
    in_lengths = _lengths(in_lengths, n_in, b, att.device)
    dist, valid = _distance(out_lengths, in_lengths, t_out, n_in)
    att = att.float() * valid
    near = (att * (dist <= band)).sum((1, 2))  # (B,)
    mass = near / att.sum((1, 2)).clamp(min=1e-12)
    return mass[0] if single else mass


def skip_repeat_rates(attention: Tensor) -> tuple[float, float]:
    """(skip rate, repeat rate) of one unpadded attention (T_out, L) from its argmax path."""
    t_out, n_in = attention.shape
    if t_out == 0 or n_in == 0:
        raise ValueError(f"empty attention matrix of shape {tuple(attention.shape)}")
    path = attention.argmax(dim=1).tolist()  # token read at each output frame
    runs = [path[0]] + [n for prev, n in zip(path, path[1:]) if n != prev]  # run starts
    visits = torch.bincount(torch.tensor(runs), minlength=n_in)  # separate runs per token
    skipped = int((visits == 0).sum())
    repeated = int((visits > 1).sum())
    return skipped / n_in, repeated / n_in


def alignment_scores(attention: Tensor, out_lengths: Tensor | None = None,
                     in_lengths: Tensor | None = None,
                     band: float = DIAGONAL_BAND) -> dict[str, float]:
    """Batch means of diagonal_mass, skip_rate, repeat_rate; attention (B, T_out, L) or
    one unpadded (T_out, L)."""
    att = attention.detach()  # scores, never a training signal
    att = att[None] if att.dim() == 2 else att  # (B, T_out, L)
    b, t_out, n_in = att.shape
    out_lengths = _lengths(out_lengths, t_out, b, att.device)
    in_lengths = _lengths(in_lengths, n_in, b, att.device)
    mass = diagonal_mass(att, out_lengths, in_lengths, band)  # (B,)
    rates = [skip_repeat_rates(att[i, :out_lengths[i], :in_lengths[i]]) for i in range(b)]
    return {"diagonal_mass": float(mass.mean()),
            "skip_rate": sum(r[0] for r in rates) / b,
            "repeat_rate": sum(r[1] for r in rates) / b}
