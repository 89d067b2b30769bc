"""The registry (models/__init__.py) is the one source of the names users type: dvc.yaml
must agree with it, name for name, stage for stage, file for file. And the stages' shared
command line (stages/__init__.py) turns known errors into a one-line exit message."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

import models
from stages import arguments, known_errors
from tts.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]
VARS = {k: v for entry in DVC.get("vars", []) for k, v in entry.items()}
MODEL_ROOT = "data/models"


def outs(stage: dict) -> set[str]:
    return {next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])}


def flags(stage: dict) -> dict[str, str]:
    """`--flag value` pairs of a stage's command."""
    words = shlex.split(stage["cmd"])
    return {w[2:]: v for w, v in zip(words, words[1:]) if w.startswith("--")}


def test_dvc_vars_list_the_registry_names_in_order():
    assert tuple(VARS["acoustic_models"]) == models.ACOUSTIC_MODELS
    assert tuple(VARS["vocoders"]) == models.VOCODERS
    assert set(models.MODELS) == set(models.ACOUSTIC_MODELS) | set(models.VOCODERS)


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_every_network_has_its_training_stage(name):
    spec = models.spec(name)
    assert spec.stage_name in STAGES, f"dvc.yaml has no stage {spec.stage_name} for {name}"
    stage = STAGES[spec.stage_name]
    assert shlex.split(stage["cmd"])[:4] == ["python", "-m", "stages.train", name]
    model_file = f"{MODEL_ROOT}/{models.MODEL_FILES[name]}"
    assert model_file in outs(stage) and flags(stage)["out"] == model_file
    assert spec.section in stage["params"]
    assert f"models/{spec.module.split('.')[-1]}.py" in stage["deps"]
    assert ("align" in flags(stage)) == spec.needs_alignment
    if spec.teacher:
        teacher = f"{MODEL_ROOT}/{models.MODEL_FILES[spec.teacher]}"
        assert flags(stage)["teacher"] == teacher and teacher in stage["deps"]
    else:
        assert "teacher" not in flags(stage)
    # the report reads every network's training curve
    assert f"plots/train/{name}.tsv" in STAGES["evaluate"]["deps"]


def test_every_training_stage_trains_a_registry_network():
    trained = {name: flags(stage) for name, stage in STAGES.items()
               if "stages.train" in stage["cmd"]}
    assert set(trained) == {s.stage_name for s in models.REGISTRY.values()}


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_part_is_an_output_of_its_stage(name):
    entry = models.named(name)
    for part in entry.parts:
        assert part.stage in STAGES, f"{name}: no dvc.yaml stage {part.stage}"
        assert f"{MODEL_ROOT}/{name}/{part.file}" in outs(STAGES[part.stage]), \
            f"stage {part.stage} does not write {MODEL_ROOT}/{name}/{part.file}"
        if part.network:
            assert models.MODEL_FILES[part.network] == f"{name}/{part.file}"
    for hook in (entry.assembler(), entry.settings_builder()):
        assert hook is None or callable(hook)
    assert entry.schedules is None or entry.schedules in [p.file for p in entry.parts]


def test_every_finished_model_output_belongs_to_the_registry():
    parts = {f"{MODEL_ROOT}/{m.name}/{p.file}" for m in models.MODELS.values() for p in m.parts}
    written = {o for stage in STAGES.values() for o in outs(stage)
               if o.startswith(f"{MODEL_ROOT}/")}
    assert written == parts
    networks = {n for m in models.MODELS.values() for n in m.networks}
    assert networks == set(models.REGISTRY), "a network no acoustic model or vocoder uses"


def test_traits_are_where_they_can_apply():
    for entry in models.MODELS.values():
        if entry.kind == "acoustic":
            assert not (entry.sampling or entry.slow or entry.schedules)
        else:
            assert not entry.attention


# ------------------------------------------------------------------ stage command line


def test_stage_arguments_and_known_errors():
    args = arguments("doc", "split out", optional="curves ground_truth", words="vocoder",
                     argv=["--split", "s", "--out", "o", "--vocoder", "wavegrad",
                           "--ground-truth", "g"])
    assert (args.split, args.out, args.curves, args.ground_truth) == \
        (Path("s"), Path("o"), None, Path("g"))
    assert args.vocoder == "wavegrad" and args.params == Path("params.yaml")
    with pytest.raises(SystemExit):  # a required path missing: argparse's own exit
        arguments("doc", "split out", argv=["--split", "s"])
    with pytest.raises(SystemExit, match=r"^evaluate: params: `x` is wrong$"):
        with known_errors("evaluate"):
            raise ConfigError("params: `x` is wrong")
    with pytest.raises(SystemExit, match=r"^features: no wav$"):
        with known_errors("features", FileNotFoundError):
            raise FileNotFoundError("no wav")
    with pytest.raises(KeyError):  # not a known error: the traceback stays
        with known_errors("features", FileNotFoundError):
            raise KeyError("bug")
