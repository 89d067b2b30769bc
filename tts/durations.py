"""Aligner phones -> frame durations over our symbols (FastSpeech 2's targets).

One reader (`durations_from_textgrid`) turns either into frame durations over our symbol
sequence:

- Labels are compared without stress digits (MFA's AH0 matches our AH1).
- Silence labels (`sil`, `sp`, empty, pocketsphinx `SIL`, fillers) fill the gaps between
  phones. A gap where our sequence has a pause token (`sil` at the ends, `sp`/`sil` inside)
  becomes that token; any other gap is absorbed into its neighbours (`absorb_silence`).
- `spn` (MFA's unknown-word filler) stands for one or more of our phones; with
  `spn: spread` its time is shared equally among them, with `spn: drop` the utterance is
  dropped.
- Our phones are matched to the aligner's by edit distance; more than `max_phone_edits`
  substitutions/insertions/deletions drops the utterance ("phones do not match").
- Seconds become frames by rounding every cumulative boundary onto the frame grid: frame
  i is centred on sample i * hop (torchaudio center=True), so a boundary at time t closes
  after the ceil(t * sr / hop) frames whose centres precede it; the last boundary is T, so
  durations sum exactly to the mel frame count. A symbol left with zero frames takes one
  from the next symbol (pushing later boundaries as little as needed); an utterance with
  fewer frames than symbols is dropped. Nothing ever gets zero frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tts.alignment import AlignConfig, AlignmentDropped, strip_stress
from tts.text import PAUSES
from tts.textgrid import Interval, is_silence, read_phones

UNKNOWN_LABEL = "spn"  # MFA's unknown-word filler


def _match(ours: list[str], theirs: list[str]) -> tuple[list[list[int]], int]:
    """Edit-distance alignment of our phones to the aligner's (stress-free labels).

    Returns, for each of our phones, the aligner tokens it takes its time from (a `spn`
    token may cover several of ours), and the number of edits. Aligner tokens matched to
    none of ours (insertions) are left out and later absorbed like silence.
    """
    n, m = len(ours), len(theirs)
    inf = n + m + 1
    cost = np.full((n + 1, m + 1), inf, dtype=np.int64)
    cost[0, :] = np.arange(m + 1)
    cost[:, 0] = np.arange(n + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if theirs[j - 1] == UNKNOWN_LABEL:  # covers ours[i-1], first or continuing
                best = min(cost[i - 1, j - 1], cost[i - 1, j])
            else:
                best = cost[i - 1, j - 1] + (ours[i - 1] != theirs[j - 1])
            cost[i, j] = min(best, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    mapping: list[list[int]] = [[] for _ in range(n)]
    i, j = n, m
    while i > 0 and j > 0:
        c = cost[i, j]
        if theirs[j - 1] == UNKNOWN_LABEL and c == cost[i - 1, j]:
            mapping[i - 1].append(j - 1)  # our phone inside a spn word
            i -= 1
        elif c == cost[i - 1, j - 1] + (theirs[j - 1] != UNKNOWN_LABEL
                                       and ours[i - 1] != theirs[j - 1]):
            mapping[i - 1].append(j - 1)  # match, substitution, or the first of a spn
            i, j = i - 1, j - 1
        elif c == cost[i - 1, j] + 1:
            i -= 1  # deletion: our phone gets no aligner time
        else:
            j -= 1  # insertion: an extra aligner phone
    return mapping, int(cost[n, m])


def _spans(symbols: list[str], phones: list[Interval], cfg: AlignConfig,
           ) -> tuple[list[tuple[float, float]], dict]:
    """A time span (start, end) per symbol: contiguous, covering [0, end of grid]."""
    total = phones[-1].end if phones else 0.0
    speech = [p for p in phones if not is_silence(p.label)]
    theirs = [UNKNOWN_LABEL if p.label == UNKNOWN_LABEL else strip_stress(p.label)
              for p in speech]
    if UNKNOWN_LABEL in theirs and cfg.spn == "drop":
        raise AlignmentDropped("aligner marked a word unknown (spn) and align.spn is drop")
    ours_idx = [k for k, s in enumerate(symbols) if s not in PAUSES]
    ours = [strip_stress(symbols[k]) for k in ours_idx]
    if not ours:
        raise AlignmentDropped("transcript has no phones")
    if not speech:
        raise AlignmentDropped("aligner found no phones")
    mapping, edits = _match(ours, theirs)
    if edits > cfg.max_phone_edits:
        raise AlignmentDropped(
            f"phones do not match the transcript ({edits} edits > align.max_phone_edits="
            f"{cfg.max_phone_edits}): ours {' '.join(ours)} | aligner {' '.join(theirs)}")
    # speech spans; a spn token is shared equally among the phones it covers
    spans: list[list[float]] = []
    for i, tokens in enumerate(mapping):
        if not tokens:  # deletion: an empty span where the previous phone ends
            t = spans[-1][1] if spans else speech[0].start
            spans.append([t, t])
            continue
        j = tokens[0]
        if theirs[j] == UNKNOWN_LABEL:
            cover = [k for k, toks in enumerate(mapping) if toks and toks[0] == j]
            step = (speech[j].end - speech[j].start) / len(cover)
            r = cover.index(i)
            spans.append([speech[j].start + r * step, speech[j].start + (r + 1) * step])
        else:
            spans.append([speech[j].start, speech[j].end])
    # gaps between consecutive speech spans: our pause token there takes the gap, else
    # the gap is absorbed into the neighbours
    counts = {"pauses_aligned": 0, "pauses_empty": 0, "silences_absorbed": 0}
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(symbols)
    bounds = [0.0] + [t for s in spans for t in s] + [total]  # gap g: bounds[2g], [2g+1]
    for g in range(len(ours) + 1):
        lo, hi = bounds[2 * g], max(bounds[2 * g], bounds[2 * g + 1])
        first = ours_idx[g - 1] + 1 if g > 0 else 0
        last = ours_idx[g] if g < len(ours) else len(symbols)
        pauses = list(range(first, last))
        if pauses:
            out[pauses[0]] = (lo, hi)
            for k in pauses[1:]:
                out[k] = (hi, hi)
            has_silence = hi - lo > 0
            counts["pauses_aligned"] += has_silence
            counts["pauses_empty"] += len(pauses) - has_silence
        elif hi > lo:
            counts["silences_absorbed"] += 1
            cut = {"previous": hi, "next": lo, "split": (lo + hi) / 2}[cfg.absorb_silence]
            if g == 0:
                cut = lo
            elif g == len(ours):
                cut = hi
            bounds[2 * g], bounds[2 * g + 1] = cut, cut
    for i, k in enumerate(ours_idx):
        out[k] = (bounds[2 * i + 1], max(bounds[2 * i + 1], bounds[2 * i + 2]))
    return out, counts


def frame_boundary(seconds: float, sample_rate: int, hop_length: int) -> int:
    """Frames whose centre (i * hop) lies before `seconds`."""
    return max(0, math.ceil(seconds * sample_rate / hop_length - 1e-6))


def durations_from_spans(spans: list[tuple[float, float]], n_frames: int,
                         sample_rate: int, hop_length: int) -> tuple[np.ndarray, int]:
    """Whole-frame durations summing to n_frames, each >= 1; and the frames moved for that.

    A symbol whose span rounds to no frame takes one from the symbol after it (the one
    before it at the end), pushing boundaries along as little as possible.
    """
    if n_frames < len(spans):
        raise AlignmentDropped(f"{len(spans)} symbols but only {n_frames} frames")
    rounded = np.array([min(frame_boundary(end, sample_rate, hop_length), n_frames)
                        for _, end in spans], dtype=np.int64)
    rounded[-1] = n_frames
    ends = np.maximum.accumulate(rounded)
    for i in range(len(ends)):  # forward: every symbol at least one frame
        ends[i] = max(ends[i], (ends[i - 1] if i else 0) + 1)
    ends[-1] = n_frames
    for i in range(len(ends) - 2, -1, -1):  # backward: room for the symbols after
        ends[i] = min(ends[i], ends[i + 1] - 1)
    dur = np.diff(np.concatenate([[0], ends]))
    return dur, int(np.abs(ends - np.maximum.accumulate(rounded)).sum())


def durations_from_textgrid(path: Path, symbols: list[str], n_frames: int,
                            sample_rate: int, hop_length: int, cfg: AlignConfig,
                            utt_id: str = "") -> tuple[np.ndarray, dict]:
    """THE reader: a TextGrid's phones tier -> frame durations over `symbols`."""
    phones, total = read_phones(path)
    expected = 1 + int(total * sample_rate) // hop_length
    if abs(expected - n_frames) > 2:
        raise ValueError(f"{utt_id or path}: TextGrid covers {total:.3f} s (~{expected} "
                         f"frames) but the features have {n_frames} frames; were they made "
                         f"from different audio? Re-run the features and align stages.")
    if n_frames < len(symbols):
        raise AlignmentDropped(f"{len(symbols)} symbols but only {n_frames} frames")
    spans, counts = _spans(symbols, phones, cfg)
    dur, counts["frames_moved"] = durations_from_spans(spans, n_frames, sample_rate,
                                                       hop_length)
    if int(dur.sum()) != n_frames or (dur <= 0).any():
        raise ValueError(f"{utt_id or path}: durations sum to {int(dur.sum())}, expected "
                         f"{n_frames} frames (or a phone has no frames); this is a bug")
    return dur, counts
