"""FastSpeech 2: a non-autoregressive acoustic model, phonemes -> log-mel.

Ren et al. 2020, "FastSpeech 2: Fast and High-Quality End-to-End Text to Speech"
(arXiv:2006.04558). A feed-forward Transformer encoder over phonemes, a variance adaptor
that predicts each phone's duration (log domain), pitch and energy and adds quantized
embeddings of them, a length regulator that repeats phone states for their frame
durations, and a feed-forward Transformer decoder over frames with a linear projection to
mel bins. Training is teacher-forced on the aligner's durations and the extracted pitch
and energy (z-normalized, see docs/architecture.md); inference uses the predictions,
which makes duration, pitch and energy directly controllable.

Departures from the paper: pitch is regressed directly as z-normalized log-F0 (the paper
predicts a continuous-wavelet pitch spectrogram); `variance_level` switches pitch/energy
between the paper's frame-level targets (the default: on the builtin corpus they gave WER
0.254 against 0.295 and validation mel L1 0.52 against 0.64) and phone-level ones (as
FastPitch does); an optional Tacotron 2 style postnet (the paper has none) refines the
decoder's mel with a residual; the attention weights get no dropout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tts.attention import length_mask
from tts.contract import check
from tts.text import SYMBOLS

# log-duration targets are log(d + offset) so zero-frame phones (possible in alignments)
# stay finite; predictions invert it with exp(x) - offset
LOG_DURATION_OFFSET = 1.0
# sinusoidal positional encoding: wavelengths run geometrically up to this timescale
MAX_TIMESCALE = 10000.0


@dataclass(frozen=True)
class FastSpeech2Config:
    # contract fields, filled by tts.config from the symbol table and `audio:`
    n_symbols: int = len(SYMBOLS)  # phoneme vocabulary size, index 0 is padding
    n_mels: int = 80  # mel bins predicted per frame
    # feed-forward Transformer (FFT) blocks
    hidden: int = 128  # model width (paper: 256)
    encoder_layers: int = 2  # FFT blocks over phonemes (paper: 4)
    decoder_layers: int = 2  # FFT blocks over frames (paper: 4)
    heads: int = 2  # self-attention heads; must divide hidden (paper: 2)
    conv_filter: int = 256  # inner channels of each block's conv FFN (paper: 1024)
    conv_kernel: int = 9  # kernel of the FFN's first conv, odd; the second is 1 (paper: 9)
    dropout: float = 0.2  # encoder/decoder dropout (paper: 0.2)
    # variance adaptor
    variance_level: Literal["phoneme", "frame"] = "frame"  # pitch/energy per frame (paper) or phone
    predictor_filter: int = 128  # channels of the duration/pitch/energy predictors (paper: 256)
    predictor_kernel: int = 3  # their conv kernel, odd (paper: 3)
    predictor_dropout: float = 0.5  # (paper: 0.5)
    n_bins: int = 256  # quantization bins of the pitch and energy embeddings (paper: 256)
    pitch_min: float = -4.0  # range of the bins in z-normalized log-F0 units; outside
    pitch_max: float = 4.0  # values fall into the first/last bin
    energy_min: float = -3.0  # range of the bins in z-normalized energy units
    energy_max: float = 4.0
    max_phone_frames: int = 200  # inference cap on one phone's predicted frames
    # output
    mel_loss: Literal["l1", "mse"] = "l1"  # mel reconstruction loss (paper: MAE)
    postnet_layers: int = 5  # Tacotron 2 style residual postnet convs; 0 disables it
    postnet_channels: int = 128  # (Tacotron 2: 512)
    postnet_kernel: int = 5  # odd (Tacotron 2: 5)
    postnet_dropout: float = 0.5  # (Tacotron 2: 0.5)

    def validate(self, key: str) -> None:
        for name in ("n_symbols", "n_mels", "hidden", "encoder_layers", "decoder_layers",
                     "heads", "conv_filter", "predictor_filter", "max_phone_frames"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        check(self.hidden % self.heads == 0, f"{key}.heads",
              f"= {self.heads} must divide hidden = {self.hidden}")
        for name in ("conv_kernel", "predictor_kernel", "postnet_kernel"):
            value = getattr(self, name)
            check(value >= 1 and value % 2 == 1, f"{key}.{name}",
                  f"= {value} must be odd and positive (same-length convolutions)")
        for name in ("dropout", "predictor_dropout", "postnet_dropout"):
            check(0 <= getattr(self, name) < 1, f"{key}.{name}", "must be in [0, 1)")
        check(self.n_bins >= 2, f"{key}.n_bins", "must be at least 2")
        check(self.pitch_min < self.pitch_max, f"{key}.pitch_min", "must be below pitch_max")
        check(self.energy_min < self.energy_max, f"{key}.energy_min", "must be below energy_max")
        check(self.postnet_layers == 0 or self.postnet_layers >= 2, f"{key}.postnet_layers",
              f"= {self.postnet_layers}: use 0 (no postnet) or at least 2")
        check(self.postnet_channels >= 1, f"{key}.postnet_channels", "must be at least 1")


# --------------------------------------------------------------------------- blocks


def sinusoids(length: int, channels: int, device: torch.device) -> Tensor:
    """Transformer sinusoidal positional encoding, (length, channels)."""
    half = channels // 2
    inv_timescales = torch.exp(-math.log(MAX_TIMESCALE) * torch.arange(half, device=device)
                               / max(half - 1, 1))
    scaled = torch.arange(length, device=device)[:, None] * inv_timescales[None, :]
    encoding = torch.cat([scaled.sin(), scaled.cos()], dim=1)  # (length, 2 * half)
    return F.pad(encoding, (0, channels - 2 * half))  # odd widths: one zero channel


class SelfAttention(nn.Module):
    """Multi-head self-attention over valid positions. No dropout on the attention weights
    (the block drops its output): on CPU it costs as much as the attention itself."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, T, C = x.shape  # x (B, T, C), mask (B, T) True on valid positions
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, T, C / heads)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class FFTBlock(nn.Module):
    """Feed-forward Transformer block: self-attention, then a 2-layer conv FFN (post-norm)."""

    def __init__(self, hidden: int, heads: int, inner: int, kernel: int, dropout: float):
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.attn_norm = nn.LayerNorm(hidden)
        self.conv1 = nn.Conv1d(hidden, inner, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(inner, hidden, 1)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask[..., None].to(x.dtype)  # x (B, T, C), mask (B, T) -> keep (B, T, 1)
        x = self.attn_norm(x + self.drop(self.attn(x, mask))) * keep
        h = F.relu(self.conv1(x.transpose(1, 2)))  # (B, inner, T)
        h = self.drop(self.conv2(self.drop(h))).transpose(1, 2)  # (B, T, C)
        return self.ffn_norm(x + h) * keep  # (B, T, C), zero on padding


class FFTStack(nn.Module):
    """Positional encoding + FFT blocks: the encoder and the decoder."""

    def __init__(self, layers: int, hidden: int, heads: int, conv_filter: int, conv_kernel: int,
                 dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(FFTBlock(hidden, heads, conv_filter, conv_kernel, dropout)
                                    for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, T, C = x.shape  # x (B, T, C), mask (B, T)
        x = self.drop(x + sinusoids(T, C, x.device).to(x.dtype)) * mask[..., None].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x  # (B, T, C)


class VariancePredictor(nn.Module):
    """Two conv + ReLU + LayerNorm + dropout layers and a scalar projection per position."""

    def __init__(self, hidden: int, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(hidden, channels, kernel, padding=kernel // 2),
                                    nn.Conv1d(channels, channels, kernel, padding=kernel // 2)])
        self.norms = nn.ModuleList([nn.LayerNorm(channels), nn.LayerNorm(channels)])
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(channels, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask[..., None].to(x.dtype)  # x (B, T, C), mask (B, T)
        for conv, norm in zip(self.convs, self.norms):
            # zero padding before each conv so padded positions never leak into valid ones
            x = self.drop(norm(F.relu(conv((x * keep).transpose(1, 2)).transpose(1, 2))))
        return self.proj(x).squeeze(-1) * keep[..., 0]  # (B, T), zero on padding


class QuantizedEmbedding(nn.Module):
    """Embed a scalar by its bin among `n_bins` uniform bins over [low, high]."""

    def __init__(self, n_bins: int, low: float, high: float, hidden: int):
        super().__init__()
        self.register_buffer("boundaries", torch.linspace(low, high, n_bins - 1),
                             persistent=False)
        self.embedding = nn.Embedding(n_bins, hidden)

    def forward(self, value: Tensor) -> Tensor:
        bins = torch.bucketize(value.float().contiguous(), self.boundaries)  # (B, T) in [0, n_bins)
        return self.embedding(bins)  # (B, T, C)


def regulate_length(x: Tensor, durations: Tensor, n_frames: int) -> Tensor:
    """Repeat phone states by their durations: x (B, L, C), durations (B, L) -> (B, n_frames, C).

    Frame t takes phone i where ends[i - 1] <= t < ends[i]; frames past an item's total
    are zero.
    """
    ends = durations.cumsum(dim=1)  # (B, L)
    frames = torch.arange(n_frames, device=x.device).expand(x.size(0), n_frames).contiguous()
    phone = torch.searchsorted(ends, frames, right=True)  # (B, n_frames)
    valid = phone < x.size(1)  # past the total
    phone = phone.clamp(max=x.size(1) - 1)
    y = torch.gather(x, 1, phone[..., None].expand(-1, -1, x.size(2)))  # (B, n_frames, C)
    return y * valid[..., None].to(x.dtype)


class Postnet(nn.Module):
    """Tacotron 2 postnet: conv + BatchNorm (+ tanh except last) layers predicting a residual."""

    def __init__(self, n_mels: int, channels: int, kernel: int, layers: int, dropout: float):
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(nn.Conv1d(i, o, kernel, padding=kernel // 2)
                                   for i, o in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) for o in sizes[1:])
        self.drop = nn.Dropout(dropout)

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        keep = mask[:, None, :].to(mel.dtype)  # mel (B, n_mels, T), mask (B, T)
        x = mel
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x * keep))
            x = self.drop(x if i == len(self.convs) - 1 else torch.tanh(x))
        return x * keep  # (B, n_mels, T) residual


# ---------------------------------------------------------------------------- model


class FastSpeech2(nn.Module):
    """Encoder -> variance adaptor (duration, pitch, energy; length regulator) -> decoder
    -> mel linear (+ postnet). Mels are the log-mels of the feature store, unnormalized."""

    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"text_encoder": ("embedding", "encoder"),
                   "variance_adaptor": ("duration_predictor", "pitch_predictor",
                                        "energy_predictor", "pitch_embedding",
                                        "energy_embedding")}

    def __init__(self, cfg: FastSpeech2Config):
        super().__init__()
        self.cfg = cfg
        C = cfg.hidden
        self.embedding = nn.Embedding(cfg.n_symbols, C, padding_idx=0)
        fft = (cfg.hidden, cfg.heads, cfg.conv_filter, cfg.conv_kernel, cfg.dropout)
        self.encoder = FFTStack(cfg.encoder_layers, *fft)
        predictor = (C, cfg.predictor_filter, cfg.predictor_kernel, cfg.predictor_dropout)
        self.duration_predictor = VariancePredictor(*predictor)  # log(d + offset) per phone
        self.pitch_predictor = VariancePredictor(*predictor)
        self.energy_predictor = VariancePredictor(*predictor)
        self.pitch_embedding = QuantizedEmbedding(cfg.n_bins, cfg.pitch_min, cfg.pitch_max, C)
        self.energy_embedding = QuantizedEmbedding(cfg.n_bins, cfg.energy_min, cfg.energy_max, C)
        self.decoder = FFTStack(cfg.decoder_layers, *fft)
        self.mel_linear = nn.Linear(C, cfg.n_mels)
        self.postnet = (Postnet(cfg.n_mels, cfg.postnet_channels, cfg.postnet_kernel,
                                cfg.postnet_layers, cfg.postnet_dropout)
                        if cfg.postnet_layers else None)

    def variances(self, x: Tensor, mask: Tensor, pitch: Tensor | None, energy: Tensor | None,
                  pitch_shift: float = 0.0, energy_shift: float = 0.0) -> tuple:
        """Predict pitch, then energy (seeing pitch), adding embeddings of the targets when
        given (teacher forcing) or of the shifted predictions. x (B, T, C), mask (B, T)."""
        pitch_pred = self.pitch_predictor(x, mask)  # (B, T)
        used = pitch if pitch is not None else pitch_pred + pitch_shift
        x = x + self.pitch_embedding(used) * mask[..., None].to(x.dtype)
        energy_pred = self.energy_predictor(x, mask)  # (B, T)
        used = energy if energy is not None else energy_pred + energy_shift
        x = x + self.energy_embedding(used) * mask[..., None].to(x.dtype)
        return x, pitch_pred, energy_pred  # (B, T, C), (B, T), (B, T)

    def forward(self, phonemes: Tensor, phoneme_lengths: Tensor, durations: Tensor | None = None,
                pitch: Tensor | None = None, energy: Tensor | None = None,
                n_frames: int | None = None, duration_scale: float = 1.0,
                pitch_shift: float = 0.0, energy_shift: float = 0.0) -> dict[str, Tensor]:
        """phonemes (B, L), phoneme_lengths (B,). Teacher forcing: durations (B, L) and
        pitch/energy ((B, L) phone-level or (B, T) frame-level), n_frames = padded T.
        Without them the predictions are used, with the controls applied."""
        phone_mask = length_mask(phoneme_lengths, phonemes.size(1))  # (B, L)
        x = self.encoder(self.embedding(phonemes), phone_mask)  # (B, L, C)

        log_duration = self.duration_predictor(x, phone_mask)  # (B, L)
        if durations is None:
            frames = (torch.exp(log_duration.float()) - LOG_DURATION_OFFSET) * duration_scale
            durations = frames.round().long().clamp(1, self.cfg.max_phone_frames)
            durations = durations * phone_mask  # at least 1 frame per real phone, 0 on padding
        if self.cfg.variance_level == "phoneme":
            x, pitch_pred, energy_pred = self.variances(x, phone_mask, pitch, energy,
                                                        pitch_shift, energy_shift)
        frame_lengths = durations.sum(dim=1)  # (B,)
        n_frames = n_frames if n_frames is not None else int(frame_lengths.max())
        x = regulate_length(x, durations, n_frames)  # (B, T, C)
        frame_mask = length_mask(frame_lengths, n_frames)  # (B, T)
        if self.cfg.variance_level == "frame":
            x, pitch_pred, energy_pred = self.variances(x, frame_mask, pitch, energy,
                                                        pitch_shift, energy_shift)

        x = self.decoder(x, frame_mask)  # (B, T, C)
        mel = self.mel_linear(x).transpose(1, 2)  # (B, n_mels, T)
        mel = mel * frame_mask[:, None, :].to(mel.dtype)
        mel_postnet = mel + self.postnet(mel, frame_mask) if self.postnet is not None else mel
        return dict(mel=mel, mel_postnet=mel_postnet, log_duration=log_duration,
                    pitch=pitch_pred, energy=energy_pred, durations=durations,
                    frame_lengths=frame_lengths)

    # ------------------------------------------------------------------- training

    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Masked mel loss before/after the postnet, log-duration, pitch and energy MSE."""
        phone_level = self.cfg.variance_level == "phoneme"
        pitch = batch["phone_pitch"] if phone_level else batch["pitch"]
        energy = batch["phone_energy"] if phone_level else batch["energy"]
        target = batch["mel"]  # (B, n_mels, T)
        out = self(batch["phonemes"], batch["phoneme_lengths"], batch["durations"], pitch,
                   energy, n_frames=target.size(-1))
        phone_mask = length_mask(batch["phoneme_lengths"], batch["phonemes"].size(1))
        frame_mask = length_mask(batch["mel_lengths"], target.size(-1))  # (B, T)
        variance_mask = phone_mask if phone_level else frame_mask

        def masked_mean(error: Tensor, mask: Tensor) -> Tensor:
            mask = mask.expand_as(error).float()  # error (B, ..., T), mask broadcastable
            return (error.float() * mask).sum() / mask.sum().clamp(min=1)

        mel_error = F.l1_loss if self.cfg.mel_loss == "l1" else F.mse_loss
        mel_mask = frame_mask[:, None, :]  # (B, 1, T)
        log_target = torch.log(batch["durations"].float() + LOG_DURATION_OFFSET)  # (B, L)
        losses = dict(
            mel=masked_mean(mel_error(out["mel"].float(), target, reduction="none"), mel_mask),
            duration=masked_mean((out["log_duration"].float() - log_target) ** 2, phone_mask),
            pitch=masked_mean((out["pitch"].float() - pitch) ** 2, variance_mask),
            energy=masked_mean((out["energy"].float() - energy) ** 2, variance_mask))
        if self.postnet is not None:
            losses["postnet_mel"] = masked_mean(
                mel_error(out["mel_postnet"].float(), target, reduction="none"), mel_mask)
        losses["loss"] = sum(losses.values())
        return losses

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, Tensor]:
        """Validation media: the first item synthesized with predicted durations."""
        length = int(batch["phoneme_lengths"][0])
        return dict(mel=self.synthesize(batch["phonemes"][:1, :length])["mel"][0])

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def synthesize(self, phonemes: Tensor, duration_scale: float = 1.0, pitch_shift: float = 0.0,
                   energy_shift: float = 0.0) -> dict[str, Tensor]:
        """phonemes (1, L) -> mel (1, n_mels, T), durations (1, L) frames per phone.

        duration_scale > 1 slows speech down; pitch_shift / energy_shift are added to the
        predictions in z-normalized units (standard deviations of log-F0 / energy).
        """
        lengths = torch.full((phonemes.size(0),), phonemes.size(1), device=phonemes.device)
        out = self(phonemes, lengths, duration_scale=duration_scale, pitch_shift=pitch_shift,
                   energy_shift=energy_shift)
        # float32 even under bf16 autocast: vocoders and plots take it as is
        return dict(mel=out["mel_postnet"].float(), durations=out["durations"])
