"""WaveGrad generation speed on CPU and the noise-schedule search's cost per candidate.

    python -m benchmarks.wavegrad [--frames 16] [--device cpu]

Real-time factor (seconds of compute per second of audio; lower is faster) at 6, 12, 25
and 50 iterations for the default model (params.yaml) and the paper's 15.8M-parameter
base model (presets/wavegrad-base.yaml), on a short clip of `--frames` mel frames; speed
is the ratio to the baseline (the default model at 6 iterations) measured in the same run.
Then the search: seconds to score one candidate schedule with the `noise_schedule:`
params (clips x clip_frames, one thread), in-process and through a pool of 2 workers
(including process start-up), and the resulting estimate for the whole default search.
Random weights: speed does not depend on training. One torch thread; the machine is
shared, so the ratios mean more than the seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
import yaml

from benchmarks.harness import print_table, timed, write_results
from models.wavegrad import WaveGrad, linear_betas
from tts import noise_schedule as ns
from tts.config import load_params
from tts.presets import merge

NAME = "wavegrad"
ROOT = Path(__file__).resolve().parents[1]
BASE_PRESET = ROOT / "presets" / "wavegrad-base.yaml"
ITERATIONS = (6, 12, 25, 50)
MEL_MEAN = -5.0  # a plausible log-mel level for random conditioning
BETA_START, BETA_END = 1e-6, 0.5  # any schedule costs the same per iteration
POOL_WORKERS = 2
POOL_CANDIDATES = 8


def rtf_rows(name: str, model: WaveGrad, mel: torch.Tensor, sample_rate: int,
             device: str) -> list[dict]:
    rows = []
    seconds_audio = mel.shape[-1] * model.cfg.hop_length / sample_rate
    params = sum(p.numel() for p in model.parameters())
    for n in ITERATIONS:
        betas = linear_betas(n, BETA_START, BETA_END)
        run = lambda: model.generate(mel, betas) if device == "cpu" else (  # noqa: E731
            model.generate(mel, betas), torch.cuda.synchronize())
        run()  # warm-up
        repeat = 3 if n * params < 2e8 else 1  # bound the base model's long runs
        rows.append({"model": name, "params_M": params / 1e6, "iterations": n,
                     "rtf": timed(run, repeat) / seconds_audio})
    return rows


def search_rows(model: WaveGrad, params) -> list[dict]:
    cfg = params.section("noise_schedule")
    audio = params.audio
    frames, hop = cfg.clip_frames, audio.hop_length
    gen = torch.Generator().manual_seed(0)
    clips = [{"id": f"clip{i}", "mel": torch.randn(audio.n_mels, frames, generator=gen) + MEL_MEAN,
              "audio": 0.1 * torch.randn(frames * hop, generator=gen)} for i in range(cfg.clips)]
    rows = []
    for n in cfg.iterations:
        betas = ns.candidates(n, cfg)[0].betas
        per = timed(lambda: ns.score_schedule(model, clips, betas, audio, cfg), repeat=2)
        count = len(ns.candidates(n, cfg))
        rows.append({"search": f"{n} iterations, in-process", "candidates": count,
                     "s_per_candidate": per, "est_total_s_1_worker": per * count})
    n = cfg.iterations[0]
    cands = ns.candidates(n, cfg)[:POOL_CANDIDATES]
    pool_cfg = dataclasses.replace(cfg, workers=POOL_WORKERS)
    start = time.perf_counter()
    ns.score_candidates(model, clips, cands, audio, pool_cfg)
    wall = time.perf_counter() - start
    rows.append({"search": f"{n} iterations, pool of {POOL_WORKERS} (with start-up)",
                 "candidates": len(cands), "s_per_candidate": wall / len(cands)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="mel frames of the clip")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    params = load_params(ROOT / "params.yaml")
    base_raw = merge(params.raw, yaml.safe_load(BASE_PRESET.read_text()))
    from tts.config import parse_params

    _, default_cfg = params.network("wavegrad")
    _, base_cfg = parse_params(base_raw).network("wavegrad")
    mel = torch.randn(1, default_cfg.n_mels, args.frames, device=args.device) + MEL_MEAN
    rows = []
    for name, cfg in (("default", default_cfg), ("base", base_cfg)):
        model = WaveGrad(cfg).to(args.device).eval()
        rows += rtf_rows(name, model, mel, params.audio.sample_rate, args.device)
    baseline = rows[0]["rtf"]
    for row in rows:
        row["speed_vs_default_6"] = baseline / row["rtf"]
    print_table(rows)
    search = [] if args.skip_search else search_rows(WaveGrad(default_cfg).eval(), params)
    print()
    print_table(search)
    path = write_results(NAME, rows, search=search, clip_frames=args.frames,
                         device=args.device)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
