"""The split stage's lists: `train.tsv`, `val.tsv`, `test.tsv` and `dropped.tsv`.

Tab-separated with a header (`id text normalized phonemes duration`; `id reason detail`);
a field holding a quote is CSV-quoted, so read them with `read_split` (or pandas' default
quoting), never `str.split`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tts.corpus import CorpusError

SPLIT_HEADER = ("id", "text", "normalized", "phonemes", "duration")
DROPPED_HEADER = ("id", "reason", "detail")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitEntry:
    id: str
    text: str
    normalized: str
    phonemes: tuple[str, ...]
    duration: float  # seconds
    sample_rate: int = 0  # of the wav (not written to the lists; 0 when read back)
    channels: int = 0  # of the wav (> 1: down-mixed by features; 0 when read back)


class Dropped(NamedTuple):
    """An utterance the split leaves out, and why (one row of `dropped.tsv`)."""

    id: str
    reason: str  # missing_wav unreadable_audio ... transcript_mismatch
    detail: str  # what was found, naming the file


def _tsv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Tab-separated; a field holding a quote is quoted CSV-style (pandas' default reads it)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_split(path: Path, entries: list[SplitEntry]) -> None:
    _tsv(path, SPLIT_HEADER, [(e.id, e.text, e.normalized, " ".join(e.phonemes),
                               f"{e.duration:.4f}") for e in entries])


def write_dropped(path: Path, dropped: list[Dropped]) -> None:
    _tsv(path, DROPPED_HEADER, [(uid, reason, " ".join(detail.split()))
                                for uid, reason, detail in dropped])


def read_split(path: Path) -> list[SplitEntry]:
    """Read a `train.tsv` / `val.tsv` / `test.tsv` written by the split stage."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f, delimiter="\t"))
    if not lines or tuple(lines[0]) != SPLIT_HEADER:
        raise CorpusError(f"{path}: not a split list (header must be {' '.join(SPLIT_HEADER)}); "
                          f"re-run `dvc repro split`")
    entries = []
    for n, cols in enumerate(lines[1:], 2):
        if len(cols) != len(SPLIT_HEADER):
            raise CorpusError(f"{path}:{n}: expected {len(SPLIT_HEADER)} tab-separated fields")
        uid, text, normalized, phonemes, duration = cols
        entries.append(SplitEntry(uid, text, normalized, tuple(phonemes.split()), float(duration)))
    return entries
