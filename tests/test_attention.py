"""tts/attention.py: the guided-attention matrix against its formula, the loss, and the
alignment scores on hand-built attentions (diagonal, uniform, skipping, repeating).

Also home of `aligned_batch`, the synthetic text batch the attention models
(tests/test_tacotron2.py, tests/test_dctts.py) overfit to learn an alignment.
"""

import math

import pytest
import torch

from tts.attention import (alignment_scores, diagonal_mass, guided_attention_loss,
                           guided_attention_weights, skip_repeat_rates)

LOG_FLOOR = 1e-5  # the contract's log_floor; the collate pads mel with log(LOG_FLOOR)
MEL_RANGE = (-8.0, 0.0)  # synthetic log-mel values, inside a real log-mel's range


def aligned_batch(lengths: list[int], n_symbols: int, n_mels: int, durations=(2, 4),
                  seed: int = 0) -> dict:
    """A text batch (as tts/data.py collates it) whose mel holds one fixed random spectrum
    per symbol for a random `durations` (inclusive) number of frames each: predictable only
    by attending to the right token."""
    g = torch.Generator().manual_seed(seed)
    low, high = MEL_RANGE
    spectra = low + (high - low) * torch.rand(n_symbols, n_mels, generator=g)  # (V, M)
    phonemes = [torch.randint(1, n_symbols, (n,), generator=g) for n in lengths]
    lo, hi = durations
    mels = [spectra[p].repeat_interleave(torch.randint(lo, hi + 1, (len(p),), generator=g), 0).T
            for p in phonemes]  # (M, T_b) each
    mel_lengths = torch.tensor([m.size(1) for m in mels])
    batch = {"ids": [f"synthetic-{i}" for i in range(len(lengths))],
             "phonemes": torch.zeros(len(lengths), max(lengths), dtype=torch.long),
             "phoneme_lengths": torch.tensor(lengths),
             "mel": torch.full((len(lengths), n_mels, int(mel_lengths.max())),
                               math.log(LOG_FLOOR)),
             "mel_lengths": mel_lengths}
    for i, (p, m) in enumerate(zip(phonemes, mels)):
        batch["phonemes"][i, :len(p)] = p
        batch["mel"][i, :, :m.size(1)] = m
    return batch


def item(batch: dict, i: int) -> dict:
    """Batch item i alone, trimmed to its own lengths."""
    n, t = int(batch["phoneme_lengths"][i]), int(batch["mel_lengths"][i])
    return {"ids": batch["ids"][i:i + 1], "phonemes": batch["phonemes"][i:i + 1, :n],
            "phoneme_lengths": batch["phoneme_lengths"][i:i + 1],
            "mel": batch["mel"][i:i + 1, :, :t], "mel_lengths": batch["mel_lengths"][i:i + 1]}


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


def test_guided_loss_is_mean_penalty_per_valid_frame():
    torch.manual_seed(0)
    out_lengths, in_lengths = torch.tensor([6, 4]), torch.tensor([5, 3])
    attention = torch.softmax(torch.randn(2, 6, 5), -1)
    attention[1, :, 3:] = 0  # padded tokens get no attention
    attention[1, :4, :3] = torch.softmax(torch.randn(4, 3), -1)
    attention[1, 4:] = 1.0  # junk on padded frames is ignored
    expected = sum(float((attention[b, :t, :n] * guided_attention_weights(t, n)).sum())
                   for b, (t, n) in enumerate([(6, 5), (4, 3)])) / (6 + 4)
    loss = guided_attention_loss(attention, out_lengths, in_lengths)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


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
