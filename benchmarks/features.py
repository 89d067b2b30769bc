"""Feature-extraction throughput: seconds of audio processed per wall-clock second.

The stage's extractor (`tts.audio.extract_many`: torch log-mel + energy, DIO at decimated
rate + StoneMask, `features.workers` processes, pool start-up included) against a plain
single-process loop (soundfile + librosa.feature.melspectrogram + pyworld DIO/StoneMask at
default settings) over the same ljspeech-mini clips in the same run, plus the CPU time of
the single-process runs (a load-independent cost: the machine is shared). Also reports how
far the optimized features are from the plain ones (mel max |diff|, F0 agreement), since
the speed-up must not change the features.

    python -m benchmarks.features [--corpus ../shared/data/ljspeech-mini] [--passes 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import print_table, timed, write_results
from tts import audio
from tts.config import AudioConfig

MINI_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ljspeech-mini"
TARGET_AUDIO_S_PER_S = 80.0  # full LJSpeech (24 h) in under 18 minutes
TARGET_RATIO = 3.0  # against the plain loop
CENTS_PER_OCTAVE = 1200.0
GROSS_F0_CENTS = 50.0  # an F0 differing by more than this from the plain one is a gross error


def plain_features(path: Path, cfg) -> dict[str, np.ndarray]:
    """The baseline: what a straightforward librosa + pyworld script does per file."""
    import librosa
    import pyworld
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32")
    magnitude = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                    win_length=cfg.win_length, center=True, pad_mode="reflect"))
    mel = librosa.feature.melspectrogram(S=magnitude, sr=sr, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                         fmax=cfg.fmax, power=1.0)
    x = y.astype(np.float64)
    f0, t = pyworld.dio(x, sr, f0_floor=cfg.f0_min, f0_ceil=cfg.f0_max,
                        frame_period=1000.0 * cfg.hop_length / sr)
    f0 = pyworld.stonemask(x, f0, t, sr)
    return {"mel": np.log(np.maximum(mel, cfg.log_floor)), "f0": f0,
            "energy": np.linalg.norm(magnitude, axis=0)}


def agreement(paths: list[Path], cfg) -> dict:
    """How close the stage's features are to the plain loop's on the same files."""
    mel_diff, cents = 0.0, []
    for path in paths:
        ours, plain = audio.utterance_features(path, cfg), plain_features(path, cfg)
        edge = cfg.n_fft // (2 * cfg.hop_length) + 1  # end frames whose window meets our padding
        frames = min(ours["mel"].shape[1], plain["mel"].shape[1]) - edge
        diff = np.abs(ours["mel"][:, :frames] - plain["mel"][:, :frames])
        mel_diff = max(mel_diff, float(diff.max()))
        f0_plain = plain["f0"][:frames]
        both = ours["voiced"][:frames] & (f0_plain > 0)
        cents.append(CENTS_PER_OCTAVE * np.abs(np.log2(ours["f0"][:frames][both] / f0_plain[both])))
    cents = np.concatenate(cents)
    return {"mel_max_abs_diff": mel_diff, "f0_median_cents": float(np.median(cents)),
            "f0_gross_error_share": float(np.mean(cents > GROSS_F0_CENTS))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=MINI_CORPUS)
    parser.add_argument("--passes", type=int, default=2, help="times the clip list is repeated")
    parser.add_argument("--repeat", type=int, default=3, help="timings per row (best kept)")
    args = parser.parse_args()
    if not (args.corpus / "wavs").is_dir():
        raise SystemExit(f"benchmarks.features: no corpus at {args.corpus} (wavs/ missing); "
                         f"pass --corpus PATH to an LJSpeech-layout folder")
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    cfg = AudioConfig()
    clips = sorted((args.corpus / "wavs").glob("*.wav"))
    paths = clips * args.passes
    seconds = sum(len(audio.load_wav(p, cfg.sample_rate)) for p in paths) / cfg.sample_rate
    plain_features(clips[0], cfg)  # warm-up: librosa's first call pays for imports and caches
    audio.utterance_features(clips[0], cfg)

    def plain_loop():
        with threadpool_limits(1):  # the baseline gets one core, like each of our workers
            for p in paths:
                plain_features(p, cfg)

    cores = os.cpu_count() or 1
    rows = [{"extractor": "plain librosa + pyworld (baseline)", "processes": 1,
             "wall_s": timed(plain_loop, args.repeat)}]
    for workers in sorted({1, cores}):
        rows.append({"extractor": "stage (tts.audio.extract_many)", "processes": workers,
                     "wall_s": timed(lambda: list(audio.extract_many(paths, cfg, workers,
                                                                    desc="bench")),
                                     args.repeat)})
    for row, run in ((rows[0], plain_loop), (rows[1], lambda: list(audio.extract_many(
            paths, cfg, 1, desc="bench")))):  # CPU time: what the work costs without the load
        start = time.process_time()
        run()
        row["cpu_s"] = time.process_time() - start
    for row in rows:
        row["audio_s"] = round(seconds, 1)
        row["audio_s_per_s"] = seconds / row["wall_s"]
        row["vs_baseline"] = rows[0]["wall_s"] / row["wall_s"]
    quality = agreement(clips[:6], cfg)
    best = rows[-1]
    verdict = {"target_audio_s_per_s": TARGET_AUDIO_S_PER_S, "target_ratio": TARGET_RATIO,
               "met_throughput": best["audio_s_per_s"] >= TARGET_AUDIO_S_PER_S,
               "met_ratio": best["vs_baseline"] >= TARGET_RATIO,
               "ljspeech_minutes_estimate": 24 * 3600 / best["audio_s_per_s"] / 60,
               # load-independent: the CPU cost ratio on one core, and all cores busy with
               # nothing else (audio seconds per CPU second x cores)
               "cpu_ratio_one_core": rows[0]["cpu_s"] / rows[1]["cpu_s"],
               "unloaded_estimate_audio_s_per_s": cores * seconds / rows[1]["cpu_s"]}
    path = write_results("features", rows, agreement=quality, verdict=verdict,
                         note="2-core machine shared with other jobs: absolute figures are "
                              "under load; the ratio is measured in the same run")
    print_table(rows)
    print(f"agreement with the plain loop: {quality}")
    print(f"verdict: {verdict}\nwrote {path}")


if __name__ == "__main__":
    main()
