"""Every shipped preset is a valid params fragment and turns into `-S` flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts.config import ConfigError
from tts.presets import flags

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_validates_and_gives_flags(preset):
    out = flags(preset, ROOT / "params.yaml")
    assert out and all(f.startswith("-S ") for f in out)


def test_stale_preset_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fastspeech2:\n  hiden: 256\n")
    with pytest.raises(ConfigError, match="fastspeech2.hiden"):
        flags(bad, ROOT / "params.yaml")


def test_gpu_recipe_is_ljspeech_bf16_paper_size_all_test_sentences():
    import yaml

    from tts.config import parse_params
    from tts.presets import flatten, merge

    recipe = yaml.safe_load((ROOT / "presets" / "ljspeech-gpu.yaml").read_text())
    params = parse_params(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), recipe))
    assert params.data.corpus == "ljspeech" and params.model.precision == "bf16"
    assert params.section("evaluate").utterances == 0  # every test sentence
    # the network sections are the per-network presets, key for key
    per_network = {}
    for name in ("fastspeech2-paper", "tacotron2-paper", "dctts-paper", "wavenet-paper",
                 "parallel-wavenet-paper", "wavegrad-base"):
        per_network.update(flatten(yaml.safe_load((ROOT / "presets" / f"{name}.yaml")
                                                  .read_text())))
    networks = {k: v for k, v in flatten(recipe).items() if k.split(".")[0] in
                {key.split(".")[0] for key in per_network}}
    architecture = {k for k in per_network if k.rsplit(".", 1)[1] not in
                    ("log_every", "val_every", "checkpoint_every", "precision")}
    assert {k: networks.get(k) for k in architecture} == {k: per_network[k] for k in architecture}


@pytest.mark.parametrize("text,expected", [(None, "not found"), ("a: [1,\n", "not valid YAML"),
                                           ("- 1\n", "must be a mapping")])
def test_unreadable_preset_is_refused_by_name(tmp_path, text, expected):
    from tts.presets import apply

    path = tmp_path / "recipe.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        apply(path, ROOT / "params.yaml")
    assert str(path) in str(info.value)
