"""WaveNet vocoder: the autoregressive teacher.

van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio": dilated causal
convolutions, gated tanh * sigmoid units, residual and skip connections, local
conditioning on a mel spectrogram upsampled to the sample rate with transposed
convolutions. Output: a discretized mixture of logistics over the 16-bit grid
(Salimans et al. 2017, PixelCNN++), as in the Parallel WaveNet teacher (van den Oord et
al. 2018). Training is teacher-forced on random segments: the network sees the audio
shifted right by one sample and scores every sample at once.

Generation is the "Fast WaveNet" scheme (Paine et al. 2016): every layer keeps a queue of
its own past inputs, so each new sample costs one small step per layer instead of a pass
of the whole stack over the receptive field.

The head's log-scale outputs start at `initial_log_scale` (-4: a scale of ~0.02, the
spread of speech's next-sample error in [-1, 1]) rather than 0 (scale 1, twelve times the
RMS of speech): from 0, Adam at lr 1e-3 needs thousands of steps only to narrow the
logistics (issue 13: NLL 9.06 -> 7.92 nats in 2,000 steps on one clip, no better than a
first-order linear predictor's 7.9). From -4 the NLL on one clip is 7.56 at step 200
(9.04 from 0).

The building blocks (`Upsampler`, `ResidualLayer`, `WaveNetStack`) and the mixture
functions are shared with the Parallel WaveNet student (`models/parallel_wavenet.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tts.contract import ConfigError

RESIDUAL_SCALE = math.sqrt(0.5)  # keeps the residual stream's variance constant
MIXTURE_PARAMS = 3  # logit, mean, log-scale per component
UNIFORM_EPS = 1e-5  # keeps uniform draws away from 0 and 1 (finite logistic samples)
GENERATION_BLOCK = 4096  # samples whose conditioning is projected at once while generating


@dataclass(frozen=True)
class WaveNetConfig:
    residual_channels: int = 32  # channels of the residual stream
    gate_channels: int = 64  # dilated conv output, split into tanh and sigmoid halves
    skip_channels: int = 32  # channels of every skip connection (summed over layers)
    head_channels: int = 64  # hidden channels of the output head
    layers: int = 10  # residual layers
    dilation_cycle: int = 10  # dilation doubles over this many layers, then restarts at 1
    kernel_size: int = 2  # width of the dilated causal convolutions
    upsample_factors: tuple[int, ...] = (16, 16)  # transposed-conv stages; product = hop
    n_mixtures: int = 10  # logistic components of the output distribution
    log_scale_min: float = -7.0  # floor of each component's log-scale
    # log-scale every component starts at (the bias of the head's log-scale outputs); near
    # the spread of a next-sample prediction error of speech (~0.02 in [-1, 1]), not 0
    initial_log_scale: float = -4.0
    quantization_bits: int = 16  # the audio grid the likelihood is discretized on
    # std of Gaussian noise added to the past the network reads in training (targets stay
    # clean): against exposure bias, it makes the mel worth more than the exact past
    # (issue 13: on one clip, 0.01 took Whisper's WER of the free-running copy from 1.75
    # to 0.0-0.25 at 3,000-4,000 steps; 0 = plain teacher forcing)
    input_noise: float = 0.0
    # feature contract (filled from `audio:`)
    sample_rate: int = 22050
    hop_length: int = 256
    n_mels: int = 80
    log_floor: float = 1e-5

    def validate(self, key: str) -> None:
        validate_stack(self, key)
        if self.n_mixtures < 1:
            raise ConfigError(f"params: `{key}.n_mixtures` must be at least 1")
        if not 2 <= self.quantization_bits <= 24:
            raise ConfigError(f"params: `{key}.quantization_bits` must be in 2..24")
        if self.input_noise < 0:
            raise ConfigError(f"params: `{key}.input_noise` must be at least 0 (a standard "
                              f"deviation), got {self.input_noise}")

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layers, self.dilation_cycle, self.kernel_size)


def validate_stack(cfg, key: str) -> None:
    """Checks shared by the teacher and the student configs."""
    for name in ("residual_channels", "gate_channels", "skip_channels", "head_channels",
                 "dilation_cycle"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"params: `{key}.{name}` must be at least 1")
    if cfg.gate_channels % 2:
        raise ConfigError(f"params: `{key}.gate_channels` must be even (tanh and sigmoid "
                          f"halves), got {cfg.gate_channels}")
    if cfg.kernel_size < 2:
        raise ConfigError(f"params: `{key}.kernel_size` must be at least 2")
    if not cfg.upsample_factors or min(cfg.upsample_factors) < 1:
        raise ConfigError(f"params: `{key}.upsample_factors` must be a non-empty list of "
                          f"positive integers")
    if math.prod(cfg.upsample_factors) != cfg.hop_length:
        raise ConfigError(f"params: `{key}.upsample_factors` {list(cfg.upsample_factors)} "
                          f"multiply to {math.prod(cfg.upsample_factors)}, but "
                          f"audio.hop_length is {cfg.hop_length}; choose factors whose "
                          f"product is the hop length")


def dilations(layers: int, cycle: int) -> list[int]:
    return [2 ** (i % cycle) for i in range(layers)]


def receptive_field(layers: int, cycle: int, kernel_size: int) -> int:
    """Past samples that can influence one output (the input shift adds one)."""
    return 1 + (kernel_size - 1) * sum(dilations(layers, cycle))


# --------------------------------------------------------------------- building blocks


def normalize_mel(mel: torch.Tensor, log_floor: float) -> torch.Tensor:
    """Log-mel in [log(log_floor), ~0] -> roughly [0, 1]: floor at 0, full scale at 1."""
    floor = math.log(log_floor)
    return (mel - floor) / -floor


class Upsampler(nn.Module):
    """Mel frames -> sample rate with transposed convolutions, frame i centred on i * hop.

    Each stage (factor s, kernel 2s, one kernel per mel bin) spreads frame i over samples
    [i*s - s, i*s + s) and starts as linear interpolation (a triangular kernel).
    """

    def __init__(self, channels: int, factors: tuple[int, ...]):
        super().__init__()
        self.factors = tuple(factors)
        self.stages = nn.ModuleList(
            nn.ConvTranspose1d(channels, channels, 2 * s, stride=s, groups=channels)
            for s in self.factors)
        for stage, s in zip(self.stages, self.factors):
            offsets = torch.arange(2 * s, dtype=torch.float32) - s
            with torch.no_grad():
                stage.weight.copy_(1 - offsets.abs() / s)  # (C, 1, 2s) triangles
                stage.bias.zero_()

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        # c (B, C, T)
        for stage, s in zip(self.stages, self.factors):
            frames = c.shape[-1]
            c = stage(c)[..., s:s + frames * s]  # (B, C, T * s), drop the half-kernel lead
        return c.contiguous()  # (B, C, T * prod(factors))


class Conv1x1(nn.Linear):
    """A 1x1 convolution over (B, C, N) as one matmul (conv1d's CPU path is slower)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, in, N)
        weight = self.weight.expand(x.shape[0], -1, -1)  # (B, out, in), a view
        if self.bias is None:
            return torch.bmm(weight, x)  # (B, out, N)
        return torch.baddbmm(self.bias[:, None], weight, x)  # (B, out, N)


@dataclass
class LayerSteps:
    """A residual layer prepared for Fast WaveNet steps."""

    queue: torch.Tensor  # (B, span, R): the layer's input at time u in row u % span
    taps: list[torch.Tensor]  # (R, G) per conv tap, oldest first
    res_w: torch.Tensor  # (G/2, R) residual projection, residual scale folded in
    res_b: torch.Tensor  # (R,)
    skip_w: torch.Tensor  # (G/2, S) skip projection


@dataclass
class StackSteps:
    """A WaveNet stack prepared for Fast WaveNet steps."""

    layers: list[LayerSteps]
    skip_b: torch.Tensor  # (S,) sum of every layer's skip bias


class ResidualLayer(nn.Module):
    """Dilated causal conv + conditioning -> gated unit -> residual and skip outputs."""

    def __init__(self, residual: int, gate: int, skip: int, cond: int, dilation: int,
                 kernel_size: int):
        super().__init__()
        self.dilation, self.kernel_size = dilation, kernel_size
        self.span = dilation * (kernel_size - 1)  # past inputs this layer looks at
        self.residual, self.skip = residual, skip
        self.dilated = nn.Conv1d(residual, gate, kernel_size, dilation=dilation)
        self.cond = Conv1x1(cond, gate, bias=False)
        self.out = Conv1x1(gate // 2, residual + skip)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, R, N), c (B, C, N)
        h = self.dilated(F.pad(x, (self.span, 0))) + self.cond(c)  # (B, G, N)
        a, b = h.chunk(2, dim=1)
        res, skip = self.out(torch.tanh(a) * torch.sigmoid(b)).split(
            [self.residual, self.skip], dim=1)
        return (x + res) * RESIDUAL_SCALE, skip  # (B, R, N), (B, S, N)

    @torch.no_grad()
    def start(self, batch: int, like: torch.Tensor) -> LayerSteps:
        """State for incremental steps: an empty input queue and the weights as matrices."""
        weight, out = self.dilated.weight, self.out.weight  # (G, R, K), (R + S, G/2)
        return LayerSteps(
            queue=like.new_zeros(batch, self.span, self.residual),
            taps=[weight[:, :, k].t().contiguous() for k in range(self.kernel_size)],
            res_w=(out[:self.residual] * RESIDUAL_SCALE).t().contiguous(),
            res_b=self.out.bias[:self.residual] * RESIDUAL_SCALE,
            skip_w=out[self.residual:].t().contiguous())

    def step(self, x: torch.Tensor, cond: torch.Tensor, state: LayerSteps, t: int,
             skips: torch.Tensor) -> torch.Tensor:
        """One time step. x (B, R): input at t; cond (B, G): this layer's projected
        conditioning at t plus the conv bias; adds the skip output into skips (B, S)."""
        h = torch.addmm(cond, x, state.taps[-1])  # (B, G); tap K - 1 reads time t
        for j in range(1, self.kernel_size):  # tap K - 1 - j reads time t - j * dilation
            h.addmm_(state.queue[:, (t - j * self.dilation) % self.span],
                     state.taps[-1 - j])
        state.queue[:, t % self.span] = x  # overwrites time t - span, no longer needed
        half = h.shape[1] // 2
        gated = torch.tanh(h[:, :half]).mul_(torch.sigmoid(h[:, half:]))  # (B, G/2)
        skips.addmm_(gated, state.skip_w)
        return torch.addmm(state.res_b, gated, state.res_w).add_(x, alpha=RESIDUAL_SCALE)


def stack_widths(cfg) -> dict[str, int]:
    """The WaveNetStack keyword arguments a (WaveNet or Parallel WaveNet) config sets."""
    return dict(residual_channels=cfg.residual_channels, gate_channels=cfg.gate_channels,
                skip_channels=cfg.skip_channels, head_channels=cfg.head_channels,
                cond_channels=cfg.n_mels, kernel_size=cfg.kernel_size,
                dilation_cycle=cfg.dilation_cycle)


class WaveNetStack(nn.Module):
    """Causal WaveNet body: output at t depends on signal samples before t (and on c)."""

    def __init__(self, out_channels: int, layers: int, *, residual_channels: int,
                 gate_channels: int, skip_channels: int, head_channels: int, cond_channels: int,
                 kernel_size: int, dilation_cycle: int):
        super().__init__()
        self.input = Conv1x1(1, residual_channels)
        self.layers = nn.ModuleList(
            ResidualLayer(residual_channels, gate_channels, skip_channels, cond_channels, d,
                          kernel_size)
            for d in dilations(layers, dilation_cycle))
        self.skip_scale = math.sqrt(1.0 / layers)
        self.head = nn.Sequential(nn.ReLU(), Conv1x1(skip_channels, head_channels),
                                  nn.ReLU(), Conv1x1(head_channels, out_channels))

    def forward(self, signal: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # signal (B, N), c (B, C, N)
        x = self.input(F.pad(signal, (1, -1)).unsqueeze(1))  # (B, R, N), shifted right by one
        skips = 0
        for layer in self.layers:
            x, skip = layer(x, c)  # (B, R, N), (B, S, N)
            skips = skips + skip
        return self.head(skips * self.skip_scale)  # (B, out, N)

    @torch.no_grad()
    def start(self, batch: int, like: torch.Tensor) -> StackSteps:
        """Empty queues and matrix weights for `step`; call again after the weights change."""
        skip_b = sum(layer.out.bias[layer.residual:] for layer in self.layers)
        return StackSteps([layer.start(batch, like) for layer in self.layers], skip_b)

    def project_condition(self, c: torch.Tensor) -> torch.Tensor:
        """Every layer's conditioning term (+ its conv bias) for incremental steps.
        c (B, C, N) -> (B, N, layers, G)."""
        weight = torch.cat([layer.cond.weight for layer in self.layers])  # (L * G, C)
        bias = torch.cat([layer.dilated.bias for layer in self.layers])  # (L * G,)
        out = torch.matmul(c.transpose(1, 2), weight.t()) + bias  # (B, N, L * G)
        return out.unflatten(2, (len(self.layers), -1))

    def step(self, previous: torch.Tensor, cond: torch.Tensor, state: StackSteps,
             t: int) -> torch.Tensor:
        """Output at t from the sample at t - 1, reading and updating the layers' queues.
        previous (B,), cond (B, L, G) from `project_condition` at t -> (B, out)."""
        x = F.linear(previous.unsqueeze(1), self.input.weight, self.input.bias)  # (B, R)
        skips = state.skip_b.repeat(previous.shape[0], 1)  # (B, S)
        for layer, layer_cond, layer_state in zip(self.layers, cond.unbind(1), state.layers):
            x = layer.step(x, layer_cond, layer_state, t, skips)  # (B, R)
        h = F.relu(skips.mul_(self.skip_scale))
        h = F.relu(F.linear(h, self.head[1].weight, self.head[1].bias))
        return F.linear(h, self.head[3].weight, self.head[3].bias)  # (B, out)


# ------------------------------------------------------- discretized mixture of logistics


def split_mixture(out: torch.Tensor, log_scale_min: float, dim: int = -2
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network output (..., 3K, N) -> logits, means, log-scales, each (..., K, N)
    (dim=-1: one step's (B, 3K) -> (B, K) each)."""
    logits, means, log_scales = out.chunk(MIXTURE_PARAMS, dim=dim)
    return logits, means, log_scales.clamp(min=log_scale_min)


def discretized_log_prob(logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                         x: torch.Tensor, bits: int) -> torch.Tensor:
    """log P(x) of the discretized mixture; x (..., N) in [-1, 1] -> (..., N).

    The 2**bits grid values split [-1, 1] evenly; bin k is [x_k - h, x_k + h] with
    h = 1 / (2**bits - 1), the two end bins reach to -inf / +inf. The bin mass
    sigmoid(a) - sigmoid(b) is computed as sigmoid(a) sigmoid(-b) (1 - exp(b - a)), which
    stays accurate in float32 where bins are far narrower than the logistic.
    """
    half_bin = 1.0 / (2 ** bits - 1)
    x = x.unsqueeze(-2)  # (..., 1, N)
    inv_scale = torch.exp(-log_scales)  # (..., K, N)
    upper = (x - means + half_bin) * inv_scale
    lower = (x - means - half_bin) * inv_scale
    below_upper = F.logsigmoid(upper)  # log CDF at the upper edge
    above_lower = F.logsigmoid(-lower)  # log (1 - CDF) at the lower edge
    inside = below_upper + above_lower + torch.log(-torch.expm1(-2 * half_bin * inv_scale))
    log_p = torch.where(x < -1 + half_bin, below_upper,
                        torch.where(x > 1 - half_bin, above_lower, inside))  # (..., K, N)
    return torch.logsumexp(F.log_softmax(logits, dim=-2) + log_p, dim=-2)


def log_density(logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
    """Continuous log-density of the (undiscretized) mixture; x (..., N) -> (..., N)."""
    u = (x.unsqueeze(-2) - means) * torch.exp(-log_scales)  # (..., K, N)
    log_p = -u - 2 * F.softplus(-u) - log_scales
    return torch.logsumexp(F.log_softmax(logits, dim=-2) + log_p, dim=-2)


def logistic_noise(shape, like: torch.Tensor) -> torch.Tensor:
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    u = u.clamp(UNIFORM_EPS, 1 - UNIFORM_EPS)
    return torch.log(u) - torch.log1p(-u)


def mixture_noise(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws for `sample_mixture`: Gumbel noise like logits (..., K), logistic noise (...)."""
    u = torch.rand_like(logits).clamp(UNIFORM_EPS, 1 - UNIFORM_EPS)
    return -torch.log(-torch.log(u)), logistic_noise(logits.shape[:-1], logits)


def sample_mixture(logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                   temperature: float = 1.0, noise: tuple | None = None) -> torch.Tensor:
    """One draw per position; (..., K) params -> (...,) in [-1, 1]. temperature scales the
    logistic noise; 0 takes the mean of the most probable component (deterministic).
    noise: pre-drawn `mixture_noise(logits)` (fresh draws when None)."""
    if temperature <= 0:
        k = logits.argmax(dim=-1, keepdim=True)
        return means.gather(-1, k).squeeze(-1).clamp(-1, 1)
    gumbel, logistic = noise if noise is not None else mixture_noise(logits)
    k = (logits + gumbel).argmax(dim=-1, keepdim=True)  # Gumbel-max: component ~ softmax
    mean = means.gather(-1, k).squeeze(-1)
    scale = torch.exp(log_scales.gather(-1, k).squeeze(-1))
    return (mean + temperature * scale * logistic).clamp(-1, 1)


def at_least_float32(dtype: torch.dtype) -> torch.dtype:
    """float32 for bf16 / fp16 (autocast outputs), float64 stays float64."""
    return torch.promote_types(dtype, torch.float32)


def check_segments(batch: dict, hop_length: int, n_mels: int) -> None:
    audio, mel = batch["audio"], batch["mel"]
    if mel.dim() != 3 or mel.shape[1] != n_mels:
        raise ValueError(f"batch['mel'] must be (B, {n_mels}, T), got {tuple(mel.shape)}")
    if audio.shape != (mel.shape[0], mel.shape[2] * hop_length):
        raise ValueError(f"batch['audio'] must be (B, T * hop) = "
                         f"{(mel.shape[0], mel.shape[2] * hop_length)} for mel "
                         f"{tuple(mel.shape)}, got {tuple(audio.shape)}")


# ------------------------------------------------------------------------------- model


class WaveNet(nn.Module):
    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"upsampling": ("upsample",)}

    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        self.upsample = Upsampler(cfg.n_mels, cfg.upsample_factors)
        self.stack = WaveNetStack(MIXTURE_PARAMS * cfg.n_mixtures, cfg.layers, **stack_widths(cfg))
        with torch.no_grad():  # output order: logits, means, log-scales (split_mixture)
            self.stack.head[-1].bias[2 * cfg.n_mixtures:].fill_(cfg.initial_log_scale)

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        # mel (B, n_mels, T) -> (B, n_mels, T * hop)
        return self.upsample(normalize_mel(mel, self.cfg.log_floor))

    def forward(self, audio: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Mixture parameters at every sample, each from the samples before it.
        audio (B, N = T * hop), mel (B, n_mels, T) -> (B, 3K, N)."""
        return self.stack(audio, self.condition(mel))

    def mixture(self, audio: torch.Tensor, mel: torch.Tensor):
        """(logits, means, log_scales), each (B, K, N), in float32 even under bf16 autocast:
        a 16-bit bin is far below bf16 resolution."""
        out = self(audio, mel)  # (B, 3K, N)
        return split_mixture(out.to(at_least_float32(out.dtype)), self.cfg.log_scale_min)

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        check_segments(batch, self.cfg.hop_length, self.cfg.n_mels)
        audio = batch["audio"]  # (B, N)
        past = audio  # what the network reads; the targets stay clean
        if self.training and self.cfg.input_noise > 0:
            past = audio + self.cfg.input_noise * torch.randn_like(audio)
        log_p = discretized_log_prob(*self.mixture(past, batch["mel"]), audio,
                                     self.cfg.quantization_bits)  # (B, N)
        nll = -log_p.mean()
        return {"loss": nll, "nll": nll, "bits_per_sample": nll.detach() / math.log(2)}

    @torch.inference_mode()
    def generate(self, mel: torch.Tensor, temperature: float = 1.0,
                 progress: bool = False) -> torch.Tensor:
        """Sample audio one sample at a time with per-layer queues.
        mel (B, n_mels, T) -> (B, T * hop) in [-1, 1]."""
        c = self.condition(mel)  # (B, n_mels, N)
        batch, n = c.shape[0], c.shape[-1]
        state = self.stack.start(batch, c)
        audio = c.new_zeros(batch, n)
        previous = c.new_zeros(batch)
        k = self.cfg.n_mixtures
        for t in tqdm(range(n), desc="wavenet", unit="sample", disable=not progress):
            j = t % GENERATION_BLOCK
            if j == 0:  # the next block's conditioning (all layers) and sampling noise
                cond = self.stack.project_condition(c[:, :, t:t + GENERATION_BLOCK])
                gumbel, logistic = mixture_noise(c.new_empty(batch, GENERATION_BLOCK, k))
            out = self.stack.step(previous, cond[:, j], state, t)  # (B, 3K)
            logits, means, log_scales = split_mixture(out, self.cfg.log_scale_min, dim=-1)
            previous = sample_mixture(logits, means, log_scales, temperature,
                                      (gumbel[:, j], logistic[:, j]))  # (B,)
            audio[:, t] = previous
        return audio

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"audio": self.generate(batch["mel"][:1])[0]}
