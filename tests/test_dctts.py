"""DCTTS: causality of the causal convolutions and of AudioEnc/AudioDec, Text2Mel overfits
to a diagonal alignment, the forcibly incremental attention rule, the length cap, masking,
SSRN shapes and learning, and the Text2Mel + SSRN composite."""

import dataclasses
import math

import pytest
import torch

from models.dctts import (DCTTS, SSRN, AudioDec, AudioEnc, Conv, Highway, SSRNConfig,
                          Text2Mel, Text2MelConfig, from_unit, to_unit)
from tests.overfit import assert_learns_to_align, overfit
from tests.test_attention import aligned_batch, item
from tts.audio import mel_spectrogram
from tts.config import AudioConfig, ConfigError

N_SYMBOLS, N_MELS = 16, 12
TINY = Text2MelConfig(n_symbols=N_SYMBOLS, n_mels=N_MELS, embed_dim=16, hidden_dim=32,
                      dilations=[1, 3], reduction=2, dropout=0.0, guided_attention_weight=1.0)
TINY_AUDIO = AudioConfig(sample_rate=4000, n_fft=64, win_length=64, hop_length=16,
                         n_mels=N_MELS, fmax=2000.0)
TINY_SSRN = SSRNConfig(n_mels=N_MELS, n_fft=TINY_AUDIO.n_fft, win_length=TINY_AUDIO.win_length,
                       hop_length=TINY_AUDIO.hop_length, reduction=2, channels=16, dropout=0.0)
WIDTHS = dict(hidden_dim=TINY.hidden_dim, kernel=TINY.kernel, dilations=TINY.dilations,
              dropout=TINY.dropout)
OVERFIT_STEPS, OVERFIT_LR, GRAD_CLIP = 80, 4e-3, 1.0
SEQ, CUT = 24, 10  # causality: sequence length and the frame after which inputs change


def changes_before_cut(module: torch.nn.Module, channels: int) -> tuple[bool, bool]:
    """(outputs at t <= CUT changed, outputs after CUT changed) when inputs after CUT change."""
    torch.manual_seed(0)
    x = torch.randn(2, channels, SEQ)
    y = x.clone()
    y[:, :, CUT + 1:] = torch.randn(2, channels, SEQ - CUT - 1)
    with torch.no_grad():
        a, b = module(x), module(y)
    return (not torch.allclose(a[..., :CUT + 1], b[..., :CUT + 1]),
            not torch.allclose(a[..., CUT + 1:], b[..., CUT + 1:]))


@pytest.mark.parametrize("make, channels", [
    (lambda: Conv(4, 6, kernel=3, dilation=3, causal=True), 4),
    (lambda: Highway(5, kernel=3, dilation=9, causal=True, dropout=0.0), 5),
    (lambda: AudioEnc(n_mels=N_MELS, stacks=TINY.stacks, **WIDTHS).eval(), N_MELS),
    (lambda: AudioDec(n_mels=N_MELS, **WIDTHS).eval(), 2 * TINY.hidden_dim),
])
def test_causal_modules_never_look_ahead(make, channels):
    past_changed, future_changed = changes_before_cut(make(), channels)
    assert not past_changed
    assert future_changed  # the test can tell: later outputs do react


def test_non_causal_conv_does_look_ahead():  # the causality check can fail
    past_changed, _ = changes_before_cut(Conv(4, 6, kernel=3, dilation=3, causal=False), 4)
    assert past_changed


def test_overfit_learns_diagonal_attention_and_stops():
    torch.manual_seed(0)
    model = Text2Mel(TINY)
    batch = aligned_batch([10, 8, 9], N_SYMBOLS, N_MELS)
    # free-running synthesis here is the forcibly incremental attention
    media = assert_learns_to_align(model, batch, OVERFIT_STEPS, OVERFIT_LR, GRAD_CLIP,
                                   term="l1_loss", ratio=0.3, min_mass=0.9)
    steps, n_in = media["attention"].shape
    assert n_in == 10 and media["mel"].shape == (N_MELS, steps * TINY.reduction)


def test_incremental_generation_equals_full_forward():
    """generate() steps through cached causal layers; rerunning the whole sequence with
    the same (forced) attention must give the same frames."""
    torch.manual_seed(0)
    model = Text2Mel(TINY).eval()
    phonemes = torch.randint(1, N_SYMBOLS, (1, 9))
    out = model.generate(phonemes, max_frames=40)
    with torch.no_grad():
        _, values = model.text_enc(phonemes, torch.tensor([9]))
        query = model.audio_enc(torch.nn.functional.pad(out["mel"], (1, -1)))
        full = torch.sigmoid(model.decode(out["attention"][None], values, query))
    assert out["mel"].shape[2] >= 5
    assert torch.allclose(full, out["mel"], atol=1e-5)


def test_forced_incremental_attention_rule():
    model = Text2Mel(TINY)  # window: back 1, ahead 3 (the paper's)
    row = torch.zeros(12)
    row[9] = 1.0
    forced, position = model._force(row, previous=4)  # a jump of +5: forced to 5
    assert position == 5 and forced.argmax() == 5 and forced.sum() == 1
    kept, position = model._force(row, previous=7)  # +2 is within the window
    assert position == 9 and torch.equal(kept, row)
    row = torch.zeros(12)
    row[1] = 1.0
    _, position = model._force(row, previous=4)  # back 3: forced forward
    assert position == 5
    _, position = model._force(torch.eye(12)[0], previous=11)  # never past the last token
    assert position == 11


def test_inference_cap_is_reported():
    torch.manual_seed(0)
    model = Text2Mel(TINY).eval()
    phonemes = torch.randint(1, N_SYMBOLS, (1, 30))
    # 5 frames -> 3 coarse steps: even +3 per step cannot reach the last of 30 tokens
    out = model.generate(phonemes, max_frames=5)
    assert out["hit_max_length"] is True
    assert out["mel"].shape == (1, N_MELS, 3) and out["attention"].shape == (3, 30)
    # a one-token input sits on its last token at once: stops after end_frames
    out = model.generate(phonemes[:, :1], max_frames=100)
    assert out["hit_max_length"] is False and out["mel"].shape[2] == TINY.end_frames


def test_padding_does_not_change_shorter_items():
    torch.manual_seed(0)
    model = Text2Mel(TINY).eval()
    batch = aligned_batch([11, 6], N_SYMBOLS, N_MELS, seed=1)
    short = item(batch, 1)
    n = int(short["phoneme_lengths"][0])
    tc = math.ceil(int(short["mel_lengths"][0]) / TINY.reduction)
    with torch.no_grad():
        keys_b, values_b = model.text_enc(batch["phonemes"], batch["phoneme_lengths"])
        keys_a, values_a = model.text_enc(short["phonemes"], short["phoneme_lengths"])
        out_b, _, _ = model._teacher_forced(batch)
        out_a, _, _ = model._teacher_forced(short)
    assert torch.allclose(keys_b[1, :, :n], keys_a[0], atol=1e-5)
    assert torch.allclose(values_b[1, :, :n], values_a[0], atol=1e-5)
    assert torch.allclose(out_b["attention"][1, :tc, :n], out_a["attention"][0], atol=1e-5)
    assert (out_b["attention"][1, :, n:] == 0).all()
    assert torch.allclose(out_b["logits"][1, :, :tc], out_a["logits"][0], atol=1e-4)


def segment_batch(cfg: AudioConfig, n: int = 3, frames: int = 16) -> dict:
    """A segment batch of sines, with the contract's log-mel (tts.audio)."""
    t = torch.arange(frames * cfg.hop_length) / cfg.sample_rate
    freqs = torch.tensor([220.0, 440.0, 880.0])[:n, None]
    audio = 0.5 * torch.sin(2 * math.pi * freqs * t)  # (B, S)
    return {"ids": [f"sine-{i}" for i in range(n)], "audio": audio,
            "mel": mel_spectrogram(audio, cfg)[..., :frames]}


def test_ssrn_upsamples_to_full_rate_and_learns():
    torch.manual_seed(0)
    model = SSRN(TINY_SSRN)
    batch = segment_batch(TINY_AUDIO)
    out = model(torch.rand(2, N_MELS, 7))
    assert out["linear_logits"].shape == (2, TINY_SSRN.n_fft // 2 + 1, 7 * TINY_SSRN.reduction)
    assert out["mel_logits"].shape == (2, N_MELS, 7 * TINY_SSRN.reduction)
    first = {k: float(v.detach()) for k, v in model.loss(batch).items()}
    last = overfit(model, batch, 40, lr=3e-3)[-1]
    assert last["mel_l1_loss"] < 0.5 * first["mel_l1_loss"]
    assert last["linear_l1_loss"] < 0.5 * first["linear_l1_loss"]
    assert model.eval().sample(batch)["mel"].shape == (N_MELS, 16)


def test_composite_synthesizes_full_rate_log_mel():
    torch.manual_seed(0)
    t2m_cfg = TINY
    dctts = DCTTS(Text2Mel(t2m_cfg), SSRN(TINY_SSRN)).eval()
    out = dctts.synthesize(torch.randint(1, N_SYMBOLS, (1, 30)), max_frames=9)
    assert out["hit_max_length"] is True
    assert out["mel"].shape == (1, N_MELS, 9)  # 5 coarse frames x 2, cut to the cap
    assert out["linear"].shape == (1, TINY_SSRN.n_fft // 2 + 1, 9)
    assert out["attention"].shape == (5, 30)
    low = math.log(TINY_SSRN.log_floor)
    assert (out["mel"] >= low - 1e-4).all() and (out["mel"] <= TINY_SSRN.mel_max + 1e-4).all()
    with pytest.raises(ValueError, match="reduction"):
        DCTTS(Text2Mel(t2m_cfg), SSRN(dataclasses.replace(TINY_SSRN, reduction=4)))


def test_normalization_round_trip():
    x = torch.linspace(-11.0, 2.0, 7)
    assert torch.allclose(from_unit(to_unit(x, 1e-5, 2.5), 1e-5, 2.5), x, atol=1e-5)
    assert to_unit(torch.tensor([-20.0, 9.0]), 1e-5, 2.5).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("cfg, field", [
    (dataclasses.replace(TINY, kernel=2), "kernel"),
    (dataclasses.replace(TINY, dilations=[]), "dilations"),
    (dataclasses.replace(TINY, mel_max=-20.0), "mel_max"),
    (dataclasses.replace(TINY_SSRN, reduction=3), "reduction"),
    (dataclasses.replace(TINY_SSRN, linear_max=-20.0), "linear_max"),
])
def test_config_rejects_impossible_values(cfg, field):
    with pytest.raises(ConfigError, match=field):
        cfg.validate("dctts")
