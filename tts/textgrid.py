"""MFA-style TextGrids (interval tiers `words` and `phones`): write, read, silence labels."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from praatio import textgrid
from praatio.utilities.constants import Interval as PraatInterval

from tts.alignment import AlignmentDropped

SILENCE_LABELS = frozenset({"", "sil", "sp", "<eps>", "<sil>", "<s>", "</s>", "SIL"})
GAP = 1e-6  # seconds: intervals closer than this touch


class Interval(NamedTuple):
    start: float  # seconds
    end: float
    label: str


def is_silence(label: str) -> bool:
    return label.strip() in SILENCE_LABELS or label.startswith(("+", "["))  # ps fillers


def write_textgrid(path: Path, words: list[Interval], phones: list[Interval],
                   duration: float) -> None:
    """MFA-style TextGrid: interval tiers `words` and `phones` covering [0, duration]."""
    grid = textgrid.Textgrid(minTimestamp=0.0, maxTimestamp=duration)
    for name, items in (("words", words), ("phones", phones)):
        entries = [PraatInterval(s, min(e, duration), label)
                   for s, e, label in items if min(e, duration) > s]
        grid.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def read_phones(path: Path) -> tuple[list[Interval], float]:
    """The `phones` tier (gaps filled with empty labels) and the grid's end time."""
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
        tier = grid.getTier("phones")
    except Exception as exc:  # praatio raises several types for broken files
        raise AlignmentDropped(f"unreadable TextGrid {path}: {exc}") from exc
    intervals, t = [], grid.minTimestamp
    for start, end, label in tier.entries:
        if start > t:
            intervals.append(Interval(t, start, ""))
        intervals.append(Interval(start, end, label.strip()))
        t = end
    if grid.maxTimestamp > t:
        intervals.append(Interval(t, grid.maxTimestamp, ""))
    return intervals, grid.maxTimestamp
