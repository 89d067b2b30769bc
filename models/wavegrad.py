"""WaveGrad: a diffusion vocoder, log-mel -> waveform by iterative refinement.

Chen et al. 2020, "WaveGrad: Estimating Gradients for Waveform Generation"
(arXiv:2009.00713). The network predicts the Gaussian noise in a noisy waveform given the
mel spectrogram and the continuous noise level sqrt(alpha_bar). Upsampling blocks
(UBlocks) lift a conv embedding of the mel to the sample rate; downsampling blocks
(DBlocks) take the noisy waveform down through the same rates in reverse, and at each rate
a FiLM module turns the DBlock features plus a sinusoidal encoding of the noise level into
a scale and shift that modulate the UBlock of that rate.

Training (paper section 3.1): the noise level is drawn uniformly between two adjacent
levels of a fixed training schedule, so the network learns a continuous range of levels
and can then be sampled with any beta schedule, for instance a 6-iteration one found by
`stages/search_noise_schedule.py`. The loss is L1 between true and predicted noise.

Choices beyond the paper: DBlocks downsample by average pooling (the paper does not
specify; plain decimation aliases); convs use Xavier-uniform initialization except the
output conv, which starts at zero so training begins at "predict no noise" (L1 ~ 0.8)
instead of a random output several times larger (measured: loss 5.8 at step 0).

Memorizing one clip (issue 13; log-mel L1 of the copy synthesis to the recording, Griffin-
Lim 0.14, noise 2.7) showed three departures from "audio in [-1, 1] as the paper's x0":
- the network ignored the mel: with raw log-mels (mean -5, floor -11.5) a model trained
  600 steps predicted the same noise with the clip's mel and with it reversed in time. The
  mel is now normalized to ~[0, 1] like the WaveNet's (`normalize_mel`).
- speech has an RMS of ~0.08, so against unit-variance noise the signal dominates only
  the cleanest ~3% of training levels; the diffusion now runs on audio * `audio_gain`
  (10: RMS ~0.8). At 400 steps: L1 2.24 (neither), 2.03 (normalized mel), 1.49 (both).
- sampling starts from pure noise, so the default schedule must end near the noisiest
  training level (0.08): the old linear 1e-4..0.05 ended at 0.53, i.e. it started from a
  sample that should have held half the signal, and came out 3x too quiet; it now ends at
  beta 0.2 (level 0.07). Each step clamps the implied clean signal to the audio range
  (DDPM's clipped posterior mean), so an undertrained network cannot diverge to inf.
After these, what limits a copy is the network's accuracy, not the sampler: one model
(1,000 steps) scored 1.13 with the default 50 iterations, 1.16 with 25 (betas to 0.4), 1.15
with 100, 1.20 with 200 and 1.22 with the full 1,000-step training schedule. The default
size learns fastest at lr 3e-3 (params.yaml; 1,000 steps: 1.01, vs 1.13 at 5e-3 and 1.04
after 1,500 at 1e-3); a 3.7x wider low-rate half (0.99M parameters) was no better per step
at 250 steps (1.64 vs 1.54) and cost 1.9x per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.wavenet import normalize_mel
from tts.contract import check

LEAKY_SLOPE = 0.2  # leaky-ReLU slope throughout (paper)
MAX_TIMESCALE = 10000.0  # sinusoidal encoding: wavelengths grow geometrically to this


@dataclass(frozen=True)
class WaveGradConfig:
    # contract fields, filled by tts.config from `audio:`
    n_mels: int = 80  # mel bins of the conditioning spectrogram
    hop_length: int = 256  # waveform samples per mel frame
    log_floor: float = 1e-5  # log-mel floor: the conditioning is normalized to ~[0, 1] with it
    # architecture (defaults: a small CPU-sized model; presets/wavegrad-base.yaml is the
    # paper's 15.8M-parameter base model). Paper values in brackets.
    upsample_factors: tuple[int, ...] = (4, 4, 4, 2, 2)  # UBlock factors; product = hop_length
    mel_channels: int = 96  # conv over the mel, input of the first UBlock [768]
    upsample_channels: tuple[int, ...] = (64, 64, 32, 16, 16)  # UBlocks [512 512 256 128 128]
    upsample_dilations: tuple[tuple[int, ...], ...] = (  # 4 per UBlock [these]
        (1, 2, 1, 2), (1, 2, 1, 2), (1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8))
    # outputs of the waveform conv, then of each DBlock, full rate first; even
    downsample_channels: tuple[int, ...] = (8, 16, 16, 32, 64)  # [32 128 128 256 512]
    downsample_dilations: tuple[int, ...] = (1, 2, 4)  # the convs inside each DBlock [these]
    input_kernel: int = 5  # first conv on the waveform, odd [5]
    noise_level_scale: float = 5000.0  # noise level multiplier inside the sine encoding [5000]
    # the diffusion runs on audio * audio_gain: speech in [-1, 1] has an RMS of ~0.08, so at
    # gain 1 the unit-variance noise drowns it at all but the cleanest training levels and
    # the network learns to ignore the mel (measured; see the module docstring)
    audio_gain: float = 10.0
    # training noise schedule: linear betas; levels sqrt(alpha_bar) bound the sampled level
    train_noise_steps: int = 1000  # [1000]
    train_beta_start: float = 1e-6  # [1e-6]
    train_beta_end: float = 0.01  # [0.01]
    # default inference schedule (validation samples; `generate` without betas): linear
    inference_iterations: int = 50
    inference_beta_start: float = 1e-4
    inference_beta_end: float = 0.2

    def validate(self, key: str) -> None:
        n = len(self.upsample_factors)
        check(n >= 1 and all(f >= 1 for f in self.upsample_factors), f"{key}.upsample_factors",
              "must be a non-empty list of positive integers")
        check(math.prod(self.upsample_factors) == self.hop_length, f"{key}.upsample_factors",
              f"= {list(self.upsample_factors)} multiply to {math.prod(self.upsample_factors)}"
              f", but audio.hop_length is {self.hop_length}; their product must equal it")
        for name in ("upsample_channels", "upsample_dilations", "downsample_channels"):
            check(len(getattr(self, name)) == n, f"{key}.{name}",
                  f"needs one entry per upsampling factor ({n}), got {len(getattr(self, name))}")
        check(all(len(d) == 4 for d in self.upsample_dilations), f"{key}.upsample_dilations",
              "needs 4 dilations per UBlock")
        check(all(c >= 2 and c % 2 == 0 for c in self.downsample_channels),
              f"{key}.downsample_channels", "must be even (half sine, half cosine encoding)")
        for name in ("n_mels", "hop_length", "mel_channels", "train_noise_steps",
                     "inference_iterations"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        check(self.input_kernel % 2 == 1, f"{key}.input_kernel", "must be odd")
        check(self.audio_gain > 0, f"{key}.audio_gain", "must be positive")
        check(0 < self.train_beta_start <= self.train_beta_end < 1, f"{key}.train_beta_start",
              "need 0 < train_beta_start <= train_beta_end < 1")
        check(0 < self.inference_beta_start <= self.inference_beta_end < 1,
              f"{key}.inference_beta_start",
              "need 0 < inference_beta_start <= inference_beta_end < 1")


def linear_betas(iterations: int, start: float, end: float) -> list[float]:
    """A linear beta schedule as a plain list (the form `generate` takes)."""
    return torch.linspace(start, end, iterations, dtype=torch.float64).tolist()


def noise_levels(betas: list[float] | Tensor) -> Tensor:
    """sqrt(alpha_bar) after each step, with level 1 (clean) prepended: (len(betas) + 1,)."""
    alphas = 1 - torch.as_tensor(betas, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(alphas, 0).sqrt()])


class NoiseEncoding(nn.Module):
    """Sinusoidal encoding of the continuous noise level, added over time."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        half = channels // 2
        self.register_buffer("freqs", MAX_TIMESCALE ** (-torch.arange(half) / half),
                             persistent=False)
        self.scale = scale

    def forward(self, x: Tensor, level: Tensor) -> Tensor:
        angle = self.scale * level[:, None] * self.freqs[None, :]  # (B, C/2)
        return x + torch.cat([angle.sin(), angle.cos()], 1)[:, :, None]  # (B, C, T)


class FiLM(nn.Module):
    """Feature-wise linear modulation from DBlock features and the noise level."""

    def __init__(self, channels: int, out_channels: int, scale: float):
        super().__init__()
        self.conv_in = nn.Conv1d(channels, channels, 3, padding=1)
        self.encoding = NoiseEncoding(channels, scale)
        self.conv_out = nn.Conv1d(channels, 2 * out_channels, 3, padding=1)

    def forward(self, x: Tensor, level: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.conv_in(x), LEAKY_SLOPE)  # (B, C, T)
        x = self.encoding(x, level)
        scale, shift = self.conv_out(x).chunk(2, 1)  # 2 x (B, C_out, T)
        return scale, shift


class UBlock(nn.Module):
    """Upsample by `factor`, four dilated convs with FiLM, two residual paths (paper fig. 3)."""

    def __init__(self, channels: int, out_channels: int, factor: int, dilations: tuple[int, ...]):
        super().__init__()
        self.factor = factor
        self.skip = nn.Conv1d(channels, out_channels, 1)
        widths = [channels] + [out_channels] * 3
        self.convs = nn.ModuleList(nn.Conv1d(c, out_channels, 3, dilation=d, padding=d)
                                   for c, d in zip(widths, dilations))

    def upsample(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="nearest")  # (B, C, T * factor)

    def forward(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        c1, c2, c3, c4 = self.convs
        h = c1(self.upsample(F.leaky_relu(x, LEAKY_SLOPE)))  # (B, C_out, T * factor)
        h = c2(F.leaky_relu(scale * h + shift, LEAKY_SLOPE))
        x = self.skip(self.upsample(x)) + h  # (B, C_out, T * factor)
        h = c3(F.leaky_relu(scale * x + shift, LEAKY_SLOPE))
        h = c4(F.leaky_relu(scale * h + shift, LEAKY_SLOPE))
        return x + h


class DBlock(nn.Module):
    """Downsample the waveform features by `factor`, then dilated convs, with a residual."""

    def __init__(self, channels: int, out_channels: int, factor: int, dilations: tuple[int, ...]):
        super().__init__()
        self.factor = factor
        self.skip = nn.Conv1d(channels, out_channels, 1)
        widths = [channels] + [out_channels] * (len(dilations) - 1)
        self.convs = nn.ModuleList(nn.Conv1d(c, out_channels, 3, dilation=d, padding=d)
                                   for c, d in zip(widths, dilations))

    def forward(self, x: Tensor) -> Tensor:
        x = F.avg_pool1d(x, self.factor)  # (B, C, T / factor)
        residual = self.skip(x)
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LEAKY_SLOPE))
        return x + residual  # (B, C_out, T / factor)


class WaveGrad(nn.Module):
    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"upsampling": ("mel_conv", "ublocks"),
                   "downsampling": ("wave_conv", "dblocks", "films")}

    def __init__(self, cfg: WaveGradConfig):
        super().__init__()
        self.cfg = cfg
        up, down = cfg.upsample_channels, cfg.downsample_channels
        # the DBlock stack mirrors the UBlocks: the first UBlock's factor has no DBlock
        # (its rate is the lowest one, reached by the last DBlock)
        down_factors = cfg.upsample_factors[::-1][:-1]
        self.wave_conv = nn.Conv1d(1, down[0], cfg.input_kernel, padding=cfg.input_kernel // 2)
        self.dblocks = nn.ModuleList(DBlock(c_in, c_out, f, cfg.downsample_dilations)
                                     for c_in, c_out, f in zip(down, down[1:], down_factors))
        # FiLM i modulates the UBlock at the same rate: UBlock n-1-i
        self.films = nn.ModuleList(FiLM(c, u, cfg.noise_level_scale)
                                   for c, u in zip(down, up[::-1]))
        self.mel_conv = nn.Conv1d(cfg.n_mels, cfg.mel_channels, 3, padding=1)
        self.ublocks = nn.ModuleList(UBlock(c_in, c_out, f, d) for c_in, c_out, f, d in zip(
            (cfg.mel_channels,) + tuple(up[:-1]), up, cfg.upsample_factors, cfg.upsample_dilations))
        self.out_conv = nn.Conv1d(up[-1], 1, 3, padding=1)
        levels = noise_levels(linear_betas(cfg.train_noise_steps, cfg.train_beta_start,
                                           cfg.train_beta_end))
        self.register_buffer("train_levels", levels.float(), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out_conv.weight)  # first prediction: no noise (loss ~ E|eps|)

    def forward(self, noisy: Tensor, mel: Tensor, level: Tensor) -> Tensor:
        """Predicted noise (B, T * hop) in `noisy` (B, T * hop) given `mel` (B, n_mels, T)
        and the noise level sqrt(alpha_bar) per item (B,)."""
        x = self.wave_conv(noisy[:, None, :])  # (B, C_0, T * hop)
        films = [self.films[0](x, level)]
        for dblock, film in zip(self.dblocks, self.films[1:]):
            x = dblock(x)  # (B, C_i, T * hop / prod(factors so far))
            films.append(film(x, level))
        y = self.mel_conv(normalize_mel(mel, self.cfg.log_floor))  # (B, mel_channels, T)
        for ublock, (scale, shift) in zip(self.ublocks, reversed(films)):
            y = ublock(y, scale, shift)  # (B, C_out, T * prod(factors so far))
        return self.out_conv(y)[:, 0]  # (B, T * hop)

    def loss(self, batch: dict) -> dict[str, Tensor]:
        audio, mel = batch["audio"], batch["mel"]  # (B, N), (B, n_mels, T)
        audio = audio * self.cfg.audio_gain  # the diffusion's signal scale
        b = audio.shape[0]
        step = torch.randint(1, self.cfg.train_noise_steps + 1, (b,), device=audio.device)
        high, low = self.train_levels[step - 1], self.train_levels[step]  # (B,) each
        level = low + (high - low) * torch.rand(b, device=audio.device)  # (B,)
        noise = torch.randn_like(audio)
        noisy = level[:, None] * audio + (1 - level[:, None] ** 2).sqrt() * noise
        return {"loss": F.l1_loss(self(noisy, mel, level), noise)}

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, Tensor]:
        return {"audio": self.generate(batch["mel"][:1])[0]}  # (N,)

    @torch.no_grad()
    def generate(self, mel: Tensor, betas: list[float] | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Waveform (B, T * hop) in [-1, 1] from `mel` (B, n_mels, T) by ancestral sampling
        with any beta schedule (default: the config's linear inference schedule); pass a
        seeded `generator` (on mel's device) for reproducible noise."""
        cfg = self.cfg
        if betas is None:
            betas = linear_betas(cfg.inference_iterations, cfg.inference_beta_start,
                                 cfg.inference_beta_end)
        beta = torch.as_tensor(betas, dtype=torch.float64)
        if beta.ndim != 1 or len(beta) == 0 or not bool(((beta > 0) & (beta < 1)).all()):
            raise ValueError(f"betas must be a non-empty list of values in (0, 1), got {betas}")
        alpha = 1 - beta
        alpha_bar = torch.cumprod(alpha, 0)
        previous_bar = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        b, _, frames = mel.shape
        shape = (b, frames * cfg.hop_length)
        y = torch.randn(shape, generator=generator, device=mel.device, dtype=mel.dtype)
        for n in reversed(range(len(beta))):
            level = torch.full((b,), alpha_bar[n].sqrt().item(), device=mel.device)
            eps = self(y, mel, level)  # (B, N)
            # the clean signal this implies, kept inside the audio range (x in [-1, 1] times
            # the gain); then the posterior mean of the previous step given it and y. Equal
            # to the usual (y - beta eps / sqrt(1 - a_bar)) / sqrt(alpha) unless clamped;
            # the clamp stops an untrained network's error from compounding to inf.
            clean = ((y - (1 - alpha_bar[n]).sqrt().item() * eps) / alpha_bar[n].sqrt().item()
                     ).clamp(-cfg.audio_gain, cfg.audio_gain)
            to_clean = (previous_bar[n].sqrt() * beta[n] / (1 - alpha_bar[n])).item()
            to_noisy = (alpha[n].sqrt() * (1 - previous_bar[n]) / (1 - alpha_bar[n])).item()
            y = to_clean * clean + to_noisy * y
            if n > 0:  # posterior noise sigma_n^2 = beta_n (1 - a_bar_{n-1}) / (1 - a_bar_n)
                sigma = (beta[n] * (1 - previous_bar[n]) / (1 - alpha_bar[n])).sqrt().item()
                y = y + sigma * torch.randn(shape, generator=generator, device=mel.device,
                                            dtype=mel.dtype)
        return (y / cfg.audio_gain).clamp(-1.0, 1.0)
