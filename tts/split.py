"""The split stage: keep or drop every utterance with a reason, then place the kept ones.

`check_utterance` runs the cheap checks first and decodes the audio last; the kept
utterances are ranked by a hash of (seed, id) (`assign_splits`), so the split depends on
the corpus alone, never on the order files are listed in. `split_corpus` writes the lists
(`tts.split_lists`) and `report.json` atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from tts.corpus import (METADATA, WAVS, CorpusError, Utterance, check_layout, read_metadata,
                        staged_dir)
from tts.split_lists import SPLITS, Dropped, SplitEntry, write_dropped, write_split
from tts.text import DEFAULT_CONFIG, UnspeakableTextError, normalize, phonemize
from tts.transcript_check import transcript_errors

SILENT_PEAK = 1e-4  # peak |amplitude| (full scale 1) at or below which audio counts as silent
AUDIO_ERRORS = (RuntimeError, ValueError, sf.SoundFileError)  # what libsndfile raises on bad files


def check_utterance(utt: Utterance, wavs: Path, cfg, text_cfg) -> SplitEntry | Dropped:
    """Kept `SplitEntry`, or `Dropped` with its reason; cheap checks first, decoding last.

    The entry's `normalized` is `tts.text.normalize` of the corpus' normalized column (what
    `phonemize` reads; LJSpeech's column keeps abbreviations such as "Mr.").
    """
    wav = wavs / f"{utt.id}.wav"
    if not wav.is_file():
        return Dropped(utt.id, "missing_wav", f"{wav} does not exist")
    try:
        info = sf.info(str(wav))
    except AUDIO_ERRORS as exc:
        return Dropped(utt.id, "unreadable_audio", f"{wav}: {exc}")
    if info.frames <= 0 or info.samplerate <= 0:
        return Dropped(utt.id, "empty_audio", f"{wav} has no samples")
    duration = info.frames / info.samplerate
    if duration < cfg.min_duration:
        return Dropped(utt.id, "too_short",
                       f"{duration:.3f} s < split.min_duration {cfg.min_duration} s")
    if duration > cfg.max_duration:
        return Dropped(utt.id, "too_long",
                       f"{duration:.3f} s > split.max_duration {cfg.max_duration} s")
    if not utt.normalized.strip():
        return Dropped(utt.id, "empty_text", "the transcript is empty")
    try:
        normalized = normalize(utt.normalized, text_cfg)
        phonemes = tuple(phonemize(normalized, text_cfg))
    except UnspeakableTextError as exc:
        return Dropped(utt.id, "unspeakable_text", str(exc))
    if len(phonemes) > cfg.max_phonemes:
        return Dropped(utt.id, "too_many_phonemes",
                       f"{len(phonemes)} > split.max_phonemes {cfg.max_phonemes}")
    try:  # decoded last, only for utterances that passed everything else
        samples, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    except AUDIO_ERRORS as exc:
        return Dropped(utt.id, "unreadable_audio", f"{wav}: {exc}")
    if samples.size == 0:
        return Dropped(utt.id, "empty_audio", f"{wav}: no samples could be decoded")
    bad = int(samples.size - np.isfinite(samples).sum())
    if bad:
        return Dropped(utt.id, "non_finite_audio",
                       f"{wav}: {bad} NaN/inf samples; re-export the file")
    if float(np.abs(samples).max()) <= SILENT_PEAK:
        return Dropped(utt.id, "silent_audio", f"{wav}: peak amplitude <= {SILENT_PEAK}")
    duration = len(samples) / info.samplerate  # decoded length: a truncated file is shorter
    return SplitEntry(utt.id, utt.text, normalized, phonemes, duration, info.samplerate,
                      samples.shape[1])


def split_rank(uid: str, seed: int) -> str:
    """The sort key that places an utterance: a hash of (seed, id), independent of order."""
    return hashlib.sha256(f"{seed}:{uid}".encode()).hexdigest()


def assign_splits(entries: list[SplitEntry], cfg) -> dict[str, list[SplitEntry]]:
    """val: the `val_count` lowest ranks, test: the next `test_count`, train: the rest."""
    held = cfg.val_count + cfg.test_count
    if len(entries) <= held:
        raise CorpusError(f"only {len(entries)} usable utterances, but split.val_count + "
                          f"split.test_count = {held} and training needs at least one more; "
                          f"lower them or use a bigger corpus")
    ranked = sorted(entries, key=lambda e: (split_rank(e.id, cfg.seed), e.id))
    parts = {"val": ranked[:cfg.val_count], "test": ranked[cfg.val_count:held],
             "train": ranked[held:]}
    return {name: sorted(parts[name], key=lambda e: e.id) for name in SPLITS}


def split_corpus(corpus: Path, out: Path, cfg, sample_rate: int, text_cfg=None) -> dict:
    """Check every utterance of `corpus`, split the kept ones, write `out` atomically.

    `sample_rate` is the feature contract's rate: other rates are kept (features resample)
    and counted in the report. `text_cfg`: `tts.text.TextConfig` (default when None).
    """
    text_cfg = text_cfg or DEFAULT_CONFIG
    corpus = Path(corpus)
    check_layout(corpus)
    rows = read_metadata(corpus / METADATA)
    kept, dropped = [], []
    for utt in tqdm(sorted(rows, key=lambda u: u.id), desc="split", unit="utt"):
        result = check_utterance(utt, corpus / WAVS, cfg, text_cfg)
        if isinstance(result, SplitEntry):
            kept.append(result)
        else:
            dropped.append(result)
    transcript_report = None
    if cfg.transcript_recognizer != "none" and kept:
        started = time.perf_counter()
        errors = transcript_errors(kept, corpus / WAVS, cfg.transcript_recognizer, cfg.workers)
        elapsed = time.perf_counter() - started
        hours = sum(e.duration for e in kept) / 3600
        mismatched = {uid for uid, (cer, _) in errors.items() if cer > cfg.max_transcript_cer}
        for uid in sorted(mismatched):
            cer, heard = errors[uid]
            dropped.append(Dropped(uid, "transcript_mismatch",
                                   f"recognizer CER {cer:.2f} > split.max_transcript_cer "
                                   f"{cfg.max_transcript_cer}: heard {heard!r}"))
        kept = [e for e in kept if e.id not in mismatched]
        cers = np.array([cer for cer, _ in errors.values()])
        transcript_report = {
            "recognizer": cfg.transcript_recognizer, "checked": len(errors),
            "max_cer": cfg.max_transcript_cer, "cer_mean": round(float(cers.mean()), 4),
            "cer_median": round(float(np.median(cers)), 4),
            "cer_p90": round(float(np.percentile(cers, 90)), 4), "audio_hours": round(hours, 4),
        }  # no wall time here: the split is a cached output every stage depends on
        print(f"transcript check: {len(errors)} utterances, {hours:.3f} h of audio in "
              f"{elapsed:.1f} s ({elapsed / max(hours, 1e-9):.0f} s per audio hour)", flush=True)
    by_reason: dict[str, int] = {}
    for _, reason, _ in dropped:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    if not kept:
        examples = "; ".join(f"{uid}: {reason} ({detail})" for uid, reason, detail in dropped[:3])
        raise CorpusError(f"{corpus}: none of {len(rows)} utterances is usable "
                          f"(dropped by reason: {by_reason}); e.g. {examples}")
    parts = assign_splits(kept, cfg)
    listed = {u.id for u in rows}
    report = {
        "utterances": len(rows),
        "kept": len(kept),
        "dropped": len(dropped),
        "dropped_by_reason": dict(sorted(by_reason.items())),
        "counts": {name: len(parts[name]) for name in SPLITS},
        "hours": {name: round(sum(e.duration for e in parts[name]) / 3600, 6) for name in SPLITS},
        "resampled": sum(e.sample_rate != sample_rate for e in kept),  # by features, to sample_rate
        "downmixed": sum(e.channels > 1 for e in kept),  # multi-channel, mixed to mono by features
        "unlisted_wavs": sum(p.stem not in listed for p in (corpus / WAVS).glob("*.wav")),
        "seed": cfg.seed,
    }
    if transcript_report:
        report["transcript_check"] = transcript_report
    with staged_dir(out) as tmp:
        for name in SPLITS:
            write_split(tmp / f"{name}.tsv", parts[name])
        write_dropped(tmp / "dropped.tsv", dropped)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
