"""DCTTS: Tachibana, Uenoyama and Aihara 2018, "Efficiently Trainable Text-to-Speech System
Based on Deep Convolutional Networks with Guided Attention" (arXiv:1710.08969).

Two networks trained independently:
- Text2Mel (TextEnc, AudioEnc, Attention, AudioDec) predicts a coarse mel at 1/`reduction`
  of the frame rate (every `reduction`-th frame of the batch mel) autoregressively through
  causal highway convolutions, with the guided-attention loss (g = 0.2).
- SSRN upsamples the coarse mel `reduction` times with transposed convolutions and
  predicts the linear magnitude spectrogram, as in the paper, plus a second head that
  predicts the full-rate log-mel of the feature contract. We chose a head trained on the
  contract's own mel (rather than projecting the predicted magnitude through a mel
  filterbank) so that the mel every vocoder voices is fitted directly to the features the
  vocoders were trained on, with no dependence on how well the 513-bin magnitude came out.
  `DCTTS(text2mel, ssrn)` chains them for synthesis.

Losses are L1 + binary divergence on sigmoid outputs, so spectra live in [0, 1]: a
natural-log value x maps to (x - log(log_floor)) / (max - log(log_floor)), clamped, with
fixed constants `mel_max` / `linear_max` (config fields, a little above the largest values
measured on LJSpeech: log-mel max 2.1, log-magnitude max 5.3); log(log_floor) is the
contract's silence/padding value. Inference uses the paper's forcibly incremental
attention: when the attention argmax moves outside [-window_back, +window_ahead] of the
previous position, that step's attention is replaced by a one-hot on the next token.

One addition to the paper: every highway convolution is followed by a layer norm over
channels at each time step (as in common reimplementations; per-frame, so causality is
kept). Without it, Text2Mel's attention collapsed and training diverged at learning rates
above 2e-3 in our overfitting tests; with it, the tests align in under 50 steps.

Generation runs the causal AudioEnc/AudioDec one frame at a time with cached layer
inputs (`Conv.step`), O(T) rather than rerunning the growing prefix (O(T^2)).

Defaults are small for CPU; the paper's size is `presets/dctts-paper.yaml`
(Text2Mel embed_dim 128, hidden_dim 256, stacks 2; SSRN channels 512; dropout 0.05).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tts.attention import alignment_scores, guided_attention_loss, length_mask
from tts.audio import linear_spectrogram
from tts.contract import check
from tts.text import SYMBOLS

SAMPLE_LENGTH_FACTOR = 2  # validation synthesis cap: this many times the target length
PAPER_DILATIONS = [1, 3, 9, 27]  # the dilation cycle of the paper's highway stacks
AUDIO_ENC_TAIL_DILATION = 3  # the paper's two closing AudioEnc highway layers, HC(d, 3, 3)


@dataclass(frozen=True)
class Text2MelConfig:
    # feature contract and symbol table (filled by tts.config, never set in params)
    n_mels: int = 80  # mel bins
    log_floor: float = 1e-5  # log(log_floor) is the silence value, normalized to 0
    n_symbols: int = len(SYMBOLS)  # phoneme vocabulary size, index 0 is padding
    # architecture
    reduction: int = 4  # full-rate frames per coarse frame (paper 4; SSRN must agree)
    embed_dim: int = 64  # e: symbol embedding (paper 128)
    hidden_dim: int = 96  # d: AudioEnc/AudioDec width, half of TextEnc's (paper 256)
    kernel: int = 3  # highway convolution kernel (odd)
    dilations: list[int] = field(default_factory=lambda: list(PAPER_DILATIONS))  # per stack
    stacks: int = 1  # repeats of the dilation cycle in TextEnc and AudioEnc (paper 2)
    dropout: float = 0.05  # after every convolution
    mel_max: float = 2.5  # log-mel value normalized to 1 (see module docstring)
    # loss
    guided_attention_weight: float = 1.0  # weight of the guided-attention loss; 0 disables
    guided_attention_g: float = 0.2  # its width g (paper 0.2)
    # inference
    window_back: int = 1  # attention may move back this many tokens per step (paper 1)
    window_ahead: int = 3  # and forward this many (paper 3); else forced to next token
    end_frames: int = 2  # coarse frames generated once attention reaches the last token
    max_frames: int = 1000  # generation cap in full-rate frames when none is given
    score_band: float = 0.2  # diagonal band of the alignment score (tts.attention)

    def validate(self, key: str) -> None:
        for name in ("reduction", "embed_dim", "hidden_dim", "stacks", "end_frames",
                     "max_frames"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        check(self.kernel % 2 == 1, f"{key}.kernel", "must be odd")
        check(bool(self.dilations) and min(self.dilations) >= 1, f"{key}.dilations",
               "must be a non-empty list of positive integers")
        check(0 <= self.dropout < 1, f"{key}.dropout", "must be in [0, 1)")
        check(self.mel_max > math.log(self.log_floor), f"{key}.mel_max",
               "must exceed log(audio.log_floor)")
        check(self.guided_attention_weight >= 0, f"{key}.guided_attention_weight",
               "must be >= 0")
        check(self.guided_attention_g > 0, f"{key}.guided_attention_g", "must be positive")
        check(self.window_back >= 0 and self.window_ahead >= 1, f"{key}.window_ahead",
               "need window_back >= 0 and window_ahead >= 1")
        check(0 < self.score_band < 1, f"{key}.score_band", "must be in (0, 1)")


@dataclass(frozen=True)
class SSRNConfig:
    # feature contract (filled by tts.config, never set in params)
    n_fft: int = 1024  # STFT size; the linear head predicts n_fft // 2 + 1 bins
    hop_length: int = 256  # samples per full-rate frame (the linear target's STFT)
    win_length: int = 1024  # STFT window
    n_mels: int = 80  # mel bins
    log_floor: float = 1e-5  # floor of both log spectra, normalized to 0
    # architecture
    reduction: int = 4  # upsampling factor, a power of 2 (one stride-2 deconv per factor 2)
    channels: int = 128  # c (paper 512); the last stage runs at 2c
    kernel: int = 3  # highway convolution kernel (odd)
    dropout: float = 0.05  # after every convolution
    mel_max: float = 2.5  # log-mel value normalized to 1 (must match Text2Mel's)
    linear_max: float = 6.0  # log-magnitude value normalized to 1

    def validate(self, key: str) -> None:
        r = self.reduction
        check(r >= 1 and r & (r - 1) == 0, f"{key}.reduction", "must be a power of 2")
        check(self.channels >= 1, f"{key}.channels", "must be at least 1")
        check(self.kernel % 2 == 1, f"{key}.kernel", "must be odd")
        check(0 <= self.dropout < 1, f"{key}.dropout", "must be in [0, 1)")
        for name in ("mel_max", "linear_max"):
            check(getattr(self, name) > math.log(self.log_floor), f"{key}.{name}",
                   "must exceed log(audio.log_floor)")


# ------------------------------------------------------------------------ building blocks


def to_unit(x: Tensor, log_floor: float, high: float) -> Tensor:
    """Natural-log spectrum -> [0, 1] (log(log_floor) -> 0, high -> 1)."""
    low = math.log(log_floor)
    return ((x - low) / (high - low)).clamp(0, 1)


def from_unit(y: Tensor, log_floor: float, high: float) -> Tensor:
    low = math.log(log_floor)
    return low + y * (high - low)


class Conv(nn.Module):
    """1-D convolution, `same` length; causal pads only the past. Then dropout."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1,
                 causal: bool = False, dropout: float = 0.0):
        super().__init__()
        span = (kernel - 1) * dilation
        self.pad = (span, 0) if causal else (span // 2, span - span // 2)
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.conv(F.pad(x, self.pad)))  # (B, C_out, T)

    def step(self, x: Tensor, cache: dict) -> Tensor:
        """Causal only: one new frame (B, C, 1) -> (B, C_out, 1); `cache` keeps this
        layer's last (kernel - 1) * dilation input frames between calls."""
        if self.pad[1]:
            raise RuntimeError("Conv.step needs a causal convolution (it sees no future)")
        past = cache.get(self, x.new_zeros(x.size(0), x.size(1), self.pad[0]))
        window = torch.cat([past, x], 2)  # (B, C, span + 1)
        cache[self] = window[:, :, 1:]
        return self.dropout(self.conv(window))  # (B, C_out, 1)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels at each time step (keeps convolutions causal)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T)


class Highway(nn.Module):
    """Highway convolution: gate * H2 + (1 - gate) * x with [gate, H2] = conv(x)."""

    def __init__(self, channels: int, kernel: int, dilation: int, causal: bool,
                 dropout: float):
        super().__init__()
        self.conv = Conv(channels, 2 * channels, kernel, dilation, causal, dropout)
        self.norm = ChannelNorm(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        return self._mix(x, self.norm(self.conv(x)))  # (B, C, T)

    def step(self, x: Tensor, cache: dict) -> Tensor:
        return self._mix(x, self.norm(self.conv.step(x, cache)))  # (B, C, 1)

    @staticmethod
    def _mix(x: Tensor, h: Tensor) -> Tensor:
        h1, h2 = h.chunk(2, dim=1)  # (B, C, T) each
        gate = torch.sigmoid(h1)
        return gate * h2 + (1 - gate) * x


class MaskedSequential(nn.ModuleList):
    """Layers applied in turn, zeroing padded positions after each (mask (B, 1, T))."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for layer in self:
            x = layer(x)
            x = x * mask if mask is not None else x
        return x

    def step(self, x: Tensor, cache: dict) -> Tensor:
        """Incremental pass over causal layers: one new frame (B, C, 1) -> (B, C', 1)."""
        for layer in self:
            x = layer.step(x, cache) if hasattr(layer, "step") else layer(x)
        return x


def highway_stack(channels: int, kernel: int, dilations: list[int], stacks: int,
                  causal: bool, dropout: float) -> list[nn.Module]:
    return [Highway(channels, kernel, d, causal, dropout)
            for _ in range(stacks) for d in dilations]


class TextEnc(nn.Module):
    def __init__(self, *, n_symbols: int, embed_dim: int, hidden_dim: int, kernel: int,
                 dilations: list[int], stacks: int, dropout: float):
        super().__init__()
        d2, p = 2 * hidden_dim, dropout
        self.embed = nn.Embedding(n_symbols, embed_dim, padding_idx=0)
        self.layers = MaskedSequential([
            Conv(embed_dim, d2, dropout=p), nn.ReLU(), Conv(d2, d2, dropout=p),
            *highway_stack(d2, kernel, dilations, stacks, False, p),
            *highway_stack(d2, kernel, [1], 2, False, p),
            *highway_stack(d2, 1, [1], 2, False, p)])

    def forward(self, phonemes: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = length_mask(lengths, phonemes.size(1))[:, None].float()  # (B, 1, L)
        x = self.embed(phonemes).transpose(1, 2)  # (B, e, L)
        keys, values = self.layers(x, mask).chunk(2, dim=1)
        return keys, values  # (B, d, L) each


class AudioEnc(nn.Module):
    """Causal: the query at frame t depends on input frames <= t only."""

    def __init__(self, *, n_mels: int, hidden_dim: int, kernel: int, dilations: list[int],
                 stacks: int, dropout: float):
        super().__init__()
        d, p = hidden_dim, dropout
        self.layers = MaskedSequential([
            Conv(n_mels, d, causal=True, dropout=p), nn.ReLU(),
            Conv(d, d, causal=True, dropout=p), nn.ReLU(), Conv(d, d, causal=True, dropout=p),
            *highway_stack(d, kernel, dilations, stacks, True, p),
            *highway_stack(d, kernel, [AUDIO_ENC_TAIL_DILATION], 2, True, p)])

    def forward(self, mel: Tensor) -> Tensor:
        return self.layers(mel)  # (B, n_mels, T) -> (B, d, T)


class AudioDec(nn.Module):
    """Causal: the output at frame t depends on inputs at frames <= t only."""

    def __init__(self, *, n_mels: int, hidden_dim: int, kernel: int, dilations: list[int],
                 dropout: float):
        super().__init__()
        d, p = hidden_dim, dropout
        self.layers = MaskedSequential([
            Conv(2 * d, d, causal=True, dropout=p),
            *highway_stack(d, kernel, dilations, 1, True, p),
            *highway_stack(d, kernel, [1], 2, True, p),
            *[m for _ in range(3) for m in (Conv(d, d, causal=True, dropout=p), nn.ReLU())],
            Conv(d, n_mels, causal=True)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # (B, 2d, T) -> logits (B, n_mels, T)


# ---------------------------------------------------------------------------- Text2Mel


class Text2Mel(nn.Module):
    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"text_encoder": ("text_enc",)}

    def __init__(self, cfg: Text2MelConfig):
        super().__init__()
        self.cfg = cfg
        widths = dict(hidden_dim=cfg.hidden_dim, kernel=cfg.kernel, dilations=cfg.dilations,
                      dropout=cfg.dropout)
        self.text_enc = TextEnc(n_symbols=cfg.n_symbols, embed_dim=cfg.embed_dim,
                                stacks=cfg.stacks, **widths)
        self.audio_enc = AudioEnc(n_mels=cfg.n_mels, stacks=cfg.stacks, **widths)
        self.audio_dec = AudioDec(n_mels=cfg.n_mels, **widths)

    def attend(self, keys: Tensor, query: Tensor, text_mask: Tensor) -> Tensor:
        # keys (B, d, L); query (B, d, T); text_mask (B, L) -> attention (B, T, L)
        energy = torch.einsum("bdt,bdl->btl", query, keys) / math.sqrt(keys.size(1))
        return torch.softmax(energy.masked_fill(~text_mask[:, None], float("-inf")), dim=-1)

    def decode(self, attention: Tensor, values: Tensor, query: Tensor) -> Tensor:
        # attention (B, T, L); values (B, d, L); query (B, d, T)
        read = torch.einsum("btl,bdl->bdt", attention, values)  # (B, d, T)
        return self.audio_dec(torch.cat([read, query], 1))  # logits (B, n_mels, T)

    def forward(self, phonemes: Tensor, phoneme_lengths: Tensor,
                mel_in: Tensor) -> dict[str, Tensor]:
        """mel_in: the target coarse mel in [0, 1] delayed by one frame (B, n_mels, T)."""
        keys, values = self.text_enc(phonemes, phoneme_lengths)  # (B, d, L)
        query = self.audio_enc(mel_in)  # (B, d, T)
        attention = self.attend(keys, query, length_mask(phoneme_lengths, phonemes.size(1)))
        return {"logits": self.decode(attention, values, query), "attention": attention}

    # ------------------------------------------------------------------------ training

    def _targets(self, batch: dict) -> tuple[Tensor, Tensor]:
        """Coarse target in [0, 1] (B, n_mels, Tc) and its lengths (B,)."""
        r = self.cfg.reduction
        target = to_unit(batch["mel"][:, :, ::r], self.cfg.log_floor, self.cfg.mel_max)
        lengths = torch.div(batch["mel_lengths"] + r - 1, r, rounding_mode="floor")
        return target, lengths

    def _teacher_forced(self, batch: dict) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        target, lengths = self._targets(batch)
        mel_in = F.pad(target, (1, -1))  # previous frame, zeros first (B, n_mels, Tc)
        return self(batch["phonemes"], batch["phoneme_lengths"], mel_in), target, lengths

    def loss(self, batch: dict) -> dict[str, Tensor]:
        cfg = self.cfg
        out, target, lengths = self._teacher_forced(batch)
        mask = length_mask(lengths, target.size(2))[:, None].float()  # (B, 1, Tc)
        cells = mask.sum() * cfg.n_mels
        l1 = ((torch.sigmoid(out["logits"]) - target).abs() * mask).sum() / cells
        bd = (F.binary_cross_entropy_with_logits(out["logits"], target, reduction="none")
              * mask).sum() / cells
        losses = {"l1_loss": l1, "bd_loss": bd}
        total = l1 + bd
        if cfg.guided_attention_weight > 0:
            guided = guided_attention_loss(out["attention"], lengths, batch["phoneme_lengths"],
                                           cfg.guided_attention_g)
            losses["guided_attention_loss"] = guided
            total = total + cfg.guided_attention_weight * guided
        return {"loss": total, **losses}

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, Tensor]:
        """Free-running synthesis of the first item: its attention and coarse log-mel, each
        frame held `reduction` times so it lines up with (and voices like) full-rate mels."""
        n_in = int(batch["phoneme_lengths"][0])
        cap = SAMPLE_LENGTH_FACTOR * int(batch["mel_lengths"][0])
        out = self.generate(batch["phonemes"][:1, :n_in], max_frames=cap)
        mel = from_unit(out["mel"][0], self.cfg.log_floor, self.cfg.mel_max)  # (M, Tc)
        return {"mel": mel.repeat_interleave(self.cfg.reduction, dim=1),
                "attention": out["attention"]}

    @torch.no_grad()
    def scores(self, batch: dict) -> dict[str, float]:
        """Alignment of free-running synthesis (the real test) and of teacher forcing."""
        cfg = self.cfg
        out, _, lengths = self._teacher_forced(batch)
        forced = alignment_scores(out["attention"], lengths, batch["phoneme_lengths"],
                                  cfg.score_band)
        free, hits = [], 0
        for i in range(len(batch["phonemes"])):
            n_in = int(batch["phoneme_lengths"][i])
            cap = SAMPLE_LENGTH_FACTOR * int(batch["mel_lengths"][i])
            syn = self.generate(batch["phonemes"][i:i + 1, :n_in], max_frames=cap)
            free.append(alignment_scores(syn["attention"], band=cfg.score_band))
            hits += syn["hit_max_length"]
        scores = {f"align_{k}": sum(f[k] for f in free) / len(free) for k in free[0]}
        return {**scores, "align_hit_max_rate": hits / len(free),
                "align_teacher_forced_diagonal_mass": forced["diagonal_mass"]}

    # ----------------------------------------------------------------------- inference

    def _force(self, row: Tensor, previous: int) -> tuple[Tensor, int]:
        """The paper's incremental rule on one attention row (L,)."""
        position = int(row.argmax())
        if -self.cfg.window_back <= position - previous <= self.cfg.window_ahead:
            return row, position
        position = min(previous + 1, row.numel() - 1)
        return F.one_hot(torch.tensor(position, device=row.device), row.numel()).to(row), position

    @torch.no_grad()
    def generate(self, phonemes: Tensor, max_frames: int | None = None) -> dict:
        """phonemes (1, L) -> coarse mel in [0, 1] (1, n_mels, Tc), attention (Tc, L),
        hit_max_length. `max_frames` counts full-rate frames.

        Frame by frame through the causal AudioEnc/AudioDec, each layer caching its last
        inputs (O(T) work, equal to rerunning the whole prefix); every attention row is
        made forcibly incremental, and generation ends `end_frames` frames after the
        attention reaches the last token (the closing `sil`), or at the cap.
        """
        cfg = self.cfg
        if phonemes.dim() != 2 or phonemes.size(0) != 1 or phonemes.size(1) == 0:
            raise ValueError(f"synthesize expects phonemes of shape (1, L>0), "
                             f"got {tuple(phonemes.shape)}")
        if int(phonemes.max()) >= cfg.n_symbols or int(phonemes.min()) < 0:
            raise ValueError(f"phoneme ids must be in 0..{cfg.n_symbols - 1}; the model was "
                             f"trained with a different symbol table?")
        max_steps = math.ceil((max_frames or cfg.max_frames) / cfg.reduction)
        n_in = phonemes.size(1)
        keys, values = self.text_enc(phonemes, torch.tensor([n_in], device=phonemes.device))
        text_mask = torch.ones(1, n_in, dtype=torch.bool, device=phonemes.device)
        frame = keys.new_zeros(1, cfg.n_mels, 1)  # the all-zero first input frame
        cache: dict = {}
        frames, rows, position, at_end = [], [], 0, 0
        for _ in range(max_steps):
            query = self.audio_enc.layers.step(frame, cache)  # (1, d, 1)
            row, position = self._force(self.attend(keys, query, text_mask)[0, 0], position)
            read = values @ row[None, :, None]  # (1, d, 1)
            logits = self.audio_dec.layers.step(torch.cat([read, query], 1), cache)
            frame = torch.sigmoid(logits)  # (1, n_mels, 1)
            frames.append(frame)
            rows.append(row)
            at_end = at_end + 1 if position == n_in - 1 else 0
            if at_end >= cfg.end_frames:
                break
        return {"mel": torch.cat(frames, 2), "attention": torch.stack(rows),
                "hit_max_length": at_end < cfg.end_frames}


# -------------------------------------------------------------------------------- SSRN


class SSRN(nn.Module):
    """Spectrogram super-resolution: coarse mel in [0, 1] -> linear magnitude and mel at
    the full frame rate, both in [0, 1] (as logits). Non-causal."""

    def __init__(self, cfg: SSRNConfig):
        super().__init__()
        self.cfg = cfg
        c, k, p = cfg.channels, cfg.kernel, cfg.dropout
        n_freq = cfg.n_fft // 2 + 1
        layers = [Conv(cfg.n_mels, c, dropout=p), *highway_stack(c, k, [1, 3], 1, False, p)]
        for _ in range(int(math.log2(cfg.reduction))):
            layers += [nn.ConvTranspose1d(c, c, 2, stride=2), nn.Dropout(p),
                       *highway_stack(c, k, [1, 3], 1, False, p)]
        layers += [Conv(c, 2 * c, dropout=p), *highway_stack(2 * c, k, [1], 2, False, p)]
        self.trunk = nn.Sequential(*layers)

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(Conv(2 * c, out, dropout=p),
                                 *[m for _ in range(2) for m in (Conv(out, out, dropout=p),
                                                                 nn.ReLU())],
                                 Conv(out, out))

        self.linear_head, self.mel_head = head(n_freq), head(cfg.n_mels)

    def forward(self, coarse: Tensor) -> dict[str, Tensor]:
        h = self.trunk(coarse)  # (B, n_mels, Tc) -> (B, 2c, Tc * r)
        return {"linear_logits": self.linear_head(h),  # (B, n_fft // 2 + 1, Tc * r)
                "mel_logits": self.mel_head(h)}  # (B, n_mels, Tc * r)

    def loss(self, batch: dict) -> dict[str, Tensor]:
        cfg = self.cfg
        frames = batch["mel"].size(2)
        mel = to_unit(batch["mel"], cfg.log_floor, cfg.mel_max)  # (B, M, T)
        magnitude = linear_spectrogram(batch["audio"], cfg)[..., :frames]  # (B, F, T)
        linear = to_unit(torch.log(magnitude.clamp(min=cfg.log_floor)), cfg.log_floor,
                         cfg.linear_max)
        out = self(mel[:, :, ::cfg.reduction])
        losses = {}
        for name, target in (("linear", linear), ("mel", mel)):
            logits = out[f"{name}_logits"][..., :frames]
            losses[f"{name}_l1_loss"] = (torch.sigmoid(logits) - target).abs().mean()
            losses[f"{name}_bd_loss"] = F.binary_cross_entropy_with_logits(logits, target)
        return {"loss": sum(losses.values()), **losses}

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, Tensor]:
        """Full-rate log-mel predicted from the first item's ground-truth coarse mel."""
        return {"mel": self.upsample(batch["mel"][:1, :, ::self.cfg.reduction])["mel"][0]}

    @torch.no_grad()
    def upsample(self, coarse_log_mel: Tensor) -> dict[str, Tensor]:
        """Coarse log-mel (B, n_mels, Tc) -> log-mel (B, n_mels, Tc * r) and linear
        magnitude (B, n_fft // 2 + 1, Tc * r) at the full frame rate."""
        cfg = self.cfg
        out = self(to_unit(coarse_log_mel, cfg.log_floor, cfg.mel_max))
        mel = from_unit(torch.sigmoid(out["mel_logits"]), cfg.log_floor, cfg.mel_max)
        linear = from_unit(torch.sigmoid(out["linear_logits"]), cfg.log_floor, cfg.linear_max)
        return {"mel": mel, "linear": torch.exp(linear)}


# ------------------------------------------------------------------------------- DCTTS


class DCTTS(nn.Module):
    """Text2Mel + SSRN as one acoustic model: phonemes -> full-rate log-mel."""

    def __init__(self, text2mel: Text2Mel, ssrn: SSRN):
        super().__init__()
        a, b = text2mel.cfg, ssrn.cfg
        for name in ("reduction", "n_mels", "mel_max", "log_floor"):
            if getattr(a, name) != getattr(b, name):
                raise ValueError(f"DCTTS: Text2Mel and SSRN disagree on {name} "
                                 f"({getattr(a, name)} vs {getattr(b, name)}); retrain one "
                                 f"of them with matching params (dctts.text2mel / dctts.ssrn)")
        self.text2mel, self.ssrn = text2mel, ssrn

    @torch.no_grad()
    def synthesize(self, phonemes: Tensor, max_frames: int | None = None) -> dict:
        """phonemes (1, L) -> mel (1, n_mels, T) log-mel at the full frame rate, linear
        magnitude (1, n_fft // 2 + 1, T), attention (Tc, L), hit_max_length."""
        cfg = self.text2mel.cfg
        max_frames = max_frames or cfg.max_frames
        coarse = self.text2mel.generate(phonemes, max_frames)
        full = self.ssrn.upsample(from_unit(coarse["mel"], cfg.log_floor, cfg.mel_max))
        return {"mel": full["mel"][..., :max_frames], "linear": full["linear"][..., :max_frames],
                "attention": coarse["attention"], "hit_max_length": coarse["hit_max_length"]}
