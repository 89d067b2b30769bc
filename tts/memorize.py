"""Can a vocoder learn at all? Train it on one clip, then vocode that clip (copy synthesis).

A vocoder that cannot memorize one utterance will not learn a corpus; this is the cheapest
question to ask before a long run. Used by the fast learning test
(tests/test_vocoder_learning.py) and the memorization benchmark
(benchmarks/memorize_vocoders.py):

    feats = clip_features(wav_path, params.audio)
    result = train_on_clip("wavegrad", model_cfg, train_cfg, feats, params.audio, workdir)
    audio = copy_synthesis(result.model, feats["mel"], seed=0)
    log_mel_distance(audio, feats["audio"], params.audio)   # ~0.1-0.3 learned, >2 noise

Training goes through the one loop (`tts.train.Trainer`) on a dataset of the clip repeated
`copies` times, so a batch holds that many random windows of it and validation renders
the whole clip. The spectral distance is the mean absolute difference of THE log-mel
(`tts.audio.mel_spectrogram`) of the vocoded audio and of the recording: the recording
scores 0, Griffin-Lim's copy of it ~0.15-0.2, unconditioned noise of the right loudness
~2.6 and silence ~4.5 (measured on an LJSpeech and an eSpeak clip).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

import models
from tts.audio import mel_spectrogram, utterance_features
from tts.data import SegmentDataset, TrainData, collate_segments, mel_pad_value
from tts.digest import fingerprint
from tts.train import RunPaths, Trainer, seed_everything

DEFAULT_COPIES = 8  # the clip repeated this many times: one batch of random windows
MIN_RESIDUAL_SCALE = 1e-12  # a silent clip's predictor: keeps log(scale) finite


class ClipStore:
    """The `FeatureStore` interface over in-memory utterances {id: {"mel", "audio"}}."""

    def __init__(self, items: dict[str, dict[str, np.ndarray]]):
        self.items = items
        self.ids = list(items)
        self.stats: dict = {}

    def __getitem__(self, uid: str) -> dict[str, np.ndarray]:
        return self.items[uid]

    def n_frames(self, uid: str) -> int:
        return self.items[uid]["mel"].shape[-1]


def clip_features(path: str | Path, audio_cfg) -> dict[str, np.ndarray]:
    """THE features of one wav: {"mel" (n_mels, T), "audio" (T * hop,), ...}."""
    return utterance_features(path, audio_cfg)


def clip_data(uid: str, feats: dict, train_cfg, audio_cfg, copies: int = DEFAULT_COPIES
              ) -> TrainData:
    """Segment batches of one clip (training) and the whole clip (validation)."""
    store = ClipStore({uid: {"mel": feats["mel"], "audio": feats["audio"]}})
    entries = [SimpleNamespace(id=uid)] * copies
    pad = mel_pad_value(audio_cfg.log_floor)
    train_set = SegmentDataset(entries, store, train_cfg.segment_frames, audio_cfg.hop_length,
                               pad)
    whole = SegmentDataset(entries[:1], store, store.n_frames(uid), audio_cfg.hop_length, pad)
    return TrainData(dataset=train_set, collate=collate_segments,
                     val_batches=[collate_segments([whole[(0, 0)]])],
                     fingerprint=fingerprint("memorize", uid, copies))


@dataclass
class ClipRun:
    model: torch.nn.Module
    metrics: dict
    seconds: float  # wall time of training (validation included)


def train_on_clip(name: str, model_cfg, train_cfg, feats: dict, audio_cfg, workdir: Path,
                  uid: str = "clip", teacher: torch.nn.Module | None = None,
                  copies: int = DEFAULT_COPIES, tracker=None, log_media=None) -> ClipRun:
    """Train registry network `name` on one clip through `tts.train.Trainer`."""
    data = clip_data(uid, feats, train_cfg, audio_cfg, copies)
    seed_everything(train_cfg.seed)
    model = models.build_model(name, model_cfg)
    paths = RunPaths(Path(workdir) / "checkpoints", Path(workdir) / f"{name}.pt")
    trainer = Trainer(name, model, model_cfg, train_cfg, data, paths, tracker=tracker,
                      teacher=teacher, quiet=True, log_media=log_media)
    started = time.perf_counter()
    metrics = trainer.fit()
    return ClipRun(trainer.model.eval(), metrics, time.perf_counter() - started)


def quick_train_config(train_cfg, **overrides):
    """`train_cfg` with validation and checkpoints only at the end (a short run)."""
    steps = overrides.get("steps", train_cfg.steps)
    return dataclasses.replace(train_cfg, **{"val_every": steps, "checkpoint_every": steps,
                                             "log_every": max(steps // 10, 1), **overrides})


@torch.no_grad()
def copy_synthesis(model: torch.nn.Module, mel: np.ndarray | torch.Tensor, seed: int = 0,
                   **options) -> torch.Tensor:
    """Vocode a mel (n_mels, T) with any vocoder's `generate` (`options` go to it, e.g. a
    sampling vocoder's `temperature`): audio (T * hop,)."""
    mel = torch.as_tensor(mel, dtype=torch.float32)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return model.generate(mel[None], **options)[0].float()


@torch.no_grad()
def clip_loss(model: torch.nn.Module, audio: np.ndarray | torch.Tensor,
              mel: np.ndarray | torch.Tensor, seed: int = 0) -> dict[str, float]:
    """The network's own scalar loss terms on a whole clip, audio (T * hop,) with its mel
    (n_mels, T): teacher-forced for the WaveNet (its NLL and `bits_per_sample`). Any noise
    the loss draws is seeded; the caller's RNG state is left as it was."""
    batch = {"audio": torch.as_tensor(audio, dtype=torch.float32)[None],
             "mel": torch.as_tensor(mel, dtype=torch.float32)[None]}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        terms = model.loss(batch)
    return {k: float(v) for k, v in terms.items() if torch.is_tensor(v) and v.numel() == 1}


def log_mel_distance(audio: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray,
                     audio_cfg) -> float:
    """Mean |log-mel(audio) - log-mel(reference)| over bins and frames (nats)."""
    a = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    r = torch.as_tensor(np.asarray(reference, dtype=np.float32))
    n = min(a.shape[-1], r.shape[-1])
    return float((mel_spectrogram(a[:n], audio_cfg) - mel_spectrogram(r[:n], audio_cfg))
                 .abs().mean())


def linear_prediction_bits(audio: np.ndarray | torch.Tensor, order: int, bits: int = 16
                           ) -> float:
    """Bits per sample that the best order-`order` linear predictor, fitted to this very
    clip by least squares, needs with one logistic for its residuals, on the 2**bits grid
    of [-1, 1]: the reference for a sample-level model's teacher-forced NLL
    (`bits_per_sample`). Order 0 predicts the clip's mean; on LJ001-0002 orders 0 / 1 / 32
    score 13.4 / 11.2 / 10.3 bits. A model below order 1 uses more of the past than
    the last sample; the clip is memorized well below order 32."""
    x = np.asarray(audio, dtype=np.float64)
    target = x[order:]
    if order:
        past = np.stack([x[order - k:len(x) - k] for k in range(1, order + 1)], axis=1)
        weights, *_ = np.linalg.lstsq(past, target, rcond=None)
        residual = target - past @ weights
    else:
        residual = target - target.mean()
    scale = max(np.abs(residual).mean() / (2 * np.log(2)), MIN_RESIDUAL_SCALE)  # E|e| = 2s ln 2
    u = np.abs(residual) / scale
    nats = np.mean(u + 2 * np.log1p(np.exp(-u))) + np.log(scale)  # -log density, mean
    bin_width = 2.0 / (2 ** bits - 1)
    return float((nats - np.log(bin_width)) / np.log(2))
