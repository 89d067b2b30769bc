"""End to end: the whole DAG as `make run` runs it (tts.parallel_repro over `dvc repro`)
on a tiny builtin corpus, in a temporary repo.

Every stage runs for real (Piper synthesis, features, PocketSphinx alignment, every
network for a few steps, the noise-schedule search, evaluation and the report); the test
then checks the artifacts, that MLflow recorded the runs, and that DVC re-runs exactly the
stages a param touches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

import models

ROOT = Path(__file__).resolve().parents[1]
TRACKED = ["tts", "models", "stages", "presets", "dvc.yaml", "params.yaml", "pyproject.toml"]
TINY_STEPS = 3

# The tiny-run overrides: a small corpus and a few steps per model.
TINY = {
    "data.builtin.n_utterances": 16,
    "split.val_count": 2,
    "split.test_count": 2,
    "features.workers": 2,
    "model.steps": TINY_STEPS,
    "model.batch_size": 2,
    "model.warmup_steps": 1,
    "model.log_every": 1,
    "model.val_every": TINY_STEPS,
    "model.checkpoint_every": TINY_STEPS,
    "model.val_utterances": 1,
    "model.segment_frames": 8,
}
# Training keys a network section may set for the full-size run; the tiny run removes them
# so the `model.*` values above apply to every network.
TINY_TRAINING_KEYS = ("steps", "warmup_steps", "log_every", "val_every", "checkpoint_every",
                      "val_utterances", "val_listen_clips", "val_listen_seconds")
# Per-file overrides appended by later stages (noise search, evaluation) for speed.
TINY_EXTRA_FILE = ROOT / "tests" / "tiny_params.yaml"


def set_dotted(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def out_of_date(repo: Path, env: dict) -> dict:
    """`dvc status` without base_models, which is always changed by design (it re-hashes
    the `init_from` files on every repro; nothing downstream runs unless they changed)."""
    status = json.loads(run(["dvc", "status", "--json"], repo, env).stdout or "{}")
    assert status.pop("base_models", ["always changed"]) == ["always changed"]
    return status


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return done


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    repo = tmp_path_factory.mktemp("pipeline")
    for name in TRACKED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    overrides = dict(TINY)
    if TINY_EXTRA_FILE.exists():
        overrides.update(yaml.safe_load(TINY_EXTRA_FILE.read_text()) or {})
    for name in models.REGISTRY:  # networks' own step budgets give way to the tiny ones
        section = params
        for part in models.spec(name).section.split("."):
            section = section.setdefault(part, {})
        for key in TINY_TRAINING_KEYS:
            section.pop(key, None)
    for key, value in overrides.items():
        set_dotted(params, key, value)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DVC_ROOT", None)
    env.pop("TTS_TRACKING", None)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                ["git", "config", "user.name", "ci"], ["dvc", "init", "-q"],
                ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        run(cmd, repo, env)
    # what `make run` does: the DAG through tts.parallel_repro, two stages at a time (the
    # dvc status check below then also proves dvc.lock complete after concurrent stages)
    run([sys.executable, "-m", "tts.parallel_repro", "--jobs", "2"], repo, env)
    return repo, env


@pytest.mark.slow
def test_whole_dag_builds_every_artifact(repo):
    repo, env = repo
    for path in ["data/corpus/metadata.csv", "data/split/train.tsv", "data/features/stats.json",
                 "data/align/alignment.tsv", "data/models/fastspeech2/model.pt",
                 "data/models/tacotron2/model.pt", "data/models/dctts/text2mel.pt",
                 "data/models/dctts/ssrn.pt", "data/models/wavenet/model.pt",
                 "data/models/parallel_wavenet/model.pt", "data/models/wavegrad/model.pt",
                 "data/models/wavegrad/schedules"]:
        assert (repo / path).exists(), f"{path} was not built"
    for name in ["fastspeech2", "tacotron2", "dctts_text2mel", "dctts_ssrn", "wavenet",
                 "parallel_wavenet", "wavegrad"]:
        metrics = json.loads((repo / "metrics" / "train" / f"{name}.json").read_text())
        assert metrics["step"] == TINY_STEPS, name
    assert out_of_date(repo, env) == {}, "dvc repro left stages out of date"
    assert (repo / "mlflow.db").exists()


@pytest.mark.slow
def test_report_ranks_every_pair(repo):
    repo, _ = repo
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    # WaveNet pairs ran on 0 sentences (evaluate.wavenet_utterances: 0): shown, not ranked
    ranked = [f"{a}-{v}" for a in models.ACOUSTIC_MODELS for v in models.VOCODERS
              if v != "wavenet"]
    assert sorted(p["rank"] for p in metrics["pairs"].values()) == list(range(1, len(ranked) + 1))
    assert set(metrics["pairs"]) == set(ranked)
    assert {f"{a}-wavenet" for a in models.ACOUSTIC_MODELS} <= set(metrics["unranked"])
    assert "wer" in metrics["ground_truth"] and "mos" in metrics["ground_truth"]
    page = (repo / "reports" / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Best-sounding pair" in page
    assert page.index("The floor: recordings") < page.index("Best-sounding pair")
    # the learning curves reached the plots TSVs: validation loss, predicted MOS and CER
    header = (repo / "plots" / "train" / "wavegrad.tsv").read_text().splitlines()[0]
    assert {"val_loss", "val_mos", "val_cer"} <= set(header.split("\t"))
    split_report = json.loads((repo / "data" / "split" / "report.json").read_text())
    assert split_report["transcript_check"]["checked"] >= split_report["kept"]


@pytest.mark.slow
def test_synth_speaks_with_the_best_pair(repo):
    repo, env = repo
    text = "The quick brown fox jumps over the lazy dog."
    done = run([sys.executable, "-m", "stages.synth", "--text", text, "--out", "synth.wav"],
               repo, env)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    wav, rate = soundfile.read(repo / "synth.wav")
    assert np.abs(wav).max() > 0.01, "synthesized audio is silent"
    assert 0.5 < len(wav) / rate < 30, f"implausible length {len(wav) / rate:.1f} s"
    assert (repo / "synth.png").stat().st_size > 1000
    # it listened to its own output (3 training steps cannot speak words: the figures are
    # stated, not asserted)
    assert 0 <= info["wer"] and 1 <= info["predicted_mos"] <= 5
    print(f"tiny run, best pair {info['acoustic']} + {info['vocoder']}: WER {info['wer']:.2f}, "
          f"predicted MOS {info['predicted_mos']:.2f}, heard {info['heard']!r}")


@pytest.mark.slow
def test_params_rerun_exactly_the_dependent_stages(repo):
    repo, env = repo
    params_path = repo / "params.yaml"
    original = params_path.read_text()
    trainers = {"train_fastspeech2", "train_tacotron2", "train_dctts_text2mel",
                "train_dctts_ssrn", "train_wavenet", "distill_parallel_wavenet",
                "train_wavegrad"}
    try:
        params = yaml.safe_load(original)
        set_dotted(params, "model.lr", 1e-4)
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        stale = set(out_of_date(repo, env))
        assert trainers <= stale
        assert not stale & {"download", "split", "features", "align"}

        params = yaml.safe_load(original)
        set_dotted(params, "fastspeech2.dropout", 0.3)
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        stale = set(out_of_date(repo, env))
        assert "train_fastspeech2" in stale
        assert not stale & (trainers - {"train_fastspeech2"})
    finally:
        params_path.write_text(original)


@pytest.mark.slow
def test_fine_tuning_reruns_when_the_base_models_bytes_change(repo):
    """`init_from` through DVC: the base_models manifest makes new bytes at the same path
    re-run fine-tuning; unchanged bytes re-run nothing."""
    repo, env = repo
    params_path = repo / "params.yaml"
    original = params_path.read_text()
    base = repo / "voices" / "A" / "fastspeech2" / "model.pt"
    base.parent.mkdir(parents=True)
    shutil.copy2(repo / "data" / "models" / "fastspeech2" / "model.pt", base)
    try:
        params = yaml.safe_load(original)
        set_dotted(params, "fastspeech2.init_from", "voices/A")
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        run(["dvc", "repro", "train_fastspeech2"], repo, env)
        tuned = repo / "data" / "models" / "fastspeech2" / "model.pt"
        import torch

        record = torch.load(tuned, weights_only=False)["init_from"]
        assert record["path"] == "voices/A/fastspeech2/model.pt"
        again = run(["dvc", "repro", "train_fastspeech2"], repo, env)
        assert "Running stage 'train_fastspeech2'" not in again.stdout + again.stderr
        shutil.copy2(tuned, base)  # new bytes, same path and architecture
        again = run(["dvc", "repro", "train_fastspeech2"], repo, env)
        assert "Running stage 'train_fastspeech2'" in again.stdout + again.stderr
    finally:
        params_path.write_text(original)
def test_symbol_table_edit_stales_every_text_model(repo):
    repo, env = repo
    text = repo / "tts" / "text.py"
    original = text.read_text()
    try:
        text.write_text(original + "\n# an edit of the front-end\n")
        stale = set(json.loads(run(["dvc", "status", "--json"], repo, env).stdout))
        assert {"train_fastspeech2", "train_tacotron2", "train_dctts_text2mel"} <= stale
    finally:
        text.write_text(original)
