"""The benchmark harness: timing, a results file with machine info, a printed table.

Every benchmark reports throughput as a ratio to a baseline measured in the same run, so
figures stay comparable on a shared, loaded machine (the absolute numbers are not).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], object], repeat: int = 3, reduce: str = "min") -> float:
    """Seconds one call of `fn` takes: the best ("min", default) or "median" of `repeat`."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if reduce == "min" else statistics.median(times)


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cores": os.cpu_count(), "load_avg_1min": load, "cpu": platform.processor()
            or platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def write_results(name: str, rows: list[dict], **extra) -> Path:
    """Write benchmarks/results/NAME.json: {"benchmark", "machine", "rows", **extra}."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), "rows": rows, **extra}
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    """Print rows (dicts sharing keys) as an aligned text table."""
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
