"""Datasets and batches: named dicts, never positional tuples.

Two kinds of batch (docs/architecture.md): *text* batches for acoustic models (padded
phonemes and mels, plus durations and variances when an alignment exists) and *segment*
batches for vocoders (random windows of audio with their mel frames).

Batch order is a pure function of (seed, step): `BatchPlan` draws the batches of step
`s` the same way whether training started at 0 or resumed at `s`, so a resumed run
matches an uninterrupted one. Random segment offsets are drawn from the same key.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from tts import split_lists
from tts.split_lists import SplitEntry
from tts.digest import fingerprint, sha256_file
from tts.featstore import FeatureStore
from tts.text import PAD_ID, to_ids

BUCKET_FACTOR = 8  # batches pooled and sorted by length to limit padding
LINE_SEP = " "  # separator of space-joined columns (phonemes, durations, ...)


class DataError(ValueError):
    """Inconsistent pipeline data; the message names the utterance or file."""


def read_split(split_dir: str | Path, name: str) -> list[SplitEntry]:
    path = Path(split_dir) / f"{name}.tsv"
    if not path.exists():
        raise DataError(f"{path} not found; run `dvc repro split`")
    return split_lists.read_split(path)


def read_alignment(align_dir: str | Path) -> pd.DataFrame:
    path = Path(align_dir) / "alignment.tsv"
    if not path.exists():
        raise DataError(f"{path} not found; run `dvc repro align`")
    return pd.read_csv(path, sep="\t", dtype={"id": str}, keep_default_na=False).set_index("id")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(LINE_SEP)]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(LINE_SEP)]


def symbol_ids(phonemes: Sequence[str], utterance: str) -> torch.Tensor:
    try:
        return torch.tensor(to_ids(list(phonemes)), dtype=torch.long)
    except ValueError as exc:
        raise DataError(f"utterance {utterance}: {exc}; the split was made with another "
                        f"symbol table: run `dvc repro split`") from exc


class TextMelDataset(torch.utils.data.Dataset):
    """Phonemes + mel (+ durations, pitch, energy when `alignment` is given)."""

    def __init__(self, entries: list[SplitEntry], store: FeatureStore,
                 alignment: pd.DataFrame | None = None):
        self.store, self.alignment = store, alignment
        ids = [e.id for e in entries]
        if alignment is not None:
            missing = [i for i in ids if i not in alignment.index]
            ids = [i for i in ids if i in alignment.index]  # dropped by the aligner
            self.skipped = missing
        self.ids = ids
        self.phonemes = {e.id: e.phonemes for e in entries}
        if not self.ids:
            raise DataError("no utterances left to train on (all dropped by split/align); "
                            "see data/split/report.json and data/align/report.json")
        stats = store.stats
        self.log_f0_mean, self.log_f0_std = stats["log_f0_mean"], stats["log_f0_std"]
        self.energy_mean, self.energy_std = stats["energy_mean"], stats["energy_std"]

    def __len__(self) -> int:
        return len(self.ids)

    def length(self, index: int) -> int:
        return self.store.n_frames(self.ids[index])

    def __getitem__(self, key) -> dict:
        index = key[0] if isinstance(key, tuple) else key
        uid = self.ids[index]
        feats = self.store[uid]
        item = {"id": uid, "mel": torch.from_numpy(np.array(feats["mel"], dtype=np.float32))}
        if self.alignment is None:
            item["phonemes"] = symbol_ids(self.phonemes[uid], uid)
            return item
        row = self.alignment.loc[uid]
        item["phonemes"] = symbol_ids(row["phonemes"].split(LINE_SEP), uid)
        item["durations"] = torch.tensor(_ints(row["durations"]), dtype=torch.long)
        if int(item["durations"].sum()) != item["mel"].shape[1]:
            raise DataError(f"utterance {uid}: durations sum to {int(item['durations'].sum())} "
                            f"frames but the mel has {item['mel'].shape[1]}; re-run "
                            f"`dvc repro align`")
        item["phone_pitch"] = torch.tensor(_floats(row["pitch"]))
        item["phone_energy"] = torch.tensor(_floats(row["energy"]))
        log_f0 = np.log(np.maximum(np.asarray(feats["f0"], dtype=np.float64), 1.0))
        item["pitch"] = torch.from_numpy(((log_f0 - self.log_f0_mean) / self.log_f0_std)
                                         .astype(np.float32))
        item["energy"] = torch.from_numpy(((np.asarray(feats["energy"], dtype=np.float64)
                                            - self.energy_mean) / self.energy_std)
                                          .astype(np.float32))
        return item


def _pad(tensors: list[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    """Right-pad the last dimension to the longest; stack to (B, ..., T_max)."""
    longest = max(t.shape[-1] for t in tensors)
    return torch.stack([torch.nn.functional.pad(t, (0, longest - t.shape[-1]), value=value)
                        for t in tensors])


def collate_text(items: list[dict], mel_pad: float) -> dict:
    batch = {
        "ids": [it["id"] for it in items],
        "phonemes": _pad([it["phonemes"] for it in items], PAD_ID),  # (B, L)
        "phoneme_lengths": torch.tensor([len(it["phonemes"]) for it in items]),
        "mel": _pad([it["mel"] for it in items], mel_pad),  # (B, n_mels, T)
        "mel_lengths": torch.tensor([it["mel"].shape[1] for it in items]),
    }
    for key in ("durations", "phone_pitch", "phone_energy", "pitch", "energy"):
        if key in items[0]:
            batch[key] = _pad([it[key] for it in items])
    return batch


class SegmentDataset(torch.utils.data.Dataset):
    """Random windows of `segment_frames` mel frames and their audio samples.

    Items are addressed as (index, seed): the window offset is drawn from `seed`, so
    the batch plan decides it. Utterances shorter than the window are zero-padded
    (audio) and floor-padded (mel)."""

    def __init__(self, entries: list[SplitEntry], store: FeatureStore, segment_frames: int,
                 hop_length: int, mel_pad: float):
        self.store, self.ids = store, [e.id for e in entries]
        self.frames, self.hop, self.mel_pad = segment_frames, hop_length, mel_pad
        if not self.ids:
            raise DataError("no utterances to train on; see data/split/report.json")

    def __len__(self) -> int:
        return len(self.ids)

    def length(self, index: int) -> int:
        return self.store.n_frames(self.ids[index])

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        uid = self.ids[index]
        feats = self.store[uid]
        n_frames = feats["mel"].shape[1]
        start = int(np.random.default_rng(seed).integers(0, max(n_frames - self.frames, 0) + 1))
        mel = np.array(feats["mel"][:, start:start + self.frames], dtype=np.float32)
        audio = np.array(feats["audio"][start * self.hop:(start + self.frames) * self.hop],
                         dtype=np.float32)
        short = self.frames - mel.shape[1]
        if short > 0:
            mel = np.pad(mel, ((0, 0), (0, short)), constant_values=self.mel_pad)
            audio = np.pad(audio, (0, self.frames * self.hop - len(audio)))
        return {"id": uid, "mel": torch.from_numpy(mel), "audio": torch.from_numpy(audio)}


def collate_segments(items: list[dict]) -> dict:
    return {"ids": [it["id"] for it in items],
            "audio": torch.stack([it["audio"] for it in items]),  # (B, S)
            "mel": torch.stack([it["mel"] for it in items])}  # (B, n_mels, F)


@dataclass
class BatchPlan:
    """Deterministic batches: `batch(step)` depends only on (seed, step, dataset)."""

    lengths: list[int]
    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        self.batch_size = min(self.batch_size, len(self.lengths))
        self.per_epoch = max(len(self.lengths) // self.batch_size, 1)
        self._epoch, self._batches = -1, []

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * BUCKET_FACTOR
        batches = []
        for start in range(0, len(order) - self.batch_size + 1, pool):
            chunk = sorted(order[start:start + pool], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size]
                        for i in range(0, len(chunk) - self.batch_size + 1, self.batch_size)]
        rng.shuffle(batches)
        return batches[:self.per_epoch]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """(dataset index, item seed) pairs for this rank at `step`."""
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self._plan_epoch(epoch)
        indices = self._batches[k % len(self._batches)]
        keyed = [(int(i), int(self.seed * 1_000_003 + step * self.batch_size + j))
                 for j, i in enumerate(indices)]
        return keyed[self.rank::self.world_size]


def validation_batches(dataset, collate, n_utterances: int, batch_size: int) -> list[dict]:
    """Fixed validation batches: the first `n_utterances` items, fixed segment seeds."""
    n = min(n_utterances, len(dataset))
    items = [dataset[(i, i)] for i in range(n)]
    return [collate(items[i:i + batch_size]) for i in range(0, n, batch_size)]


def mel_pad_value(log_floor: float) -> float:
    """Padding for log-mels: the value of silence."""
    return math.log(log_floor)


@dataclass
class TrainData:
    """What the training loop reads: the dataset, its collate, fixed validation batches."""

    dataset: torch.utils.data.Dataset  # items addressed by (index, seed)
    collate: Callable[[list[dict]], dict]
    val_batches: list[dict]
    fingerprint: str  # identity of the training data: part of the resume hash


def build_train_data(kind: str, train_cfg, audio, split_dir: str | Path,
                     features_dir: str | Path, align_dir: str | Path | None = None):
    """TrainData for a registry network's data kind ("text" or "segments")."""
    store = FeatureStore(features_dir)
    train_entries, val_entries = read_split(split_dir, "train"), read_split(split_dir, "val")
    pad = mel_pad_value(audio.log_floor)
    if kind == "text":
        alignment = read_alignment(align_dir) if align_dir else None
        train_set = TextMelDataset(train_entries, store, alignment)
        val_set = TextMelDataset(val_entries, store, alignment)
        collate = functools.partial(collate_text, mel_pad=pad)
    elif kind == "segments":
        frames = train_cfg.segment_frames
        train_set = SegmentDataset(train_entries, store, frames, audio.hop_length, pad)
        val_set = SegmentDataset(val_entries, store, frames, audio.hop_length, pad)
        collate = collate_segments
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    align_hash = (sha256_file(Path(align_dir) / "alignment.tsv") if kind == "text" and align_dir
                  else None)
    return TrainData(dataset=train_set, collate=collate,
                     val_batches=validation_batches(val_set, collate, train_cfg.val_utterances,
                                                    train_cfg.batch_size),
                     fingerprint=fingerprint(kind, train_set.ids, store.stats, align_hash))
