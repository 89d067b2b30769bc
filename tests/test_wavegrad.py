"""WaveGrad: shapes, the hop-length check, training progress, checkpoints, the 15.8M size."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from models.wavegrad import WaveGrad, WaveGradConfig, linear_betas, noise_levels
from tests.overfit import overfit
from tts.config import ConfigError, parse_params

ROOT = Path(__file__).resolve().parents[1]
BASE_PRESET = ROOT / "presets" / "wavegrad-base.yaml"
BASE_PARAMETERS = 15.8e6  # the paper's WaveGrad Base
N_MELS, HOP = 80, 256
TINY = WaveGradConfig(mel_channels=16, upsample_channels=(16, 16, 8, 8, 8),
                      downsample_channels=(4, 8, 8, 8, 16))


def tiny_model(seed: int = 0) -> WaveGrad:
    torch.manual_seed(seed)
    return WaveGrad(TINY)


def test_generate_length_is_frames_times_hop():
    model = tiny_model().eval()
    for frames in (1, 3, 7):
        mel = torch.randn(2, N_MELS, frames)
        audio = model.generate(mel, [1e-4, 1e-2, 0.3])
        assert audio.shape == (2, frames * HOP)
        assert audio.abs().max() <= 1.0 and torch.isfinite(audio).all()
    assert model.sample({"mel": torch.randn(3, N_MELS, 5)})["audio"].shape == (5 * HOP,)


def test_forward_predicts_noise_of_the_input_shape():
    model = tiny_model()
    noisy, mel = torch.randn(3, 4 * HOP), torch.randn(3, N_MELS, 4)
    assert model(noisy, mel, torch.rand(3)).shape == (3, 4 * HOP)


def test_generate_is_reproducible_with_a_seeded_generator():
    model = tiny_model().eval()
    mel = torch.randn(1, N_MELS, 4)

    def run(seed: int) -> torch.Tensor:
        return model.generate(mel, [1e-3, 0.1], torch.Generator().manual_seed(seed))

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_generate_rejects_impossible_betas():
    model = tiny_model()
    for betas in ([], [0.0, 0.1], [0.5, 1.0]):
        with pytest.raises(ValueError, match="betas"):
            model.generate(torch.randn(1, N_MELS, 2), betas)


def test_upsampling_product_must_equal_hop_length():
    with pytest.raises(ConfigError, match="upsample_factors.*hop_length"):
        parse_params({"audio": {"hop_length": 300}, "wavegrad": {}})
    with pytest.raises(ConfigError, match="upsample_factors"):
        parse_params({"wavegrad": {"upsample_factors": [4, 4, 4, 2]}})
    params = parse_params({"audio": {"hop_length": 300}, "wavegrad": {
        "upsample_factors": [5, 5, 3, 2, 2]}})
    _, cfg = params.network("wavegrad")
    assert cfg.hop_length == 300 and WaveGrad(cfg)(
        torch.randn(1, 600), torch.randn(1, N_MELS, 2), torch.rand(1)).shape == (1, 600)


def test_noise_levels_run_from_clean_to_noisy():
    levels = noise_levels(linear_betas(1000, 1e-6, 0.01))
    assert levels[0] == 1 and len(levels) == 1001
    assert bool((levels[1:] < levels[:-1]).all()) and 0 < levels[-1] < 0.1


def test_training_on_a_repeated_batch_lowers_the_loss():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    t = torch.arange(6 * HOP) / 22050
    audio = 0.1 * torch.sin(2 * math.pi * torch.tensor([[220.0], [330.0]]) * t)  # (2, N), speech RMS
    batch = {"audio": audio, "mel": torch.randn(2, N_MELS, 6, generator=g)}

    def evaluate() -> float:  # the same noise draws every time
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(model.loss(batch)["loss"].item() for _ in range(8)) / 8

    before = evaluate()
    torch.manual_seed(0)
    overfit(model, batch, 40, lr=3e-3)
    after = evaluate()
    assert after < 0.8 * before, (before, after)


def test_base_preset_is_the_15_8m_parameter_model():
    preset = yaml.safe_load(BASE_PRESET.read_text())
    arch = {k: v for k, v in preset["wavegrad"].items()
            if k in WaveGradConfig.__dataclass_fields__}
    _, cfg = parse_params({"wavegrad": arch}).network("wavegrad")
    count = sum(p.numel() for p in WaveGrad(cfg).parameters())
    assert abs(count - BASE_PARAMETERS) < 0.05e6, count
    default = sum(p.numel() for p in WaveGrad(WaveGradConfig()).parameters())
    assert default < count / 20  # the CPU default is small
