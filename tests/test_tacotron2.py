"""Tacotron 2: overfitting learns a diagonal alignment, the length cap is reported,
padding is masked, the prenet keeps dropout at inference, config validation."""

import dataclasses

import pytest
import torch

from models.tacotron2 import Tacotron2, Tacotron2Config
from tests.overfit import assert_learns_to_align
from tests.test_attention import aligned_batch, item
from tts.attention import alignment_scores
from tts.config import ConfigError

N_SYMBOLS, N_MELS = 16, 12
TINY = Tacotron2Config(n_symbols=N_SYMBOLS, n_mels=N_MELS, embed_dim=32, encoder_dim=32,
                       attention_dim=32, location_filters=8, location_kernel=7,
                       prenet_dim=32, decoder_dim=64, postnet_dim=32, postnet_layers=2,
                       reduction=2, conv_dropout=0.0, decoder_dropout=0.0,
                       prenet_dropout=0.1, guided_attention_weight=1.0)
OVERFIT_STEPS, OVERFIT_LR, GRAD_CLIP = 120, 1e-2, 1.0


def test_overfit_learns_diagonal_attention_and_stops():
    torch.manual_seed(0)
    model = Tacotron2(TINY)
    batch = aligned_batch([10, 8, 9], N_SYMBOLS, N_MELS)
    # the stop token fires: no free-running item hits the cap
    media = assert_learns_to_align(model, batch, OVERFIT_STEPS, OVERFIT_LR, GRAD_CLIP,
                                   term="loss", ratio=0.35, min_mass=0.85)
    assert media["mel"].shape[0] == N_MELS and media["attention"].shape[1] == 10


def _forced_stop(model: Tacotron2, logit: float) -> None:
    with torch.no_grad():
        model.decoder.stop.weight.zero_()
        model.decoder.stop.bias.fill_(logit)


def test_inference_cap_is_reported():
    torch.manual_seed(0)
    model = Tacotron2(TINY).eval()
    _forced_stop(model, -20.0)  # never stops on its own
    phonemes = torch.randint(1, N_SYMBOLS, (1, 7))
    out = model.synthesize(phonemes, max_frames=9)
    assert out["hit_max_length"] is True
    assert out["mel"].shape == (1, N_MELS, 9)  # ceil(9 / r) steps, cut to the cap
    assert out["attention"].shape == (5, 7)
    assert torch.allclose(out["attention"].sum(1), torch.ones(5))
    _forced_stop(model, 20.0)  # stops at the first step
    out = model.synthesize(phonemes, max_frames=9)
    assert out["hit_max_length"] is False and out["mel"].shape == (1, N_MELS, TINY.reduction)


def test_padding_does_not_change_shorter_items():
    cfg = dataclasses.replace(TINY, prenet_dropout=0.0)  # deterministic teacher forcing
    torch.manual_seed(0)
    model = Tacotron2(cfg).eval()
    batch = aligned_batch([11, 6], N_SYMBOLS, N_MELS, seed=1)
    short = item(batch, 1)
    n, t = int(short["phoneme_lengths"][0]), int(short["mel_lengths"][0])
    with torch.no_grad():
        enc_batch = model.encoder(batch["phonemes"], batch["phoneme_lengths"])
        enc_alone = model.encoder(short["phonemes"], short["phoneme_lengths"])
        out_batch = model(batch["phonemes"], batch["phoneme_lengths"],
                          model._pad_to_steps(batch["mel"]), batch["mel_lengths"])
        out_alone = model(short["phonemes"], short["phoneme_lengths"],
                          model._pad_to_steps(short["mel"]), short["mel_lengths"])
    assert torch.allclose(enc_batch[1, :n], enc_alone[0], atol=1e-5)
    steps = out_alone["attention"].shape[1]
    assert torch.allclose(out_batch["attention"][1, :steps, :n], out_alone["attention"][0],
                          atol=1e-5)
    assert (out_batch["attention"][1, :, n:] == 0).all()  # padded tokens get no attention
    assert torch.allclose(out_batch["mel"][1, :, :t], out_alone["mel"][0, :, :t], atol=1e-4)
    # and the loss ignores what lies in the padding
    noisy = dict(batch, mel=batch["mel"].clone())
    noisy["mel"][1, :, t:] = 5.0
    torch.manual_seed(0)
    a = model.loss(batch)
    torch.manual_seed(0)
    b = model.loss(noisy)
    assert torch.allclose(a["mel_loss"], b["mel_loss"]) and torch.allclose(a["loss"], b["loss"])


def test_prenet_dropout_stays_on_at_inference():
    torch.manual_seed(0)
    model = Tacotron2(TINY).eval()
    _forced_stop(model, -20.0)
    phonemes = torch.randint(1, N_SYMBOLS, (1, 5))
    a = model.synthesize(phonemes, max_frames=6)["mel"]
    b = model.synthesize(phonemes, max_frames=6)["mel"]
    assert not torch.allclose(a, b)


def test_untrained_attention_is_scored_as_poor():
    torch.manual_seed(0)
    model = Tacotron2(TINY).eval()
    batch = aligned_batch([10, 8], N_SYMBOLS, N_MELS)
    out = model(batch["phonemes"], batch["phoneme_lengths"], model._pad_to_steps(batch["mel"]),
                batch["mel_lengths"])
    steps = (batch["mel_lengths"] + TINY.reduction - 1) // TINY.reduction
    assert alignment_scores(out["attention"], steps, batch["phoneme_lengths"])[
        "diagonal_mass"] < 0.6


@pytest.mark.parametrize("field, value", [("encoder_kernel", 4), ("reduction", 0),
                                          ("encoder_dim", 33), ("stop_threshold", 1.5),
                                          ("prenet_dropout", 1.0)])
def test_config_rejects_impossible_values(field, value):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(TINY, **{field: value}).validate("tacotron2")


def test_synthesize_rejects_bad_input():
    model = Tacotron2(TINY).eval()
    with pytest.raises(ValueError, match="shape"):
        model.synthesize(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="symbol table"):
        model.synthesize(torch.full((1, 4), N_SYMBOLS))
