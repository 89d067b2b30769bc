"""Parallel WaveNet student: inverse-autoregressive flows distilled from a WaveNet teacher.

van den Oord et al. 2018, "Parallel WaveNet: Fast High-Fidelity Speech Synthesis".
Logistic noise z passes through a stack of inverse-autoregressive flows (Kingma et al.
2016); flow i is a mel-conditioned causal WaveNet reading its input before t and giving a
shift mu_t and log-scale log s_t, and maps z_t -> z_t * s_t + mu_t. The stack composes to
one logistic per sample given the noise before it:

    x_t = z_t * s_tot_t + mu_tot_t,   log s_tot = sum of the flows' log-scales,

so a whole utterance is one parallel pass, and log |det dx/dz| = sum_t log s_tot_t.

Probability density distillation: KL(P_S || P_T) = H(P_S, P_T) - H(P_S). The frozen
teacher reads the student's sample x (its causal input) and the mel; the cross-entropy at
every t is estimated with `n_samples` fresh draws from the student's logistic at t,
scored by the teacher's mixture of logistics at t (the paper's per-step Monte Carlo). The
student's entropy is analytic: a logistic of scale s has entropy log s + 2. Both are
reported per sample in nats. The teacher's continuous mixture density is used for the
cross-entropy: the student is continuous, and with the teacher's log-scale floor its
logistics are far wider than a 16-bit bin. A multi-resolution STFT loss against the real
audio (`tts.audio.stft_distance`) plays the role of the paper's power loss by default;
`power_loss: average_power` selects the paper's (time-averaged power spectrum) and
`stft_loudness` adds the log frame-energy distance (`tts.audio.loudness_distance`).

Why the student whispers (issue 13, one LJSpeech clip, a teacher that Whisper hears):
the student's copies come out 10-15x quieter than the recording whatever the power loss
and its weight (stft 0.1 / 1 / 10, average_power 1 / 10: RMS x0.06-0.11 after 1,000
steps). Its untrained output is all noise path, z * s_tot at the recording's loudness;
the KL first shrinks s_tot towards the teacher's conditional spread (log-scale -3 ->
-5.8), and the loudness goes with it before the mean path has learned a waveform. Being
quiet is then a local optimum. In cross-entropy under the teacher (its negative
log-density, nats per sample; `density_by_level` in benchmarks/memorize_vocoders.py), a
teacher that memorized the clip (8,000 steps) scores the recording itself -4.51, the
recording at a tenth of its level -3.42, silence -3.54, and its students' samples -1.0
to -1.3 (a louder student) or -2.5 to -3.2 (the whispering default one): the recording
is the teacher's best, but a faint signal costs the student less than the noisy speech
it can make on its way there. Half-way through that teacher's training (4,000 steps)
silence even beat the recording (-3.87 against -3.82). The STFT power loss does not hold
it back: its log-magnitude term scores flat-spectrum noise better the quieter it is
(white noise against the clip: 5.35 at the recording's RMS, 3.40 at a tenth), and the
paper's power spectrum loss saturates (relative error -> 1) with a gradient that
vanishes with the amplitude. `loudness_distance` is least at the recording's level with
a gradient that stays; with it (weight 1) and flows that span a pitch period, the copy
gets louder as it trains (RMS x0.19 -> 0.25 over 1,000-3,000 steps) but is not yet
heard. The default flows (4, 4, 4, 6 layers of kernel 2) see 109 samples of noise in
all, less than one pitch period of LJSpeech's voice (median 114 samples, up to 179) and
of the builtin voice (129, up to 168): they cannot make a periodic wave from the noise,
only shaped noise. The paper's flows (10, 10, 10, 30) see 6,139. The README's "Vocoders
on one clip" has the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.wavenet import (Upsampler, WaveNet, WaveNetStack, at_least_float32, check_segments,
                            log_density, logistic_noise, normalize_mel, stack_widths,
                            validate_stack)
from tts.audio import DEFAULT_STFT_RESOLUTIONS, loudness_distance, stft_distance
from tts.contract import ConfigError

FLOW_PARAMS = 2  # shift, log-scale
LOGISTIC_ENTROPY = 2.0  # entropy of a logistic of scale s is log s + 2 (nats)
POWER_LOSSES = ("stft", "stft_loudness", "average_power")


@dataclass(frozen=True)
class ParallelWaveNetConfig:
    layers_per_flow: tuple[int, ...] = (4, 4, 4, 6)  # one entry per flow: its WaveNet depth
    residual_channels: int = 16  # channels of each flow's residual stream
    gate_channels: int = 32  # dilated conv output, split into tanh and sigmoid halves
    skip_channels: int = 16  # channels of each flow's skip connections
    head_channels: int = 16  # hidden channels of each flow's output head
    dilation_cycle: int = 10  # dilation doubles over this many layers, then restarts at 1
    kernel_size: int = 2  # width of the dilated causal convolutions
    upsample_factors: tuple[int, ...] = (16, 16)  # shared conditioning upsampler; product = hop
    initial_log_scale: float = -3.0  # total log-scale of the untrained stack (split evenly)
    n_samples: int = 4  # student draws per time step in the cross-entropy estimate
    power_weight: float = 0.1  # weight of the power loss
    # the power loss: "stft" = multi-resolution STFT distance (spectral convergence + log
    # magnitude, per frame); "stft_loudness" = that + the log frame-energy distance
    # (`tts.audio.loudness_distance`); "average_power" = the paper's: squared error of the
    # power spectrum |STFT|^2 averaged over frames, relative to the recording's (scale-free)
    power_loss: str = "stft"
    # (n_fft, hop, win) each; default: the project's multi-resolution STFT (tts.audio)
    power_resolutions: tuple[tuple[int, int, int], ...] = DEFAULT_STFT_RESOLUTIONS
    # feature contract (filled from `audio:`)
    sample_rate: int = 22050
    hop_length: int = 256
    n_mels: int = 80
    log_floor: float = 1e-5

    def validate(self, key: str) -> None:
        validate_stack(self, key)
        if not self.layers_per_flow or min(self.layers_per_flow) < 1:
            raise ConfigError(f"params: `{key}.layers_per_flow` must list at least one flow, "
                              f"each with at least 1 layer")
        if self.n_samples < 1:
            raise ConfigError(f"params: `{key}.n_samples` must be at least 1")
        if self.power_weight < 0:
            raise ConfigError(f"params: `{key}.power_weight` must be >= 0")
        if self.power_loss not in POWER_LOSSES:
            raise ConfigError(f"params: `{key}.power_loss` is {self.power_loss!r}; use one "
                              f"of {', '.join(POWER_LOSSES)}")
        for i, res in enumerate(self.power_resolutions):
            if len(res) != 3 or min(res) < 1 or res[2] > res[0]:
                raise ConfigError(f"params: `{key}.power_resolutions[{i}]` must be "
                                  f"[n_fft, hop, win] with win <= n_fft, got {list(res)}")

    @property
    def n_flows(self) -> int:
        return len(self.layers_per_flow)


def average_power_distance(x: torch.Tensor, y: torch.Tensor,
                           resolutions: tuple[tuple[int, int, int], ...]) -> torch.Tensor:
    """The paper's power loss, x and y (B, N): per resolution, the power spectrum |STFT|^2
    averaged over frames, phi (B, F); ||phi(x) - phi(y)||^2 / ||phi(y)||^2, averaged over
    the batch and the resolutions. (The paper's is not divided by ||phi(y)||^2; dividing
    makes `power_weight` independent of the recording's loudness and the FFT size.)"""
    total = x.new_zeros(())
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win, device=x.device, dtype=x.dtype)
        both = torch.stft(torch.cat([x, y]), n_fft, hop, win, window, center=True,
                          pad_mode="reflect", return_complex=True)  # (2B, F, frames)
        phi_x, phi_y = both.abs().pow(2).mean(-1).chunk(2)  # (B, F) each
        total = total + ((phi_x - phi_y).pow(2).sum(-1) / phi_y.pow(2).sum(-1)
                         .clamp(min=torch.finfo(x.dtype).tiny)).mean()
    return total / len(resolutions)


class Flow(nn.Module):
    """One IAF step: a causal WaveNet over its input gives shift and log-scale at each t."""

    def __init__(self, layers: int, initial_log_scale: float, **widths: int):
        super().__init__()
        self.stack = WaveNetStack(FLOW_PARAMS, layers, **widths)  # widths: stack_widths(cfg)
        last = self.stack.head[-1]
        with torch.no_grad():  # zero output weights: starts as z -> z * e^initial_log_scale
            last.weight.zero_()
            last.bias.copy_(torch.tensor([0.0, initial_log_scale]))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # z (B, N), c (B, C, N)
        out = self.stack(z, c)  # (B, 2, N), bf16 under autocast: audio needs float32
        out = out.to(at_least_float32(out.dtype))
        shift, log_scale = out.unbind(1)  # (B, N) each, from z before t
        return shift, log_scale


class ParallelWaveNet(nn.Module):
    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"upsampling": ("upsample",)}

    def __init__(self, cfg: ParallelWaveNetConfig):
        super().__init__()
        self.cfg = cfg
        self.upsample = Upsampler(cfg.n_mels, cfg.upsample_factors)
        per_flow = cfg.initial_log_scale / cfg.n_flows
        self.flows = nn.ModuleList(Flow(n, per_flow, **stack_widths(cfg))
                                   for n in cfg.layers_per_flow)
        self.teacher: WaveNet | None = None

    def bind_teacher(self, teacher: WaveNet) -> None:
        """Bind the frozen teacher scored in the loss (not a submodule: never saved)."""
        t, s = teacher.cfg, self.cfg
        for name in ("n_mels", "hop_length", "sample_rate", "log_floor"):
            if getattr(t, name) != getattr(s, name):
                raise ValueError(f"teacher {name}={getattr(t, name)} differs from the "
                                 f"student's {getattr(s, name)}; retrain the teacher with "
                                 f"the current `audio:` params")
        self.__dict__["teacher"] = teacher  # bypasses nn.Module registration on purpose

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        # mel (B, n_mels, T) -> (B, n_mels, T * hop)
        return self.upsample(normalize_mel(mel, self.cfg.log_floor))

    def forward(self, z: torch.Tensor, mel: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise z (B, N = T * hop), mel (B, n_mels, T) -> sample x, total mean mu_tot and
        total log-scale log s_tot, each (B, N); x = z * s_tot + mu_tot and
        sum(log s_tot) = log |det dx/dz|."""
        c = self.condition(mel)  # (B, n_mels, N)
        mu_tot, log_s_tot = torch.zeros_like(z), torch.zeros_like(z)
        for flow in self.flows:
            shift, log_scale = flow(z, c)  # (B, N) each
            scale = torch.exp(log_scale)
            z = z * scale + shift
            mu_tot = mu_tot * scale + shift
            log_s_tot = log_s_tot + log_scale
        return z, mu_tot, log_s_tot

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        if self.teacher is None:
            raise RuntimeError("parallel_wavenet needs its teacher: call bind_teacher(teacher)")
        check_segments(batch, self.cfg.hop_length, self.cfg.n_mels)
        audio, mel = batch["audio"], batch["mel"]  # (B, N), (B, n_mels, T)
        longest = max(n_fft for n_fft, _, _ in self.cfg.power_resolutions)
        if audio.shape[-1] <= longest // 2:  # the centred STFT reflect-pads n_fft / 2
            raise ValueError(f"segments of {audio.shape[-1]} samples are too short for the "
                             f"power loss's n_fft {longest}: raise "
                             f"parallel_wavenet.segment_frames or drop that resolution from "
                             f"parallel_wavenet.power_resolutions")
        x, mu, log_s = self(logistic_noise(audio.shape, audio), mel)  # (B, N) each
        teacher = self.teacher.mixture(x, mel)  # (B, K, N) each, reading x before t
        eps = logistic_noise((self.cfg.n_samples, *audio.shape), audio)  # (S, B, N)
        draws = mu + torch.exp(log_s) * eps  # (S, B, N): x_t given x before t
        cross_entropy = -log_density(*teacher, draws).mean()
        entropy = log_s.mean() + LOGISTIC_ENTROPY
        kl = cross_entropy - entropy
        if self.cfg.power_loss == "stft":
            power = stft_distance(x, audio, self.cfg.power_resolutions)
        elif self.cfg.power_loss == "stft_loudness":
            power = (stft_distance(x, audio, self.cfg.power_resolutions)
                     + loudness_distance(x, audio, self.cfg.power_resolutions))
        else:
            power = average_power_distance(x, audio, self.cfg.power_resolutions)
        return {"loss": kl + self.cfg.power_weight * power, "kl": kl,
                "cross_entropy": cross_entropy, "entropy": entropy, "power": power,
                "log_scale": log_s.mean().detach()}  # = log|det dx/dz| / N

    @torch.inference_mode()
    def generate(self, mel: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """The whole utterance in one parallel pass. mel (B, n_mels, T) -> (B, T * hop);
        temperature scales the input noise (0: the deterministic path z = 0)."""
        shape = (mel.shape[0], mel.shape[-1] * self.cfg.hop_length)
        z = temperature * logistic_noise(shape, mel)
        return self(z, mel)[0].clamp(-1, 1)

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"audio": self.generate(batch["mel"][:1])[0]}
