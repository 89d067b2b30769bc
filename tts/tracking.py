"""Run tracking: MLflow (a SQLite store at the repo root) and DVC metrics/plots files.

The store lives at `$DVC_ROOT/mlflow.db` with artifacts in `$DVC_ROOT/mlartifacts`:
`DVC_ROOT` points at the real repository even inside `dvc exp run --queue`'s temporary
copy, so runs are never deleted with it. First-time store creation is serialized with a
file lock (two stages creating it at once corrupts the schema). Metrics are logged as one
dict per interval: each MLflow call costs 8-25 ms.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tts.audio import save_wav

EXPERIMENT = "tts-pipeline"
STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
DISABLE_ENV = "TTS_TRACKING"  # set to "off" to skip MLflow (unit tests)


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT", os.getcwd())).resolve()


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def tracking_uri(root: Path | None = None) -> str:
    return f"sqlite:///{(root or repo_root()) / STORE_FILE}"


def process_rank() -> int:
    """This process's rank under torchrun (`RANK`), 0 otherwise."""
    return int(os.environ.get("RANK", "0"))


class Tracker:
    """One MLflow run per stage execution; a no-op when disabled or off rank 0 (under
    torchrun only rank 0 opens a run, so ranks never write the SQLite store at once)."""

    def __init__(self, stage: str, enabled: bool = True, root: Path | None = None):
        self.stage = stage
        self.root = root or repo_root()
        self.enabled = (enabled and os.environ.get(DISABLE_ENV, "on") != "off"
                        and process_rank() == 0)
        self.run_id: str | None = None

    def __enter__(self) -> "Tracker":
        if not self.enabled:
            return self
        import mlflow
        from filelock import FileLock

        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        mlflow.set_tracking_uri(tracking_uri(self.root))
        with FileLock(str(self.root / f"{STORE_FILE}.lock")):
            client = mlflow.MlflowClient()
            experiment = client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                artifacts = (self.root / ARTIFACT_DIR).as_uri()
                experiment_id = client.create_experiment(EXPERIMENT, artifacts)
            else:
                experiment_id = experiment.experiment_id
        run = mlflow.start_run(experiment_id=experiment_id, run_name=self.stage, tags={
            "dvc_stage": self.stage, "git_commit": git_commit(self.root),
            "dvc_exp": os.environ.get("DVC_EXP_NAME", ""),
        })
        self.run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.enabled and self.run_id:
            import mlflow

            mlflow.end_run(status="FAILED" if exc_type else "FINISHED")

    def log_params(self, params: dict[str, Any]) -> None:
        if self.enabled:
            import mlflow

            flat = _flatten(params)
            mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.enabled and metrics:
            import mlflow

            mlflow.log_metrics({k.replace("@", "_"): float(v) for k, v in metrics.items()},
                               step=step)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled:
            import mlflow

            mlflow.set_tags(tags)

    def log_figure(self, figure, name: str) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_figure(figure, name)

    def log_file(self, path: str | Path, folder: str | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_artifact(str(path), folder)

    def log_audio(self, audio, sample_rate: int, name: str) -> None:
        """Write a wav to a temp dir and attach it as an artifact `name`."""
        if not self.enabled:
            return

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(name).name
            save_wav(path, audio, sample_rate)
            self.log_file(path, str(Path(name).parent) if Path(name).parent != Path(".")
                          else None)


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def numeric_leaves(tree: dict) -> dict[str, float]:
    """The numbers of a nested metrics dict under dotted names (what MLflow can log)."""
    return {k: float(v) for k, v in _flatten(tree).items() if isinstance(v, (int, float))}


def write_metrics(path: str | Path, metrics: dict) -> None:
    """DVC metrics JSON (`dvc metrics show`, `dvc exp show`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def write_plot(path: str | Path, rows: list[dict]) -> None:
    """DVC plots TSV: one row per logged step, columns in first-seen order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, delimiter="\t", restval="")
        writer.writeheader()
        writer.writerows(rows)
