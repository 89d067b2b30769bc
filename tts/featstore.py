"""Sharded feature store: per-utterance arrays packed into a few large files.

At LJSpeech scale (13,100 utterances) one file per utterance and feature makes `dvc
status` slow (DESIGN: 20,000 small files ~2.9 s warm against ~0.8 s for the same bytes in
a few large files; measured here on the loaded 2-core machine for 13,100 x 5 arrays:
65,500 files took 130 s to `dvc add` and 29-53 s per `dvc status`, the same as 14 shards
x 5 files 4.6 s and 3.3-3.4 s), so utterances are grouped into shards of `shard_size`:

    root/
      meta.json             array keys, dtypes, leading shapes, samples per frame
      index.tsv             id  shard  offset  frames   (offset: first frame in the shard)
      shard-00000/KEY.npy   one array per key, every utterance concatenated along time,
      shard-00001/...       time first: (sum of T, *leading dims), read with mmap
      stats.json            written by the caller (`write_stats`), read as `.stats`

Every item's arrays share one time grid: an array's last axis is T frames times a fixed
per-key factor (1 for frame-level features, hop_length for `audio`), which `write_store`
checks. Writing streams each shard to disk, so memory stays at one utterance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

META_FILE = "meta.json"
INDEX_FILE = "index.tsv"
STATS_FILE = "stats.json"
FRAME_KEY = "mel"  # the array whose last axis defines T
NPY_HEADER_BYTES = 128  # fixed .npy header size, so it can be rewritten after streaming
NPY_MAGIC = b"\x93NUMPY\x01\x00"


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


class _NpyWriter:
    """Append rows to a .npy file whose final length is unknown until `close`."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape, self.rows = path, dtype, row_shape, 0
        self.file = open(path, "wb")
        self.file.write(b"\0" * NPY_HEADER_BYTES)  # placeholder, rewritten on close

    def append(self, rows: np.ndarray) -> None:  # rows: (n, *row_shape)
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        shape = (self.rows, *self.row_shape)
        header = repr({"descr": np.lib.format.dtype_to_descr(self.dtype),
                       "fortran_order": False, "shape": shape}).encode("latin1")
        pad = NPY_HEADER_BYTES - len(NPY_MAGIC) - 2 - len(header) - 1
        if pad < 0:
            raise ValueError(f"{self.path}: .npy header too long for shape {shape}")
        self.file.seek(0)
        self.file.write(NPY_MAGIC + (NPY_HEADER_BYTES - len(NPY_MAGIC) - 2).to_bytes(2, "little")
                        + header + b" " * pad + b"\n")
        self.file.close()


def write_store(root: str | Path, items: Iterable[tuple[str, dict[str, np.ndarray]]],
                shard_size: int) -> int:
    """Write (id, arrays) items into a fresh store at `root`; returns the item count.

    Arrays may have leading dims (mel: (n_mels, T)); their last axis is time. The first
    item fixes each key's dtype, leading shape and samples-per-frame factor; later items
    must match (error naming the utterance). `root` must be absent or empty.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; write a feature store into a new folder")
    meta: dict[str, dict] | None = None
    writers: dict[str, _NpyWriter] = {}
    rows, seen = [], set()
    shard, offset = -1, 0
    for count, (uid, arrays) in enumerate(items):
        if uid in seen:
            raise ValueError(f"feature store: duplicate utterance id {uid!r}")
        seen.add(uid)
        if FRAME_KEY not in arrays:
            raise ValueError(f"feature store: utterance {uid!r} has no {FRAME_KEY!r} array")
        frames = arrays[FRAME_KEY].shape[-1]
        if meta is None:
            meta = {key: {"dtype": np.lib.format.dtype_to_descr(a.dtype),
                          "leading": list(a.shape[:-1]),
                          "per_frame": a.shape[-1] // max(frames, 1)}
                    for key, a in sorted(arrays.items())}
        _check_item(uid, arrays, frames, meta)
        if count % shard_size == 0:  # start a new shard
            for w in writers.values():
                w.close()
            shard, offset = shard + 1, 0
            (root / _shard_name(shard)).mkdir()
            writers = {key: _NpyWriter(root / _shard_name(shard) / f"{key}.npy",
                                       np.dtype(m["dtype"]), tuple(m["leading"]))
                       for key, m in meta.items()}
        for key, a in arrays.items():
            writers[key].append(np.moveaxis(a, -1, 0))  # (time, *leading)
        rows.append(f"{uid}\t{shard}\t{offset}\t{frames}")
        offset += frames
    for w in writers.values():
        w.close()
    (root / META_FILE).write_text(json.dumps({"keys": meta or {}}, indent=1, sort_keys=True))
    (root / INDEX_FILE).write_text("id\tshard\toffset\tframes\n"
                                   + "".join(r + "\n" for r in rows))
    return len(rows)


def _check_item(uid: str, arrays: dict, frames: int, meta: dict) -> None:
    if set(arrays) != set(meta):
        raise ValueError(f"feature store: utterance {uid!r} has keys {sorted(arrays)}, "
                         f"expected {sorted(meta)}")
    for key, a in arrays.items():
        m = meta[key]
        expected = (*m["leading"], frames * m["per_frame"])
        if tuple(a.shape) != expected:
            raise ValueError(f"feature store: utterance {uid!r} array {key!r} has shape "
                             f"{tuple(a.shape)}, expected {expected} on its {frames}-frame grid")
        if np.lib.format.dtype_to_descr(a.dtype) != m["dtype"]:
            raise ValueError(f"feature store: utterance {uid!r} array {key!r} has dtype "
                             f"{a.dtype}, expected {m['dtype']}")


def write_stats(root: str | Path, stats: dict) -> None:
    """Write the corpus statistics next to the shards (read back as `FeatureStore.stats`)."""
    (Path(root) / STATS_FILE).write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")


class FeatureStore:
    """Read-only access to a store written by `write_store`; arrays are loaded by mmap."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / INDEX_FILE).exists():
            raise FileNotFoundError(f"{self.root}: not a feature store (no {INDEX_FILE}); "
                                    f"run `dvc repro features`")
        self.meta = json.loads((self.root / META_FILE).read_text())["keys"]
        self._index: dict[str, tuple[int, int, int]] = {}
        lines = (self.root / INDEX_FILE).read_text().splitlines()[1:]
        for line in lines:
            uid, shard, offset, frames = line.split("\t")
            self._index[uid] = (int(shard), int(offset), int(frames))
        self.ids: list[str] = list(self._index)
        self._shards: dict[int, dict[str, np.ndarray]] = {}
        self._stats: dict | None = None

    def __getstate__(self) -> dict:  # pickled into spawned DataLoader workers: no open mmaps
        return {**self.__dict__, "_shards": {}}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, uid: str) -> bool:
        return uid in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def _locate(self, uid: str) -> tuple[int, int, int]:
        try:
            return self._index[uid]
        except KeyError:
            raise KeyError(f"utterance {uid!r} is not in the feature store {self.root} "
                           f"({len(self)} utterances); is it in the split lists? "
                           f"re-run `dvc repro features`") from None

    def n_frames(self, uid: str) -> int:
        return self._locate(uid)[2]

    def _arrays(self, shard: int) -> dict[str, np.ndarray]:
        if shard not in self._shards:  # opened lazily, once per process (DataLoader workers)
            folder = self.root / _shard_name(shard)
            self._shards[shard] = {key: np.load(folder / f"{key}.npy", mmap_mode="r")
                                   for key in self.meta}
        return self._shards[shard]

    def __getitem__(self, uid: str) -> dict[str, np.ndarray]:
        """{key: array} for one utterance, time last (mel (n_mels, T), audio (T * hop,))."""
        shard, offset, frames = self._locate(uid)
        out = {}
        for key, array in self._arrays(shard).items():
            k = self.meta[key]["per_frame"]
            rows = array[offset * k:(offset + frames) * k]  # (time, *leading)
            out[key] = np.moveaxis(rows, 0, -1).copy(order="C")  # a private, writable copy
        return out

    @property
    def stats(self) -> dict:
        if self._stats is None:
            path = self.root / STATS_FILE
            if not path.exists():
                raise FileNotFoundError(f"{path} not found; re-run `dvc repro features`")
            self._stats = json.loads(path.read_text())
        return self._stats


class FeatureStats:
    """Running corpus statistics for normalization (float64 sums; order-deterministic).

    mel_mean / mel_std per mel bin over all frames; log_f0_mean / log_f0_std over voiced
    frames; energy_mean / energy_std over all frames.
    """

    def __init__(self, sample_rate: int, hop_length: int):
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.n_utterances = self.n_frames = self.n_voiced = 0
        self.mel_sum = self.mel_sq = None
        self.log_f0_sum = self.log_f0_sq = self.energy_sum = self.energy_sq = 0.0

    def add(self, item: dict[str, np.ndarray]) -> None:
        mel = item["mel"].astype(np.float64)  # (n_mels, T)
        if self.mel_sum is None:
            self.mel_sum, self.mel_sq = np.zeros(len(mel)), np.zeros(len(mel))
        self.mel_sum += mel.sum(axis=1)
        self.mel_sq += (mel ** 2).sum(axis=1)
        log_f0 = np.log(item["f0"][item["voiced"]].astype(np.float64))
        self.log_f0_sum += log_f0.sum()
        self.log_f0_sq += (log_f0 ** 2).sum()
        e = item["energy"].astype(np.float64)
        self.energy_sum += e.sum()
        self.energy_sq += (e ** 2).sum()
        self.n_utterances += 1
        self.n_frames += mel.shape[1]
        self.n_voiced += len(log_f0)

    @staticmethod
    def _mean_std(total, squares, count: int) -> tuple:
        mean = total / max(count, 1)
        return mean, np.sqrt(np.maximum(squares / max(count, 1) - mean ** 2, 0.0))

    def counts(self) -> dict:
        return {"n_utterances": self.n_utterances, "n_frames": self.n_frames,
                "seconds": self.n_frames * self.hop_length / self.sample_rate}

    def result(self) -> dict:
        if not self.n_utterances or not self.n_voiced:
            raise ValueError("feature statistics need at least one utterance with voiced "
                             "frames in the train split")
        mel_mean, mel_std = self._mean_std(self.mel_sum, self.mel_sq, self.n_frames)
        f0_mean, f0_std = self._mean_std(self.log_f0_sum, self.log_f0_sq, self.n_voiced)
        e_mean, e_std = self._mean_std(self.energy_sum, self.energy_sq, self.n_frames)
        return {"mel_mean": mel_mean.tolist(), "mel_std": mel_std.tolist(),
                "log_f0_mean": float(f0_mean), "log_f0_std": float(f0_std),
                "energy_mean": float(e_mean), "energy_std": float(e_std),
                "n_voiced_frames": self.n_voiced, **self.counts()}
