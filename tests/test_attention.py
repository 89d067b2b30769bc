"""tts/attention.py: the guided-attention matrix against its formula, the loss, and the
alignment scores on hand-built attentions (diagonal, uniform, skipping, repeating)."""

import math

import pytest
import torch

from tts.attention import (alignment_scores, diagonal_mass, guided_attention_loss,
                           guided_attention_weights, skip_repeat_rates)


def one_hot_path(path: list[int], n_in: int) -> torch.Tensor:
    """Attention (T_out, L) reading token path[t] at frame t."""
    return torch.nn.functional.one_hot(torch.tensor(path), n_in).float()


def diagonal(t_out: int, n_in: int) -> torch.Tensor:
    return one_hot_path([t * n_in // t_out for t in range(t_out)], n_in)


def test_guided_weights_match_formula():
    t_out, n_in, g = 7, 5, 0.2
    w = guided_attention_weights(t_out, n_in, g=g)
    assert w.shape == (t_out, n_in)
    for t in range(t_out):
        for n in range(n_in):
            expected = 1 - math.exp(-((n / n_in - t / t_out) ** 2) / (2 * g ** 2))
            assert w[t, n].item() == pytest.approx(expected, abs=1e-6)
    assert (w >= 0).all() and (w < 1).all()
    assert w[0, 0] == 0  # on the diagonal no penalty


def test_guided_weights_per_item_lengths_and_padding():
    out_lengths, in_lengths = torch.tensor([6, 4]), torch.tensor([5, 3])
    w = guided_attention_weights(6, 5, out_lengths, in_lengths, g=0.3)
    assert w.shape == (2, 6, 5)
    # item 1 uses its own lengths, and is zero on padding
    assert torch.allclose(w[1, :4, :3], guided_attention_weights(4, 3, g=0.3))
    assert (w[1, 4:] == 0).all() and (w[1, :, 3:] == 0).all()
    assert torch.allclose(w[0], guided_attention_weights(6, 5, g=0.3))


def test_guided_loss_prefers_diagonal():
    t_out, n_in = 20, 8
    lengths_out, lengths_in = torch.tensor([t_out]), torch.tensor([n_in])
    diag = guided_attention_loss(diagonal(t_out, n_in)[None], lengths_out, lengths_in)
    anti = guided_attention_loss(diagonal(t_out, n_in).flip(0)[None], lengths_out, lengths_in)
    assert diag < 0.05 < anti


def test_scores_of_diagonal_and_uniform():
    t_out, n_in = 40, 10
    good = alignment_scores(diagonal(t_out, n_in))
    assert good["diagonal_mass"] == pytest.approx(1.0)
    assert good["skip_rate"] == 0 and good["repeat_rate"] == 0
    uniform = torch.full((t_out, n_in), 1 / n_in)
    assert diagonal_mass(uniform) < 0.5


def test_skip_and_repeat_counted_from_argmax_path():
    # tokens 0 1 3 4 (skips 2), then jumps back to 1 (repeats 1)
    skip, repeat = skip_repeat_rates(one_hot_path([0, 0, 1, 3, 4, 1, 5], 6))
    assert skip == pytest.approx(1 / 6)
    assert repeat == pytest.approx(1 / 6)


def test_batched_scores_ignore_padding():
    a = diagonal(12, 4)
    batch = torch.zeros(2, 20, 6)
    batch[0] = diagonal(20, 6)
    batch[1, :12, :4] = a
    batch[1, 12:, 5] = 1  # junk on padded frames must not count
    scores = alignment_scores(batch, torch.tensor([20, 12]), torch.tensor([6, 4]))
    assert scores == {"diagonal_mass": pytest.approx(1.0), "skip_rate": 0.0,
                      "repeat_rate": 0.0}
