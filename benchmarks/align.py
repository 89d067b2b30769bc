"""Alignment speed and agreement with MFA on real LJSpeech (ljspeech-mini).

Speed: pocketsphinx forced alignment per core (real-time factor = seconds of compute per
second of audio), the parallel run over all cores, and the TextGrid reader, each as a ratio
to the features stage's extraction (the baseline) on the same clips in the same run; the
projected time to align LJSpeech (24 h) on this machine.

Agreement: share of phone boundaries within 20 ms / 50 ms of MFA's (the reference
TextGrids shipped with ljspeech-mini), (a) with our phonemizer's dictionary over the clips
whose phones equal MFA's, (b) with MFA's own pronunciations given to pocketsphinx (every
clip without `spn`), with no time offset, with the configured offset, and with an offset
tuned on the odd clips and scored on the even ones (out of sample). Also: share of MFA
pauses >= 50 ms that pocketsphinx marks as silence.

    python -m benchmarks.align
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import print_table, write_results
from tts import alignment, audio, corpus, durations, pocketsphinx_aligner
from tts.alignment import AlignConfig, strip_stress
from tts.config import AudioConfig
from tts.textgrid import GAP, Interval, is_silence, read_phones
from tts.text import phonemize

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ljspeech-mini"
LJSPEECH_HOURS = 24.0  # LJSpeech 1.1: 13,100 clips, about 24 hours
WITHIN_S = (0.02, 0.05)  # agreement thresholds
OFFSETS_S = np.arange(0.0, 0.0301, 0.005)  # candidate pocketsphinx time offsets
MIN_PAUSE_S = 0.05  # MFA pauses at least this long are checked for detection


def boundary_errors(ref: list[Interval], hyp: list[Interval]) -> np.ndarray | None:
    """Signed hyp - ref phone boundary differences (seconds); None if the phones differ.

    Silence is ignored. Boundaries: every phone's start, plus its end where either aligner
    puts a silence after it (so a boundary shared by two phones counts once).
    """
    ref = [p for p in ref if not is_silence(p.label)]
    hyp = [p for p in hyp if not is_silence(p.label)]
    if [strip_stress(p.label) for p in ref] != [strip_stress(p.label) for p in hyp]:
        return None
    diffs = []
    for k, (r, h) in enumerate(zip(ref, hyp)):
        diffs.append(h.start - r.start)
        last = k == len(ref) - 1
        if last or ref[k + 1].start - r.end > GAP or hyp[k + 1].start - h.end > GAP:
            diffs.append(h.end - r.end)
    return np.asarray(diffs)


def mfa_words(path: Path) -> list[tuple[str, list[str]]]:
    """(word, phones) from an MFA TextGrid: the pronunciations MFA chose."""
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    phones = tg.getTier("phones").entries
    return [(w, [p.label for p in phones if p.start >= s - GAP and p.end <= e + GAP
                 and not is_silence(p.label)])
            for s, e, w in tg.getTier("words").entries]


def shares(errors: list[np.ndarray], offset: float = 0.0) -> dict:
    err = np.abs(np.concatenate(errors) + offset)
    return {"boundaries": len(err), **{f"within_{int(t * 1000)}ms": round(float(np.mean(
        err <= t + 1e-9)), 4) for t in WITHIN_S}, "median_abs_ms": round(1000 * float(
        np.median(err)), 1)}


def pause_recall(ref: list[Interval], hyp: list[Interval]) -> tuple[int, int]:
    pauses = [p for p in ref[1:-1] if is_silence(p.label) and p.end - p.start >= MIN_PAUSE_S]
    found = sum(sum(max(0.0, min(h.end, p.end) - max(h.start, p.start)) for h in hyp
                    if is_silence(h.label)) >= (p.end - p.start) / 2 for p in pauses)
    return len(pauses), found


def main() -> None:
    if not (MINI / corpus.METADATA).exists():
        raise SystemExit(f"benchmarks.align needs {MINI} (real LJSpeech clips + MFA TextGrids)")
    torch.set_num_threads(1)
    audio_cfg, cfg = AudioConfig(), AlignConfig()
    raw_cfg = replace(cfg, ps_time_offset=0.0)  # offsets are applied below
    utts = corpus.read_metadata(MINI / corpus.METADATA)
    wavs = {u.id: MINI / corpus.WAVS / f"{u.id}.wav" for u in utts}
    refs = {u.id: read_phones(MINI / "TextGrid" / f"{u.id}.TextGrid")[0] for u in utts}
    clips = {u.id: audio.load_wav(wavs[u.id], audio_cfg.sample_rate) for u in utts}
    seconds = sum(len(x) for x in clips.values()) / audio_cfg.sample_rate

    start = time.perf_counter()  # baseline: feature extraction, one core
    for u in utts:
        audio.utterance_features(wavs[u.id], audio_cfg)
    t_features = time.perf_counter() - start

    aligner = pocketsphinx_aligner.PocketSphinx(raw_cfg)
    ours, theirs, ours_ids, theirs_ids, grids = [], [], [], [], {}
    pauses = found = 0
    t_ps = 0.0
    for u in utts:
        symbols = phonemize(u.normalized)
        start = time.perf_counter()
        _, phones = aligner(alignment.utterance(u.id, wavs[u.id], u.normalized, symbols),
                            clips[u.id], audio_cfg.sample_rate)
        t_ps += time.perf_counter() - start
        grids[u.id] = phones
        err = boundary_errors(refs[u.id], phones)
        if err is not None:
            ours.append(err)
            ours_ids.append(u.id)
        words = mfa_words(MINI / "TextGrid" / f"{u.id}.TextGrid")
        if any(durations.UNKNOWN_LABEL in p for _, p in words):
            continue
        _, phones = aligner(alignment.Utterance(u.id, wavs[u.id], words), clips[u.id],
                            audio_cfg.sample_rate)
        theirs.append(boundary_errors(refs[u.id], phones))
        theirs_ids.append(u.id)
        n, k = pause_recall(refs[u.id], [Interval(p.start + cfg.ps_time_offset, p.end
                                                  + cfg.ps_time_offset, p.label) for p in phones])
        pauses, found = pauses + n, found + k

    start = time.perf_counter()  # the reader on MFA's TextGrids
    for u in utts:
        durations.durations_from_textgrid(
            MINI / "TextGrid" / f"{u.id}.TextGrid", phonemize(u.normalized),
            audio.n_frames(len(clips[u.id]), audio_cfg.hop_length), audio_cfg.sample_rate,
            audio_cfg.hop_length, replace(cfg, max_phone_edits=100), u.id)
    t_reader = time.perf_counter() - start

    workers = os.cpu_count() or 1
    batch = [alignment.utterance(u.id, wavs[u.id], u.normalized, phonemize(u.normalized))
             for u in utts]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pocketsphinx_aligner.run_pocketsphinx(batch, Path(tmp), replace(cfg, workers=workers),
                                              audio_cfg)
        t_parallel = time.perf_counter() - start

    rtf = t_ps / seconds
    speed = [
        {"what": "features (baseline), 1 core", "seconds": t_features, "rtf": t_features / seconds,
         "speed_vs_baseline": 1.0},
        {"what": "pocketsphinx align, 1 core", "seconds": t_ps, "rtf": rtf,
         "speed_vs_baseline": t_features / t_ps},
        {"what": f"pocketsphinx align, {workers} workers", "seconds": t_parallel,
         "rtf": t_parallel / seconds, "speed_vs_baseline": t_features / t_parallel},
        {"what": "TextGrid reader (MFA grids)", "seconds": t_reader, "rtf": t_reader / seconds,
         "speed_vs_baseline": t_features / t_reader},
    ]
    odd, even = theirs[::2], theirs[1::2]
    tuned = max(OFFSETS_S, key=lambda o: shares(odd, o)["within_20ms"])
    agreement = [
        {"dictionary": "ours (phones equal MFA's)", "clips": len(ours),
         "offset_ms": 1000 * cfg.ps_time_offset, **shares(ours, cfg.ps_time_offset)},
        {"dictionary": "MFA's pronunciations", "clips": len(theirs), "offset_ms": 0.0,
         **shares(theirs)},
        {"dictionary": "MFA's pronunciations", "clips": len(theirs),
         "offset_ms": 1000 * cfg.ps_time_offset, **shares(theirs, cfg.ps_time_offset)},
        {"dictionary": "MFA's, even clips (offset tuned on odd)", "clips": len(even),
         "offset_ms": round(1000 * tuned, 1), **shares(even, tuned)},
    ]
    projection = {"audio_seconds": round(seconds, 1), "rtf_per_core": round(rtf, 4),
                  "cores": workers, "ljspeech_hours_1_core": round(LJSPEECH_HOURS * rtf, 2),
                  "ljspeech_hours_all_cores": round(LJSPEECH_HOURS * t_parallel / seconds, 2),
                  "mfa_pauses_over_50ms": pauses, "pauses_found": found,
                  "clips_ours_comparable": ours_ids, "note": "2 shared cores, under load"}
    print_table(speed)
    print()
    print_table(agreement)
    print()
    print_table([projection | {"clips_ours_comparable": len(ours_ids)}])
    write_results("align", speed, agreement=agreement, projection=projection)


if __name__ == "__main__":
    main()
