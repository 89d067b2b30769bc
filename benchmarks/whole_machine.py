"""Using every core in training: threads per stage versus stages side by side.

Two real training stages (default: FastSpeech 2 and WaveGrad, params.yaml's sizes, on a
prepared corpus) run for a fixed number of steps in three ways:

- `baseline`: one after the other, `model.cpu_threads: 1` (what `dvc repro` does);
- `threads`: one after the other, `model.cpu_threads: N` (N = the cores);
- `side_by_side`: both at once, one thread each (what `make run` does through
  `tts.parallel_repro`).

Each way reports its wall time as a ratio to the baseline of the same round and its CPU
time (user + system of the training processes) over wall time: 2.0 means two cores busy.
Rounds interleave the ways, so a machine shared with other work loads them alike; the
summary is the median over rounds. Each stage runs in its own process, as under DVC.

    python -m benchmarks.whole_machine --data data [--steps 60] [--rounds 2]
    (--data: a folder holding split/, features/ and align/, e.g. the pipeline's data/)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.harness import print_table, write_results

REPO = Path(__file__).resolve().parents[1]
NETWORKS = ("fastspeech2", "wavegrad")


def _child(args) -> None:
    """One training stage for `--steps` steps with `--threads` torch threads."""
    from stages.train import run
    from tts.config import parse_params
    from tts.train import RunPaths

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    section = raw.setdefault(args.child, {})
    section.update(steps=args.steps, cpu_threads=args.threads, val_every=10 * args.steps,
                   checkpoint_every=10 * args.steps)
    params = parse_params(raw)
    out = Path(args.out)
    paths = RunPaths(out / "ckpt", out / "model.pt")
    data = Path(args.data)
    align = data / "align" if (data / "align").is_dir() else None
    run(args.child, params, paths, split=data / "split", features=data / "features",
        align=align, quiet=True)


def _launch(name: str, threads: int, args, work: Path) -> subprocess.Popen:
    out = work / f"{name}-{threads}-{time.monotonic_ns()}"
    env = dict(os.environ, TTS_TRACKING="off", OMP_NUM_THREADS=str(threads),
               PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "benchmarks.whole_machine", "--child", name,
                             "--threads", str(threads), "--steps", str(args.steps),
                             "--data", str(args.data), "--out", str(out)], cwd=REPO, env=env)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(way: str, args, cores: int, work: Path) -> dict:
    """Wall and CPU seconds of training every network the given way."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    if way == "side_by_side":
        procs = [_launch(n, 1, args, work) for n in args.networks]
        codes = [p.wait() for p in procs]
    else:
        threads = 1 if way == "baseline" else cores
        codes = [_launch(n, threads, args, work).wait() for n in args.networks]
    if any(codes):
        raise SystemExit(f"{way}: a training process failed (exit codes {codes})")
    wall = time.perf_counter() - start
    return {"way": way, "wall_s": wall, "cpu_s": _cpu_seconds() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--child")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        return _child(args)
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    ways = ("baseline", "threads", "side_by_side")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ways if r % 2 == 0 else ways[::-1]  # interleave: no way always goes first
            measured = {w: measure(w, args, cores, Path(tmp)) for w in order}
            base = measured["baseline"]["wall_s"]
            for w in ways:
                m = measured[w]
                rows.append({"round": r, "way": w, "wall_s": m["wall_s"],
                             "speedup_vs_baseline": base / m["wall_s"],
                             "cpu_per_wall": m["cpu_s"] / m["wall_s"]})
                print(rows[-1], flush=True)
            summary = [{"way": w,
                        "speedup_vs_baseline": statistics.median(
                            x["speedup_vs_baseline"] for x in rows if x["way"] == w),
                        "cpu_per_wall": statistics.median(x["cpu_per_wall"] for x in rows
                                                          if x["way"] == w)} for w in ways]
            path = write_results("whole_machine", rows, summary=summary, cores=cores,
                                 networks=args.networks, steps=args.steps, rounds=r + 1)
    print_table(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
