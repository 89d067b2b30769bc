"""The contract every registry network keeps (docs/architecture.md, "Model modules"),
checked once for all of them at tiny size (tests/tiny_models.py) on the default feature
contract: a finite loss whose backward reaches the parameters, a finished-model file that
rebuilds the same network (config, weights and outputs), and inference entry points with
the documented keys and shapes. Family-specific behaviour stays in each family's tests.
"""

from __future__ import annotations

import math

import pytest
import torch

import models
from tests.tiny_models import tiny_params
from tts.checkpoint import load_model, model_payload, save_atomic

PARAMS = tiny_params()
AUDIO = PARAMS.audio
N_MELS, HOP = AUDIO.n_mels, AUDIO.hop_length
PHONE_LENGTHS = (9, 6)  # a padded text batch of two
FRAMES_PER_PHONE = 4
SEGMENT_FRAMES = 16  # longer than the longest STFT of the Parallel WaveNet power loss
INFERENCE_PHONES = 7
VOCODER_FRAMES = 2  # WaveNet samples one by one: keep generation short
MAX_FRAMES = 24  # cap of the attention models' free-running synthesis


def network(name: str) -> torch.nn.Module:
    _, cfg = PARAMS.network(name)
    torch.manual_seed(0)
    model = models.build_model(name, cfg)
    teacher = models.spec(name).teacher
    if teacher:
        model.bind_teacher(network(teacher).eval().requires_grad_(False))
    return model


def text_batch(n_symbols: int) -> dict:
    """A padded text batch as tts/data.py collates it, with durations and variances."""
    g = torch.Generator().manual_seed(0)
    B, L = len(PHONE_LENGTHS), max(PHONE_LENGTHS)
    lengths = torch.tensor(PHONE_LENGTHS)
    durations = torch.zeros(B, L, dtype=torch.long)
    phonemes = torch.zeros(B, L, dtype=torch.long)
    for b, n in enumerate(PHONE_LENGTHS):
        durations[b, :n] = FRAMES_PER_PHONE
        phonemes[b, :n] = torch.randint(1, n_symbols, (n,), generator=g)
    mel_lengths = durations.sum(1)
    T = int(mel_lengths.max())
    mel = torch.full((B, N_MELS, T), math.log(AUDIO.log_floor))
    for b, t in enumerate(mel_lengths.tolist()):
        mel[b, :, :t] = torch.randn(N_MELS, t, generator=g) - 5
    return dict(ids=[f"u{b}" for b in range(B)], phonemes=phonemes, phoneme_lengths=lengths,
                mel=mel, mel_lengths=mel_lengths, durations=durations,
                pitch=torch.randn(B, T, generator=g), energy=torch.randn(B, T, generator=g),
                phone_pitch=torch.randn(B, L, generator=g),
                phone_energy=torch.randn(B, L, generator=g))


def segment_batch() -> dict:
    """Random audio windows and their mel frames, as tts/data.py's segment batches."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(SEGMENT_FRAMES * HOP) / AUDIO.sample_rate
    audio = 0.1 * torch.sin(2 * math.pi * torch.tensor([[220.0], [330.0]]) * t)  # (2, N)
    audio = audio + 0.01 * torch.randn(audio.shape, generator=g)
    return dict(ids=["u0", "u1"], audio=audio,
                mel=torch.randn(2, N_MELS, SEGMENT_FRAMES, generator=g) - 5)


def batch_for(name: str, model) -> dict:
    if models.spec(name).data == "text":
        return text_batch(model.cfg.n_symbols)
    return segment_batch()


def inference(name: str, model) -> dict[str, torch.Tensor]:
    """The network's inference entry point on a fixed input, outputs by name."""
    torch.manual_seed(1)
    with torch.no_grad():
        if name in ("fastspeech2", "tacotron2", "dctts_text2mel"):
            phonemes = torch.randint(1, model.cfg.n_symbols, (1, INFERENCE_PHONES))
            if name == "fastspeech2":
                return model.synthesize(phonemes)
            if name == "tacotron2":
                return model.synthesize(phonemes, max_frames=MAX_FRAMES)
            return model.generate(phonemes, max_frames=MAX_FRAMES)
        if name == "dctts_ssrn":
            return model.upsample(torch.randn(1, N_MELS, 3) - 5)
        return {"audio": model.generate(torch.randn(1, N_MELS, VOCODER_FRAMES) - 5)}


NAMES = sorted(models.REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_and_reaches_the_parameters(name):
    model = network(name).train()
    losses = model.loss(batch_for(name, model))
    assert "loss" in losses and losses["loss"].dim() == 0
    assert all(torch.isfinite(v).all() for v in losses.values()), losses
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_model_file_rebuilds_the_same_network(name, tmp_path):
    model = network(name).train()
    model.loss(batch_for(name, model))  # train-mode forward: BatchNorm running stats move
    _, cfg = PARAMS.network(name)
    path = save_atomic(model_payload(name, cfg, model, 3, "hash"), tmp_path / "model.pt")
    loaded_name, rebuilt, loaded_cfg = load_model(path)
    assert loaded_name == name and loaded_cfg == cfg and not rebuilt.training
    mine, theirs = model.state_dict(), rebuilt.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key
    a, b = inference(name, model.eval()), inference(name, rebuilt)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


@pytest.mark.parametrize("name", NAMES)
def test_inference_keys_and_shapes(name):
    model = network(name).eval()
    out = inference(name, model)
    spec = models.spec(name)
    if spec.data == "segments" and name != "dctts_ssrn":  # vocoders: mel -> waveform
        audio = out["audio"]
        assert audio.shape == (1, VOCODER_FRAMES * HOP)
        assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0
        return
    mel = out["mel"]
    assert mel.dim() == 3 and mel.shape[:2] == (1, N_MELS) and mel.shape[2] >= 1
    assert torch.isfinite(mel).all()
    if name == "dctts_ssrn":
        assert mel.shape[2] == 3 * model.cfg.reduction
        assert out["linear"].shape == (1, model.cfg.n_fft // 2 + 1, 3 * model.cfg.reduction)
    elif name == "fastspeech2":
        assert out["durations"].shape == (1, INFERENCE_PHONES)
        assert int(out["durations"].sum()) == mel.shape[2]
    else:  # attention models: one attention row per decoder step, capped length reported
        assert out["attention"].shape[-1] == INFERENCE_PHONES
        assert isinstance(bool(out["hit_max_length"]), bool)
        assert mel.shape[2] <= MAX_FRAMES
