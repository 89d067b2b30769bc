"""tts.parallel_repro: independent stages run side by side, DVC's lock file and cache stay
consistent, a failure stops the run with the stage's log."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tts import parallel_repro

REPO = Path(__file__).resolve().parents[1]
# a and b are independent; c needs both. Each stage records when its command ran.
DVC_YAML = """
stages:
  a:
    cmd: python -c "import time,json; t=time.time(); time.sleep(3); json.dump([t, time.time()], open('a.json','w'))"
    outs: [a.json]
  b:
    cmd: python -c "import time,json; t=time.time(); time.sleep(3); json.dump([t, time.time()], open('b.json','w'))"
    outs: [b.json]
  c:
    cmd: python -c "open('c.txt','w').write(open('a.json').read() + open('b.json').read())"
    deps: [a.json, b.json]
    outs: [c.txt]
"""


def test_downstream_counts():
    deps = {"a": set(), "b": set(), "c": {"a", "b"}, "d": {"c"}, "e": {"a"}}
    assert parallel_repro.downstream_counts(deps) == {"a": 3, "b": 2, "c": 1, "d": 0, "e": 0}


def test_critical_paths_put_the_longest_training_chain_first():
    deps = {"align": set(), "wavenet": set(), "fs2": {"align"}, "student": {"wavenet"},
            "eval_fs2": {"fs2"}, "eval_student": {"student"}}
    chain = parallel_repro.critical_paths(deps, {"fs2": 2500, "wavenet": 600, "student": 400})
    assert chain["align"] == 2500 and chain["wavenet"] == 1000 and chain["eval_fs2"] == 0
    # the shipped params: FastSpeech 2 (the most steps) heads the longest chain
    steps = parallel_repro.training_steps(REPO)
    assert steps["train_fastspeech2"] == max(steps.values())
    assert len(steps) == 7


@pytest.fixture()
def dvc_repo(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    return tmp_path, env


def _driver(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts.parallel_repro", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_independent_stages_overlap_and_lock_is_complete(dvc_repo):
    root, env = dvc_repo
    result = _driver(root, env, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    (a0, a1), (b0, b1) = (json.loads((root / f"{s}.json").read_text()) for s in "ab")
    assert a0 < b1 and b0 < a1  # ran at the same time
    status = subprocess.run(["dvc", "status", "--json"], cwd=root, env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {}  # dvc.lock records every stage: nothing to do
    again = _driver(root, env, "--jobs", "2")
    assert again.returncode == 0 and "all 3 stages up to date" in again.stdout


def test_failed_stage_stops_with_its_log(dvc_repo):
    root, env = dvc_repo
    yaml = (root / "dvc.yaml").read_text().replace("time.sleep(3); json.dump",
                                                   "time.sleep(0); json.dumpz", 1)
    (root / "dvc.yaml").write_text(yaml)
    result = _driver(root, env, "--jobs", "2")
    assert result.returncode == 1
    assert "FAILED a" in result.stdout and "dumpz" in result.stderr
    assert not (root / "c.txt").exists()
