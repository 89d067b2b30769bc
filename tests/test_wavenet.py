"""WaveNet teacher: causality, Fast-WaveNet generation, the discretized mixture, training."""

from __future__ import annotations

import math

import pytest
import torch

from models.wavenet import (Upsampler, WaveNet, WaveNetConfig, discretized_log_prob,
                            log_density, sample_mixture)
from tests.overfit import overfit
from tts.config import AudioConfig, ConfigError

TINY = dict(residual_channels=8, gate_channels=8, skip_channels=8, head_channels=8,
            layers=5, dilation_cycle=3, n_mixtures=3, upsample_factors=(2, 2),
            hop_length=4, n_mels=6)
GRID = 2 ** 16  # values of the 16-bit grid


def tiny(**overrides) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(**{**TINY, **overrides}))
    with torch.no_grad():  # spread the weights so every path carries signal
        for p in model.stack.parameters():
            p.normal_(0, 0.3)
    return model


def segment(model: WaveNet, frames: int, dtype=torch.float32) -> dict:
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    return {"audio": torch.rand(2, frames * cfg.hop_length, generator=g, dtype=dtype) * 2 - 1,
            "mel": torch.randn(2, cfg.n_mels, frames, generator=g, dtype=dtype) - 4}


def test_upsample_product_must_equal_hop():
    with pytest.raises(ConfigError, match="hop_length"):
        WaveNetConfig(upsample_factors=(4, 4), hop_length=256).validate("wavenet")
    with pytest.raises(ConfigError, match="gate_channels"):
        WaveNetConfig(gate_channels=7).validate("wavenet")
    WaveNetConfig(upsample_factors=(4, 8, 8), hop_length=256).validate("wavenet")


def test_upsampler_centres_frame_i_on_sample_i_hop():
    up = Upsampler(channels=1, factors=(4, 8))
    frames, hop, i = 6, 32, 2
    impulse = torch.zeros(1, 1, frames)
    impulse[..., i] = 1
    out = up(impulse)[0, 0]  # (frames * hop,)
    assert out.shape == (frames * hop,)
    assert out.argmax().item() == i * hop
    assert out[i * hop].item() == pytest.approx(1.0)
    assert torch.allclose(out[i * hop - 5], out[i * hop + 5])  # symmetric around it


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_teacher_is_causal(kernel_size):
    model = tiny(kernel_size=kernel_size).double()
    batch = segment(model, 10, torch.float64)
    out = model(batch["audio"], batch["mel"])  # (B, 3K, N)
    t0 = 17
    changed = batch["audio"].clone()
    changed[:, t0:] = torch.rand_like(changed[:, t0:])  # everything from t0 on
    out2 = model(changed, batch["mel"])
    diff = (out2 - out).abs().amax(dim=(0, 1))  # (N,)
    assert diff[:t0 + 1].max().item() == 0.0  # output at t reads samples before t only
    assert diff[t0 + 1].item() > 1e-6  # ... and does read sample t - 1


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_incremental_steps_match_parallel_forward(kernel_size):
    model = tiny(kernel_size=kernel_size).double()
    batch = segment(model, 20, torch.float64)  # 80 samples > receptive field (1 + 2*7*2)
    audio = batch["audio"]
    parallel = model(audio, batch["mel"])  # (B, 3K, N)
    c = model.condition(batch["mel"])
    cond = model.stack.project_condition(c)  # (B, N, L, G)
    state = model.stack.start(audio.shape[0], c)
    previous, steps = torch.zeros_like(audio[:, 0]), []
    for t in range(audio.shape[1]):  # teacher forcing: feed the true previous sample
        steps.append(model.stack.step(previous, cond[:, t], state, t))
        previous = audio[:, t]
    incremental = torch.stack(steps, dim=-1)
    assert parallel.abs().max() > 0.1
    torch.testing.assert_close(incremental, parallel, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_mixture_likelihood_sums_to_one_over_16_bit_grid(dtype, tol):
    g = torch.Generator().manual_seed(0)
    n, k = 6, 10
    logits = torch.randn(n, k, 1, generator=g, dtype=dtype) * 2
    means = (torch.rand(n, k, 1, generator=g, dtype=dtype) * 2.4 - 1.2)  # some past the ends
    log_scales = torch.rand(n, k, 1, generator=g, dtype=dtype) * 8 - 10  # e^-10 .. e^-2
    log_scales[0] = -7.0  # typical floor: narrow, far wider than a bin
    grid = torch.linspace(-1, 1, GRID, dtype=dtype).expand(n, GRID)  # (n, 65536)
    log_p = discretized_log_prob(logits, means, log_scales, grid, bits=16)  # (n, 65536)
    assert torch.isfinite(log_p).all()
    total = log_p.exp().sum(dim=-1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=tol)


def test_discretized_probability_is_density_times_bin_width():
    logits, means = torch.zeros(1, 2, 1), torch.tensor([[[-0.2], [0.3]]])
    log_scales = torch.full((1, 2, 1), -4.0)
    x = torch.linspace(-0.5, 0.5, 101).unsqueeze(0)
    bin_width = 2 / (GRID - 1)
    discrete = discretized_log_prob(logits, means, log_scales, x, bits=16)
    continuous = log_density(logits, means, log_scales, x) + math.log(bin_width)
    torch.testing.assert_close(discrete, continuous, rtol=0, atol=1e-3)


def test_mixture_sampling_follows_the_mixture():
    torch.manual_seed(0)
    n = 200_000
    logits = torch.tensor([math.log(0.25), math.log(0.75)]).expand(n, 2)
    means = torch.tensor([-0.5, 0.4]).expand(n, 2)
    log_scales = torch.full((n, 2), math.log(0.02))
    x = sample_mixture(logits, means, log_scales)
    assert (x < 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert x[x > 0].mean().item() == pytest.approx(0.4, abs=0.005)
    # logistic of scale s has standard deviation s * pi / sqrt(3)
    assert x[x > 0].std().item() == pytest.approx(0.02 * math.pi / math.sqrt(3), rel=0.05)
    greedy = sample_mixture(logits[:3], means[:3], log_scales[:3], temperature=0)
    assert torch.equal(greedy, torch.full((3,), 0.4))


def test_generate_shapes_range_and_determinism():
    model = tiny().eval()
    mel = segment(model, 6)["mel"]
    audio = model.generate(mel)
    assert audio.shape == (2, 6 * model.cfg.hop_length)
    assert audio.abs().max() <= 1
    torch.testing.assert_close(model.generate(mel, temperature=0),
                               model.generate(mel, temperature=0))
    assert model.sample({"mel": mel})["audio"].shape == (6 * model.cfg.hop_length,)


def test_loss_rejects_mismatched_batch():
    model = tiny()
    batch = segment(model, 6)
    batch["audio"] = batch["audio"][:, :-1]
    with pytest.raises(ValueError, match="T \\* hop"):
        model.loss(batch)


def test_input_noise_corrupts_only_the_past_it_reads_in_training():
    """`input_noise` perturbs the network's input while training; evaluation (eval mode)
    sees the clean audio, and 0 draws nothing (same bytes as before the option)."""
    clean, noisy = tiny(), tiny(input_noise=0.01)
    noisy.load_state_dict(clean.state_dict())
    batch = segment(clean, 6)
    rng = torch.get_rng_state()
    reference = clean.loss(batch)["nll"]  # train mode, input_noise 0
    assert torch.equal(torch.get_rng_state(), rng)  # no draw: same stream as before
    assert not torch.equal(noisy.loss(batch)["nll"], reference)
    torch.testing.assert_close(noisy.eval().loss(batch)["nll"], reference)
    with pytest.raises(ConfigError, match="input_noise"):
        WaveNetConfig(input_noise=-0.1).validate("wavenet")


def real_clip(corpus, frames: int, audio_cfg: AudioConfig) -> dict:
    from tts.audio import load_wav, mel_spectrogram

    audio = torch.from_numpy(load_wav(corpus / "wavs" / "LJ001-0002.wav", audio_cfg.sample_rate))
    start = audio.abs().argmax().item() // audio_cfg.hop_length * audio_cfg.hop_length
    start = max(0, start - frames * audio_cfg.hop_length // 2)  # a loud, voiced stretch
    audio = audio[start:start + frames * audio_cfg.hop_length]
    mel = mel_spectrogram(audio, audio_cfg)[:, :frames]
    return {"audio": audio.unsqueeze(0), "mel": mel.unsqueeze(0)}


def test_overfitting_a_short_clip_lowers_the_nll(mini_corpus):
    torch.manual_seed(0)
    audio_cfg = AudioConfig()
    cfg = WaveNetConfig(residual_channels=16, gate_channels=32, skip_channels=16,
                        head_channels=32, layers=6)
    model = WaveNet(cfg)
    batch = real_clip(mini_corpus, 4, audio_cfg)
    losses = [step["loss"] for step in overfit(model, batch, 30, lr=3e-3)]
    assert all(math.isfinite(v) for v in losses)
    # nats per sample (the log-scales start at initial_log_scale, near the data's spread,
    # so the first loss is already ~2 nats below an untrained scale of 1)
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5
