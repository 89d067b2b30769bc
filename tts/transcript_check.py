"""Transcripts confirmed by ear: a recognizer's CER of every kept utterance (split stage)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from tts.recognizer import error_rates, load_recognizer
from tts.split_lists import SplitEntry

_WORKER_RECOGNIZER = None


def _init_transcript_worker(kind: str) -> None:
    global _WORKER_RECOGNIZER
    torch.set_num_threads(1)
    _WORKER_RECOGNIZER = load_recognizer(kind, threads=1)


def _transcript_job(job: tuple[str, str, str]) -> tuple[str, float, str]:
    """(id, CER of the recognizer against the transcript, what it heard)."""
    uid, wav, text = job
    samples, rate = sf.read(wav, dtype="float32", always_2d=True)
    heard = _WORKER_RECOGNIZER.transcribe(samples.mean(axis=1), rate)
    return uid, error_rates(text, heard)["cer"], heard


def transcript_errors(entries: list[SplitEntry], wavs: Path, kind: str,
                      workers: int = 0) -> dict[str, tuple[float, str]]:
    """{id: (CER, heard)}: the recognizer on every entry's audio against its transcript,
    in `workers` processes (0 = all cores), each loading its own recognizer."""
    jobs = [(e.id, str(wavs / f"{e.id}.wav"), e.text) for e in entries]
    workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    out = {}
    bar = tqdm(total=len(jobs), desc="transcripts", unit="utt")
    if workers == 1:
        _init_transcript_worker(kind)
        results = map(_transcript_job, jobs)
        for uid, cer, heard in results:
            out[uid] = (cer, heard)
            bar.update()
    else:  # fork: workers start in milliseconds; each loads the recognizer once
        method = "fork" if "fork" in mp.get_all_start_methods() else None
        with mp.get_context(method).Pool(workers, _init_transcript_worker, (kind,)) as pool:
            for uid, cer, heard in pool.imap_unordered(_transcript_job, jobs, chunksize=4):
                out[uid] = (cer, heard)
                bar.update()
    bar.close()
    return out
