"""Tacotron 2: Shen et al. 2018, "Natural TTS Synthesis by Conditioning WaveNet on Mel
Spectrogram Predictions" (arXiv:1712.05884), with location-sensitive attention from
Chorowski et al. 2015, "Attention-Based Models for Speech Recognition".

Encoder (embedding, 3 convolutions, BiLSTM) -> location-sensitive attention -> a 2-layer
LSTM decoder fed by a prenet whose dropout stays on at inference (the paper's source of
output variation) -> `reduction` mel frames and a stop token per step -> a 5-layer
convolutional postnet adding a residual. An optional guided-attention loss (Tachibana et
al. 2018) makes the alignment appear within a few hundred steps on a small corpus.

Defaults are small (a few hundred CPU steps in minutes). The paper / NVIDIA size is
`presets/tacotron2-paper.yaml`: embed_dim 512, encoder_dim 512, attention_dim 128,
location_filters 32, prenet_dim 256, decoder_dim 1024, postnet_dim 512, reduction 1,
mel_loss mse, guided_attention_weight 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tts.attention import alignment_scores, guided_attention_loss, length_mask
from tts.contract import check
from tts.text import SYMBOLS

SAMPLE_LENGTH_FACTOR = 2  # validation synthesis cap: this many times the target length


@dataclass(frozen=True)
class Tacotron2Config:
    # feature contract and symbol table (filled by tts.config, never set in params)
    n_mels: int = 80  # mel bins predicted per frame
    log_floor: float = 1e-5  # log-mel floor; log(log_floor) is the padding/silence value
    n_symbols: int = len(SYMBOLS)  # phoneme vocabulary size, index 0 is padding
    # encoder
    embed_dim: int = 128  # symbol embedding (paper 512)
    encoder_dim: int = 128  # conv channels and BiLSTM output, half per direction (paper 512)
    encoder_convs: int = 3  # convolution layers before the BiLSTM
    encoder_kernel: int = 5  # their kernel size (odd)
    conv_dropout: float = 0.5  # dropout after every encoder/postnet convolution
    # attention
    attention_dim: int = 64  # hidden size of the attention energies (paper 128)
    location_filters: int = 16  # filters over previous + cumulative attention (paper 32)
    location_kernel: int = 31  # their kernel size (odd)
    # decoder
    prenet_dim: int = 64  # width of each prenet layer (paper 256)
    prenet_layers: int = 2  # prenet depth
    prenet_dropout: float = 0.5  # always on, also at inference
    decoder_dim: int = 128  # units in each of the 2 decoder LSTMs (paper 1024)
    decoder_dropout: float = 0.1  # dropout on LSTM outputs (stand-in for zoneout 0.1)
    reduction: int = 2  # mel frames per decoder step r (paper 1)
    # postnet
    postnet_dim: int = 64  # channels (paper 512)
    postnet_layers: int = 5  # convolution layers
    postnet_kernel: int = 5  # their kernel size (odd)
    # loss
    mel_loss: Literal["l1", "mse"] = "l1"  # frame loss before and after postnet (paper mse)
    stop_pos_weight: float = 8.0  # BCE weight of the rare "stop here" step
    guided_attention_weight: float = 1.0  # weight of the guided-attention loss; 0 disables
    guided_attention_g: float = 0.2  # its width g
    # inference
    stop_threshold: float = 0.5  # stop once sigmoid(stop logit) exceeds this
    max_frames: int = 1000  # generation cap in mel frames when synthesize() gets none
    score_band: float = 0.2  # diagonal band of the alignment score (tts.attention)

    def validate(self, key: str) -> None:
        for name in ("embed_dim", "encoder_dim", "encoder_convs", "attention_dim",
                     "location_filters", "prenet_dim", "prenet_layers", "decoder_dim",
                     "reduction", "postnet_dim", "postnet_layers", "max_frames"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        for name in ("encoder_kernel", "location_kernel", "postnet_kernel"):
            check(getattr(self, name) % 2 == 1, f"{key}.{name}",
                  "must be odd (same-length convolution)")
        check(self.encoder_dim % 2 == 0, f"{key}.encoder_dim", "must be even (BiLSTM halves)")
        check(self.postnet_layers >= 2, f"{key}.postnet_layers", "must be at least 2")
        for name in ("conv_dropout", "prenet_dropout", "decoder_dropout"):
            check(0 <= getattr(self, name) < 1, f"{key}.{name}", "must be in [0, 1)")
        check(self.guided_attention_weight >= 0, f"{key}.guided_attention_weight", "must be >= 0")
        check(self.guided_attention_g > 0, f"{key}.guided_attention_g", "must be positive")
        check(self.stop_pos_weight > 0, f"{key}.stop_pos_weight", "must be positive")
        check(0 < self.stop_threshold < 1, f"{key}.stop_threshold", "must be in (0, 1)")
        check(0 < self.score_band < 1, f"{key}.score_band", "must be in (0, 1)")


def conv_bn(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2),
                         nn.BatchNorm1d(out_ch))


class Encoder(nn.Module):
    def __init__(self, n_symbols: int, embed_dim: int, dim: int, n_convs: int, kernel: int,
                 dropout: float):
        super().__init__()
        self.embed = nn.Embedding(n_symbols, embed_dim, padding_idx=0)
        dims = [embed_dim] + [dim] * n_convs
        self.convs = nn.ModuleList(conv_bn(i, o, kernel) for i, o in zip(dims, dims[1:]))
        self.dropout = dropout
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, phonemes: Tensor, lengths: Tensor) -> Tensor:
        mask = length_mask(lengths, phonemes.size(1))[:, None]  # (B, 1, L)
        x = self.embed(phonemes).transpose(1, 2)  # (B, E, L)
        for conv in self.convs:
            # zero padding after every layer so a padded item matches the item alone
            x = F.dropout(F.relu(conv(x * mask)), self.dropout, self.training) * mask
        packed = pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=phonemes.size(1))
        return out  # (B, L, D)


class LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see the previous and cumulative weights."""

    def __init__(self, query_dim: int, memory_dim: int, dim: int, location_filters: int,
                 location_kernel: int):
        super().__init__()
        self.query = nn.Linear(query_dim, dim, bias=False)
        self.memory = nn.Linear(memory_dim, dim, bias=False)
        self.location_conv = nn.Conv1d(2, location_filters, location_kernel,
                                       padding=location_kernel // 2, bias=False)
        self.location = nn.Linear(location_filters, dim, bias=False)
        self.energy = nn.Linear(dim, 1)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, previous: Tensor,
                mask: Tensor) -> tuple[Tensor, Tensor]:
        # query (B, Dq); keys = self.memory(memory) (B, L, A); previous (B, 2, L)
        loc = self.location(self.location_conv(previous).transpose(1, 2))  # (B, L, A)
        e = self.energy(torch.tanh(self.query(query)[:, None] + keys + loc)).squeeze(-1)
        weights = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)  # (B, L)
        context = torch.bmm(weights[:, None], memory).squeeze(1)  # (B, D)
        return context, weights


class Prenet(nn.Module):
    def __init__(self, n_mels: int, dim: int, n_layers: int, dropout: float):
        super().__init__()
        dims = [n_mels] + [dim] * n_layers
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, dims[1:]))
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:  # dropout always on: the paper keeps it at inference
            x = F.dropout(F.relu(layer(x)), self.dropout, training=True)
        return x  # (..., P)


class Postnet(nn.Module):
    def __init__(self, n_mels: int, dim: int, n_layers: int, kernel: int, dropout: float):
        super().__init__()
        dims = [n_mels] + [dim] * (n_layers - 1) + [n_mels]
        self.convs = nn.ModuleList(conv_bn(i, o, kernel) for i, o in zip(dims, dims[1:]))
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        # x (B, n_mels, T); mask (B, 1, T) zeroes padding so it never leaks into valid frames
        for i, conv in enumerate(self.convs):
            x = conv(x if mask is None else x * mask)  # (B, C, T)
            x = torch.tanh(x) if i < len(self.convs) - 1 else x
            x = F.dropout(x, self.dropout, self.training)
        return x  # (B, n_mels, T)


class Decoder(nn.Module):
    """One step: prenet(last frame) -> attention LSTM -> attention -> decoder LSTM ->
    `reduction` frames + a stop logit."""

    def __init__(self, *, n_mels: int, reduction: int, memory_dim: int, dim: int,
                 dropout: float, prenet_dim: int, prenet_layers: int, prenet_dropout: float,
                 attention_dim: int, location_filters: int, location_kernel: int):
        super().__init__()
        self.dim, self.dropout = dim, dropout
        self.prenet = Prenet(n_mels, prenet_dim, prenet_layers, prenet_dropout)
        self.attention_rnn = nn.LSTMCell(prenet_dim + memory_dim, dim)
        self.attention = LocationSensitiveAttention(dim, memory_dim, attention_dim,
                                                    location_filters, location_kernel)
        self.decoder_rnn = nn.LSTMCell(dim + memory_dim, dim)
        self.frames = nn.Linear(dim + memory_dim, n_mels * reduction)
        self.stop = nn.Linear(dim + memory_dim, 1)

    def initial_state(self, memory: Tensor) -> dict[str, Tensor]:
        b, n_in, _ = memory.shape
        zeros = memory.new_zeros
        return {"att_h": zeros(b, self.dim), "att_c": zeros(b, self.dim),
                "dec_h": zeros(b, self.dim), "dec_c": zeros(b, self.dim),
                "weights": zeros(b, n_in), "cumulative": zeros(b, n_in),
                "context": zeros(b, memory.size(2))}

    def step(self, prenet_out: Tensor, state: dict[str, Tensor], memory: Tensor, keys: Tensor,
             mask: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        # prenet_out (B, P); memory (B, L, D); keys (B, L, A); mask (B, L)
        p = self.dropout if self.training else 0.0
        att_h, att_c = self.attention_rnn(torch.cat([prenet_out, state["context"]], -1),
                                          (state["att_h"], state["att_c"]))
        att_h = F.dropout(att_h, p, self.training)  # (B, H)
        previous = torch.stack([state["weights"], state["cumulative"]], 1)  # (B, 2, L)
        context, weights = self.attention(att_h, keys, memory, previous, mask)
        dec_h, dec_c = self.decoder_rnn(torch.cat([att_h, context], -1),
                                        (state["dec_h"], state["dec_c"]))
        dec_h = F.dropout(dec_h, p, self.training)  # (B, H)
        out = torch.cat([dec_h, context], -1)  # (B, H + D)
        state = {"att_h": att_h, "att_c": att_c, "dec_h": dec_h, "dec_c": dec_c,
                 "weights": weights, "cumulative": state["cumulative"] + weights,
                 "context": context}
        return self.frames(out), self.stop(out).squeeze(-1), state  # (B, n_mels*r), (B,)


class Tacotron2(nn.Module):
    # parts fine-tuning may freeze (besides every direct child): name -> children
    PART_GROUPS = {"text_encoder": ("encoder",)}

    def __init__(self, cfg: Tacotron2Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.n_symbols, cfg.embed_dim, cfg.encoder_dim, cfg.encoder_convs,
                               cfg.encoder_kernel, cfg.conv_dropout)
        self.decoder = Decoder(
            n_mels=cfg.n_mels, reduction=cfg.reduction, memory_dim=cfg.encoder_dim,
            dim=cfg.decoder_dim, dropout=cfg.decoder_dropout, prenet_dim=cfg.prenet_dim,
            prenet_layers=cfg.prenet_layers, prenet_dropout=cfg.prenet_dropout,
            attention_dim=cfg.attention_dim, location_filters=cfg.location_filters,
            location_kernel=cfg.location_kernel)
        self.postnet = Postnet(cfg.n_mels, cfg.postnet_dim, cfg.postnet_layers,
                               cfg.postnet_kernel, cfg.conv_dropout)

    @property
    def pad_value(self) -> float:
        return math.log(self.cfg.log_floor)

    def _unfold(self, frames: list[Tensor]) -> Tensor:
        """Per-step (B, n_mels * r) outputs -> (B, n_mels, steps * r)."""
        b, r = frames[0].size(0), self.cfg.reduction
        x = torch.stack(frames, 1).view(b, len(frames), r, self.cfg.n_mels)  # (B, S, r, M)
        return x.flatten(1, 2).transpose(1, 2)  # (B, M, S * r)

    def forward(self, phonemes: Tensor, phoneme_lengths: Tensor, mel: Tensor,
                mel_lengths: Tensor) -> dict[str, Tensor]:
        """Teacher-forced pass; mel (B, n_mels, T) with T a multiple of `reduction`."""
        r = self.cfg.reduction
        memory = self.encoder(phonemes, phoneme_lengths)  # (B, L, D)
        keys = self.decoder.attention.memory(memory)  # (B, L, A)
        mask = length_mask(phoneme_lengths, phonemes.size(1))  # (B, L)
        go = mel.new_zeros(mel.size(0), mel.size(1), 1)
        inputs = torch.cat([go, mel[:, :, r - 1:-1:r]], 2)  # last frame of each step (B, M, S)
        prenet_out = self.decoder.prenet(inputs.transpose(1, 2))  # (B, S, P)
        state = self.decoder.initial_state(memory)
        frames, stops, weights = [], [], []
        for s in range(prenet_out.size(1)):
            out, stop, state = self.decoder.step(prenet_out[:, s], state, memory, keys, mask)
            frames.append(out)
            stops.append(stop)
            weights.append(state["weights"])
        coarse = self._unfold(frames)  # (B, M, T)
        frame_mask = length_mask(mel_lengths, coarse.size(2))[:, None]  # (B, 1, T)
        coarse = coarse.masked_fill(~frame_mask, self.pad_value)
        post = coarse + self.postnet(coarse, frame_mask)  # (B, M, T)
        return {"mel_decoder": coarse, "mel": post,
                "stop_logits": torch.stack(stops, 1),  # (B, S)
                "attention": torch.stack(weights, 1)}  # (B, S, L)

    # ------------------------------------------------------------------------ training

    def _pad_to_steps(self, mel: Tensor) -> Tensor:
        extra = -mel.size(2) % self.cfg.reduction
        return F.pad(mel, (0, extra), value=self.pad_value)  # (B, M, S * r)

    def loss(self, batch: dict) -> dict[str, Tensor]:
        cfg = self.cfg
        mel, mel_lengths = self._pad_to_steps(batch["mel"]), batch["mel_lengths"]
        out = self(batch["phonemes"], batch["phoneme_lengths"], mel, mel_lengths)
        frame_mask = length_mask(mel_lengths, mel.size(2))[:, None].float()  # (B, 1, T)
        cells = frame_mask.sum() * cfg.n_mels
        frame_loss = F.l1_loss if cfg.mel_loss == "l1" else F.mse_loss
        decoder_loss = (frame_loss(out["mel_decoder"], mel, reduction="none")
                        * frame_mask).sum() / cells
        postnet_loss = (frame_loss(out["mel"], mel, reduction="none") * frame_mask).sum() / cells
        step_lengths = torch.div(mel_lengths + cfg.reduction - 1, cfg.reduction,
                                 rounding_mode="floor")  # (B,)
        n_steps = out["stop_logits"].size(1)
        step_mask = length_mask(step_lengths, n_steps).float()  # (B, S)
        stop_target = F.one_hot(step_lengths - 1, n_steps).float()  # (B, S)
        stop_loss = (F.binary_cross_entropy_with_logits(
            out["stop_logits"], stop_target, reduction="none",
            pos_weight=torch.tensor(cfg.stop_pos_weight, device=mel.device))
            * step_mask).sum() / step_mask.sum()
        losses = {"mel_loss": decoder_loss, "postnet_loss": postnet_loss, "stop_loss": stop_loss}
        total = decoder_loss + postnet_loss + stop_loss
        if cfg.guided_attention_weight > 0:
            guided = guided_attention_loss(out["attention"], step_lengths,
                                           batch["phoneme_lengths"], cfg.guided_attention_g)
            losses["guided_attention_loss"] = guided
            total = total + cfg.guided_attention_weight * guided
        return {"loss": total, **losses}

    @torch.no_grad()
    def sample(self, batch: dict) -> dict[str, Tensor]:
        """Free-running synthesis of the first item: its mel and attention."""
        n_in, t = int(batch["phoneme_lengths"][0]), int(batch["mel_lengths"][0])
        out = self.synthesize(batch["phonemes"][:1, :n_in], max_frames=SAMPLE_LENGTH_FACTOR * t)
        return {"mel": out["mel"][0], "attention": out["attention"]}

    @torch.no_grad()
    def scores(self, batch: dict) -> dict[str, float]:
        """Alignment of free-running synthesis (the real test) and of teacher forcing."""
        cfg = self.cfg
        mel = self._pad_to_steps(batch["mel"])
        out = self(batch["phonemes"], batch["phoneme_lengths"], mel, batch["mel_lengths"])
        step_lengths = torch.div(batch["mel_lengths"] + cfg.reduction - 1, cfg.reduction,
                                 rounding_mode="floor")
        forced = alignment_scores(out["attention"], step_lengths, batch["phoneme_lengths"],
                                  cfg.score_band)
        free, hits = [], 0
        for i in range(len(batch["phonemes"])):
            n_in, t = int(batch["phoneme_lengths"][i]), int(batch["mel_lengths"][i])
            syn = self.synthesize(batch["phonemes"][i:i + 1, :n_in],
                                  max_frames=SAMPLE_LENGTH_FACTOR * t)
            free.append(alignment_scores(syn["attention"], band=cfg.score_band))
            hits += syn["hit_max_length"]
        scores = {f"align_{k}": sum(f[k] for f in free) / len(free) for k in free[0]}
        return {**scores, "align_hit_max_rate": hits / len(free),
                "align_teacher_forced_diagonal_mass": forced["diagonal_mass"]}

    # ----------------------------------------------------------------------- inference

    @torch.no_grad()
    def synthesize(self, phonemes: Tensor, max_frames: int | None = None) -> dict:
        """phonemes (1, L) -> mel (1, n_mels, T), attention (steps, L), hit_max_length.

        Stops at the first step whose stop probability exceeds `stop_threshold`; if none
        does within `max_frames` frames, returns the capped output with hit_max_length.
        """
        cfg = self.cfg
        if phonemes.dim() != 2 or phonemes.size(0) != 1 or phonemes.size(1) == 0:
            raise ValueError(f"synthesize expects phonemes of shape (1, L>0), "
                             f"got {tuple(phonemes.shape)}")
        if int(phonemes.max()) >= cfg.n_symbols or int(phonemes.min()) < 0:
            raise ValueError(f"phoneme ids must be in 0..{cfg.n_symbols - 1}; the model was "
                             f"trained with a different symbol table?")
        max_frames = max_frames or cfg.max_frames
        max_steps = math.ceil(max_frames / cfg.reduction)
        lengths = torch.tensor([phonemes.size(1)], device=phonemes.device)
        memory = self.encoder(phonemes, lengths)  # (1, L, D)
        keys = self.decoder.attention.memory(memory)  # (1, L, A)
        mask = torch.ones(1, phonemes.size(1), dtype=torch.bool, device=phonemes.device)
        state = self.decoder.initial_state(memory)
        frame = memory.new_zeros(1, cfg.n_mels)  # go frame
        frames, weights, stopped = [], [], False
        for _ in range(max_steps):
            out, stop, state = self.decoder.step(self.decoder.prenet(frame), state, memory,
                                                 keys, mask)
            frames.append(out)
            weights.append(state["weights"][0])
            frame = out.view(1, cfg.reduction, cfg.n_mels)[:, -1]  # (1, M)
            if torch.sigmoid(stop).item() > cfg.stop_threshold:
                stopped = True
                break
        coarse = self._unfold(frames)[:, :, :max_frames]  # (1, M, T)
        mel = coarse + self.postnet(coarse)  # (1, M, T)
        return {"mel": mel, "attention": torch.stack(weights), "hit_max_length": not stopped}
