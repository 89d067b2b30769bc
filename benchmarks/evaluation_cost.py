"""Cost of the evaluation's listeners and metrics, per hour of audio.

CPU seconds (process time, one thread: load-independent on the shared machine) per hour
of real LJSpeech audio for each thing the evaluation and the split's transcript check do
to an utterance: Whisper tiny.en transcription (`tts.recognizer`), DistillMOS (`tts.mos`),
MCD + F0 errors (`tts.metrics.spectral_metrics`, WORLD + SPTK + DTW, on a Griffin-Lim copy),
PESQ + STOI, and the baseline measured in the same run, PocketSphinx (the recognizer this
replaced). Also the projected wall time of `split`'s transcript check for the 24 h
LJSpeech corpus with `split.workers` processes.

    python -m benchmarks.evaluation_cost [--corpus ../shared/data/ljspeech-mini] [--clips 8]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from benchmarks.harness import print_table, write_results
from tts import audio as A
from tts import metrics as M
from tts.config import AudioConfig

MINI_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ljspeech-mini"
LJSPEECH_HOURS = 23.9
SECONDS_PER_HOUR = 3600.0


def cpu_seconds(fn, items) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=MINI_CORPUS)
    parser.add_argument("--clips", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tts.corpus import read_metadata
    from tts.mos import load_mos_predictor
    from tts.recognizer import PocketSphinxRecognizer, load_recognizer

    cfg = AudioConfig()
    rows = read_metadata(args.corpus / "metadata.csv")[:args.clips]
    clips = [A.load_wav(args.corpus / "wavs" / f"{u.id}.wav", cfg.sample_rate) for u in rows]
    hours = sum(len(c) for c in clips) / cfg.sample_rate / SECONDS_PER_HOUR
    copies = [A.griffin_lim(A.mel_spectrogram(torch.from_numpy(c), cfg), cfg).numpy()[:len(c)]
              for c in clips]
    whisper, mos, sphinx = load_recognizer("whisper"), load_mos_predictor(), \
        PocketSphinxRecognizer()
    rate = cfg.sample_rate
    costs = {
        "pocketsphinx (baseline)": cpu_seconds(lambda c: sphinx.transcribe(c, rate), clips),
        "whisper tiny.en": cpu_seconds(lambda c: whisper.transcribe(c, rate), clips),
        "distillmos": cpu_seconds(lambda c: mos(c, rate), clips),
        "mcd + f0 (world, sptk, dtw)": cpu_seconds(
            lambda pair: M.spectral_metrics(*pair, cfg), list(zip(clips, copies))),
        "pesq + stoi": cpu_seconds(lambda pair: (M.pesq_wb(*pair, rate), M.stoi(*pair, rate)),
                                   list(zip(clips, copies))),
    }
    base = costs["pocketsphinx (baseline)"]
    table = [{"what": k, "cpu_s_per_audio_hour": v / hours, "vs_pocketsphinx": v / base}
             for k, v in costs.items()]
    workers = os.cpu_count() or 1
    split_hours = costs["whisper tiny.en"] / hours * LJSPEECH_HOURS / SECONDS_PER_HOUR
    print_table(table)
    print(f"split transcript check on LJSpeech ({LJSPEECH_HOURS} h): {split_hours:.2f} CPU hours, "
          f"{split_hours / workers * 60:.0f} min wall with {workers} workers")
    path = write_results("evaluation_cost", table, clips=len(clips),
                         audio_seconds=hours * SECONDS_PER_HOUR,
                         split_check_ljspeech_cpu_hours=split_hours, workers=workers)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
