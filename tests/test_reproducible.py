"""Same params, same data, same model file: training through the stage entry point.

Every run here is a separate `python -m stages.train` process (what `dvc repro` runs), on
real features of a tiny eSpeak corpus: two runs started at the same moment in two
checkouts (one with other stages' leftovers in `data/`, different PYTHONHASHSEEDs) give
byte-identical model files, and a run killed with SIGKILL and re-run ends byte-identical
to an uninterrupted one, also when the kill left a truncated newest checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.tiny_models import TINY_NETWORKS
from tts import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
NETWORK = "wavegrad"  # draws noise every step: resuming must restore the RNG streams
STEPS = 8
TINY = {"split": {"val_count": 1, "test_count": 1},
        "model": {"steps": STEPS, "batch_size": 2, "warmup_steps": 1, "log_every": 1,
                  "val_every": 4, "checkpoint_every": 2, "val_utterances": 1,
                  "segment_frames": 8, "cpu_threads": 1}}
RUN_TIMEOUT_S = 300


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(tiny_builtin_corpus, tmp_path_factory) -> tuple[Path, dict]:
    """(data folder with split + features, params dict) built once for the module."""
    from stages import features, split
    from tts.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        raw[section] = {**raw[section], **values}
    raw[NETWORK] = {k: v for k, v in raw[NETWORK].items() if k not in TINY["model"]}
    raw[NETWORK].update(TINY_NETWORKS[NETWORK])
    params = parse_params(raw)
    root = tmp_path_factory.mktemp("repro_data")
    split.run(params.split, params.audio.sample_rate, params.section("text"),
              corpus_dir=tiny_builtin_corpus, out=root / "split")
    features.run(params.audio, params.features.__class__(workers=1),
                 corpus_dir=tiny_builtin_corpus, split_dir=root / "split",
                 out=root / "features")
    return root, raw


def checkout(base: Path, data: tuple[Path, dict]) -> Path:
    """A working copy: params.yaml and data/{split,features} (code comes from ROOT)."""
    root, raw = data
    base.mkdir(parents=True)
    (base / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for name in ("split", "features"):
        shutil.copytree(root / name, base / "data" / name)
    return base


def command() -> list[str]:
    return [sys.executable, "-m", "stages.train", NETWORK, "--split", "data/split",
            "--features", "data/features", "--checkpoints", f"data/checkpoints/{NETWORK}",
            "--out", f"data/models/{NETWORK}/model.pt", "--metrics", "metrics.json",
            "--plots", "plots.tsv"]


def start(repo: Path, hash_seed: str = "0") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed,
           "TTS_TRACKING": "off", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command(), cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, out[-4000:]
    return out


def model_file(repo: Path) -> Path:
    return repo / "data" / "models" / NETWORK / "model.pt"


def add_leftovers(repo: Path) -> None:
    """What a user's data/ holds after other runs: other stages' checkpoints and models,
    a checkpoint of another config of this network, a temp file of a killed write."""
    other = repo / "data" / "checkpoints" / "tacotron2"
    other.mkdir(parents=True)
    torch.save({"config_hash": "tacotron2-run", "step": 100}, other / "step-00000100.pt")
    (repo / "data" / "models" / "fastspeech2").mkdir(parents=True)
    (repo / "data" / "models" / "fastspeech2" / "model.pt").write_bytes(os.urandom(4096))
    own = repo / "data" / "checkpoints" / NETWORK
    own.mkdir(parents=True)
    torch.save({"config_hash": "an-older-config", "step": 6}, own / "step-00000006.pt")
    (own / ".step-00000008.pt.abc123.tmp").write_bytes(os.urandom(100))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data) -> Path:
    """Two runs started together: one clean, one with leftovers and another hash seed."""
    base = tmp_path_factory.mktemp("repro")
    clean = checkout(base / "clean", data)
    messy = checkout(base / "a-checkout-with-a-longer-path", data)
    add_leftovers(messy)
    runs = [start(clean, "1"), start(messy, "2")]
    outputs = [finish(p) for p in runs]
    assert "starting fresh" in outputs[1]  # the other config's checkpoint was set aside
    assert sha256(model_file(clean)) == sha256(model_file(messy)), \
        "two simultaneous runs of the same params and data wrote different model files"
    return clean


def test_simultaneous_runs_with_leftovers_write_identical_models(reference):
    payload = torch.load(model_file(reference), weights_only=False)
    assert payload["step"] == STEPS
    assert "steps_per_second" not in payload["metrics"]  # timing stays out of the file


def kill_after_checkpoints(proc: subprocess.Popen, checkpoints: Path, count: int) -> None:
    """SIGKILL `proc` as soon as `count` resume checkpoints exist (mid-run, mid-step)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while len(ckpt.list_checkpoints(checkpoints)) < count:
        assert proc.poll() is None, "run ended before it could be killed"
        assert time.monotonic() < deadline, f"no checkpoints appeared in {checkpoints}"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=RUN_TIMEOUT_S)


def test_killed_run_resumes_to_the_same_bytes(tmp_path, data, reference):
    repo = checkout(tmp_path / "repo", data)
    kill_after_checkpoints(start(repo), repo / "data" / "checkpoints" / NETWORK, 1)
    out = finish(start(repo, "3"))
    assert "resumed from" in out
    assert sha256(model_file(repo)) == sha256(model_file(reference))


def test_truncated_newest_checkpoint_is_set_aside(tmp_path, data, reference):
    repo = checkout(tmp_path / "repo", data)
    checkpoints = repo / "data" / "checkpoints" / NETWORK
    kill_after_checkpoints(start(repo), checkpoints, 2)
    *_, previous, newest = ckpt.list_checkpoints(checkpoints)
    newest.write_bytes(newest.read_bytes()[:1000])  # a write cut short (disk full, crash)
    out = finish(start(repo))
    assert f"{newest.name} is unreadable" in out
    assert previous.name in out.split("resumed from")[1].splitlines()[0]
    assert (checkpoints / "corrupt" / newest.name).exists()
    assert sha256(model_file(repo)) == sha256(model_file(reference))


def test_run_killed_after_its_last_checkpoint_writes_the_same_bytes(tmp_path, data, reference):
    """Killed between the final checkpoint and the model file: the re-run resumes at the
    last step and only exports, and the file and learning curve are the uninterrupted
    run's (the metrics stored in the file once gained `train_val_*` copies here)."""
    repo = checkout(tmp_path / "repo", data)
    shutil.copytree(reference / "data" / "checkpoints" / NETWORK,
                    repo / "data" / "checkpoints" / NETWORK)
    out = finish(start(repo))
    assert f"at step {STEPS}" in out
    assert sha256(model_file(repo)) == sha256(model_file(reference))
    assert (repo / "plots.tsv").read_text() == (reference / "plots.tsv").read_text()
