"""`dvc repro` with independent stages side by side (`make run`).

DVC runs one stage at a time, so on a 2-core machine a one-thread training stage leaves a
core idle, and the seven training stages and sixteen evaluation stages mostly do not depend
on each other. This driver reads the DAG from DVC and keeps `jobs` processes of
`dvc repro --single-item STAGE` running, starting a stage once every stage it depends on
has finished. Among ready stages, the one heading the longest chain of training steps goes
first (a training stage weighs its network's `steps`; FastSpeech 2's long budget then starts
right after `align` instead of after the shorter networks), then the one with the most stages
downstream.

DVC's own locks keep this safe: each `dvc repro` holds the repository lock only while it
checks and commits a stage (not while the command runs), and read/write locks on the
stage's dependencies and outputs; all of them share one cache and one `dvc.lock`, so the
result is the same as `dvc repro`'s. A process that found the repository lock taken is
started again after a pause. Each stage's output goes to `LOG_DIR/<stage>.log`; a failed
stage stops new launches, lets the running ones finish, prints its log's tail and exits
non-zero. `dvc repro` itself stays the way to run the DAG one stage at a time.

    python -m tts.parallel_repro [--jobs N] [TARGET ...]   # N = 0: all cores
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tts.config import ConfigError, load_params

LOG_DIR = Path("data") / "logs"
LOCK_MESSAGE = "Unable to acquire lock"  # dvc's message when another process holds it
LOCK_RETRIES = 20
LOCK_RETRY_WAIT_S = 2.0
POLL_S = 0.5
TRAIN_COMMAND = re.compile(r"-m stages\.train (\w+)")  # training stages: their network's name
LOG_TAIL_LINES = 40


@dataclass
class Job:
    stage: str
    process: subprocess.Popen
    log: Path
    started: float
    attempt: int


def stage_graph(root: Path, targets: list[str]) -> dict[str, set[str]]:
    """{stage: stages it depends on} for `targets` and everything upstream (all if none)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges stage -> stage it depends on
        nodes = {s.addressing: s for s in graph.nodes}
        if targets:
            import networkx as nx

            missing = [t for t in targets if t not in nodes]
            if missing:
                raise SystemExit(f"parallel_repro: no stage named {', '.join(missing)} in "
                                 f"dvc.yaml (stages: {', '.join(sorted(nodes))})")
            keep = set()
            for t in targets:
                keep |= {t} | {s.addressing for s in nx.descendants(graph, nodes[t])}
        else:
            keep = set(nodes)
        return {name: {d.addressing for d in graph.successors(s)} & keep
                for name, s in nodes.items() if name in keep}


def _users(deps: dict[str, set[str]]) -> dict[str, set[str]]:
    """{stage: stages that depend on it directly}: `deps` read the other way."""
    users: dict[str, set[str]] = {s: set() for s in deps}
    for s, ds in deps.items():
        for d in ds:
            users[d].add(s)
    return users


def downstream_counts(deps: dict[str, set[str]]) -> dict[str, int]:
    users = _users(deps)
    memo: dict[str, set[str]] = {}

    def below(s: str) -> set[str]:
        if s not in memo:
            memo[s] = set().union(*[{u} | below(u) for u in users[s]]) if users[s] else set()
        return memo[s]

    return {s: len(below(s)) for s in deps}


def training_steps(root: Path) -> dict[str, int]:
    """{stage: its network's `steps`} for the training stages of `root`'s dvc.yaml (empty
    where the params do not load: the order then falls back to downstream counts)."""
    import yaml


    try:
        params = load_params(root / "params.yaml")
        stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    except (OSError, ConfigError, KeyError, TypeError):
        return {}
    steps = {}
    for name, stage in stages.items():
        match = TRAIN_COMMAND.search(str(stage.get("cmd", "")))
        if match:
            steps[name] = params.network(match.group(1))[0].steps
    return steps


def critical_paths(deps: dict[str, set[str]], cost: dict[str, int]) -> dict[str, int]:
    """{stage: its cost plus the costliest chain of stages below it}."""
    users = _users(deps)
    memo: dict[str, int] = {}

    def path(s: str) -> int:
        if s not in memo:
            memo[s] = cost.get(s, 0) + max((path(u) for u in users[s]), default=0)
        return memo[s]

    return {s: path(s) for s in deps}


def _start(stage: str, attempt: int, root: Path) -> Job:
    log = root / LOG_DIR / f"{stage.replace('@', '-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "w", encoding="utf-8")
    process = subprocess.Popen(["dvc", "repro", "--single-item", stage], cwd=root,
                               stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return Job(stage, process, log, time.monotonic(), attempt)


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def run(root: Path, jobs: int = 0, targets: list[str] | None = None) -> int:
    """Reproduce `targets` (all stages if none) with up to `jobs` stages at once; 0 on
    success, else 1 after the running stages finished."""
    if not jobs:
        affinity = getattr(os, "sched_getaffinity", None)
        jobs = len(affinity(0)) if affinity else os.cpu_count() or 1
    deps = stage_graph(root, targets or [])
    rank = downstream_counts(deps)
    chain = critical_paths(deps, training_steps(root))
    done: set[str] = set()
    running: dict[str, Job] = {}
    waiting: dict[str, float] = {}  # stage -> time its lock retry may start
    attempts: dict[str, int] = {}
    failed: list[Job] = []
    started = time.monotonic()
    while len(done) < len(deps) and not (failed and not running):
        now = time.monotonic()
        ready = sorted((s for s in deps if s not in done and s not in running
                        and deps[s] <= done and waiting.get(s, 0) <= now),
                       key=lambda s: (-chain[s], -rank[s], s))
        while not failed and ready and len(running) < jobs:
            stage = ready.pop(0)
            running[stage] = _start(stage, attempts.get(stage, 0), root)
            print(f"[{time.monotonic() - started:7.1f}s] start  {stage}", flush=True)
        time.sleep(POLL_S)
        for stage, job in list(running.items()):
            code = job.process.poll()
            if code is None:
                continue
            del running[stage]
            seconds = time.monotonic() - job.started
            if code == 0:
                done.add(stage)
                print(f"[{time.monotonic() - started:7.1f}s] done   {stage} "
                      f"({seconds / 60:.1f} min)", flush=True)
            elif LOCK_MESSAGE in job.log.read_text(errors="replace") and \
                    job.attempt < LOCK_RETRIES:
                attempts[stage] = job.attempt + 1
                waiting[stage] = time.monotonic() + LOCK_RETRY_WAIT_S
            else:
                failed.append(job)
                print(f"[{time.monotonic() - started:7.1f}s] FAILED {stage} (exit {code}); "
                      f"waiting for {len(running)} running stage(s)", flush=True)
    for job in failed:
        print(f"\n--- {job.stage}: last lines of {job.log} ---\n{_tail(job.log)}",
              file=sys.stderr)
    if failed:
        return 1
    print(f"all {len(deps)} stages up to date in {(time.monotonic() - started) / 60:.1f} min "
          f"({jobs} at a time; logs in {LOG_DIR}/)")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="stages to reproduce (default: all)")
    parser.add_argument("--jobs", type=int, default=0, help="stages at once; 0 = all cores")
    args = parser.parse_args()
    sys.exit(run(Path.cwd(), args.jobs, args.targets))


if __name__ == "__main__":
    main()
