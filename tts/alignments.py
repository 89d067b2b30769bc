"""The alignment folder: every split utterance aligned, read back onto its phonemes.

`write_alignments` aligns the train, val and test lists with `align.aligner`
(`tts.align`: pocketsphinx or mfa), reads each TextGrid back with the one reader onto the
split's phonemes, averages pitch and energy per phone, and writes to its folder (replaced
only on success): `textgrids/<id>.TextGrid`, `alignment.tsv` (HEADER; durations in mel
frames, pitch / energy z-scores per phone) and `report.json` (counts, drops with reasons,
mean phone length, pause counts, aligner version).
"""

from __future__ import annotations

import collections
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

from tts import align, alignment, corpus, durations, prosody, split_lists
from tts.config import AudioConfig
from tts.featstore import FeatureStore
from tts.text import PAUSES

HEADER = ("id", "phonemes", "durations", "pitch", "energy")
DECIMALS = 4  # pitch / energy z-scores in alignment.tsv


def write_alignments(cfg: alignment.AlignConfig, audio_cfg: AudioConfig, text_cfg=None, *,
                     corpus_dir: Path, split_dir: Path, features_dir: Path, out: Path) -> dict:
    """Align, write `out` (replaced only on success) and return the report."""
    store = FeatureStore(features_dir)
    entries = [(name, e) for name in split_lists.SPLITS
               for e in split_lists.read_split(Path(split_dir) / f"{name}.tsv")]
    dropped, utts = {}, []
    for _, e in entries:
        try:
            utts.append(alignment.utterance(e.id, Path(corpus_dir) / corpus.WAVS / f"{e.id}.wav",
                                        e.normalized, list(e.phonemes), text_cfg))
        except alignment.AlignmentDropped as exc:
            dropped[e.id] = str(exc)
    rows, counts, phone_frames = [], collections.Counter(), []
    with corpus.staged_dir(Path(out)) as tmp, tempfile.TemporaryDirectory() as work:
        grids = tmp / "textgrids"
        failed, version = align.align_corpus(utts, grids, cfg, audio_cfg, Path(work))
        dropped.update(failed)
        stats = store.stats
        for name, e in entries:
            if e.id in dropped:
                continue
            try:
                dur, c = durations.durations_from_textgrid(
                    grids / f"{e.id}.TextGrid", list(e.phonemes), store.n_frames(e.id),
                    audio_cfg.sample_rate, audio_cfg.hop_length, cfg, e.id)
            except alignment.AlignmentDropped as exc:
                dropped[e.id] = str(exc)
                continue
            item = store[e.id]
            pitch, energy = prosody.phone_averages(dur, item["f0"], item["voiced"],
                                                 item["energy"], stats)
            rows.append((e.id, " ".join(e.phonemes), " ".join(map(str, dur)),
                         " ".join(f"{v:.{DECIMALS}f}" for v in pitch),
                         " ".join(f"{v:.{DECIMALS}f}" for v in energy)))
            counts.update(c)
            counts[f"aligned_{name}"] += 1
            counts.update(p for p in e.phonemes if p in PAUSES)
            phone_frames += [d for p, d in zip(e.phonemes, dur) if p not in PAUSES]
        with open(tmp / "alignment.tsv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(rows)
        report = make_report(cfg, audio_cfg, version=version, total=len(entries), rows=rows,
                             dropped=dropped, counts=counts, phone_frames=phone_frames)
        (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if not rows:
        raise ValueError(f"align: no utterance could be aligned; see {out}/report.json")
    return report


def make_report(cfg: alignment.AlignConfig, audio_cfg: AudioConfig, *, version: str, total: int,
                rows: list, dropped: dict[str, str], counts: collections.Counter,
                phone_frames: list[int]) -> dict:
    """report.json: what was aligned, what was dropped and why, phone lengths, pauses."""
    by_reason = collections.Counter(r.split(":")[0].split(" (")[0] for r in dropped.values())
    mean_frames = float(np.mean(phone_frames)) if phone_frames else 0.0
    return {
        "aligner": cfg.aligner, "version": version, "utterances": total,
        "aligned": len(rows), "dropped": len(dropped),
        "aligned_by_split": {n: counts[f"aligned_{n}"] for n in split_lists.SPLITS},
        "dropped_by_reason": dict(by_reason), "dropped_ids": dict(sorted(dropped.items())),
        "mean_phone_frames": round(mean_frames, 3),
        "mean_phone_ms": round(1000 * mean_frames * audio_cfg.frame_seconds, 2),
        "pauses": {k: counts[k] for k in ("sil", "sp", "pauses_aligned", "pauses_empty",
                                          "silences_absorbed")},
        "frames_moved": counts["frames_moved"],  # boundary shifts giving every phone a frame
    }
