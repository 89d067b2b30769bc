"""Typed params: the shipped file loads; misspelled keys, wrong types, impossible values fail."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import models
from tts.config import ConfigError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(raw: dict, dotted: str, value) -> dict:
    tree = copy.deepcopy(raw)
    node = tree
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return tree


def test_shipped_params_load_and_every_network_builds():
    params = load_params(ROOT / "params.yaml")
    for name in models.REGISTRY:
        train, cfg = params.network(name)
        assert train.steps >= 1
        if hasattr(cfg, "n_mels"):
            assert cfg.n_mels == params.audio.n_mels  # contract field filled from audio:


@pytest.mark.parametrize("dotted, nearest", [
    ("model.learning_rate", "lr"), ("audio.hop_lenght", "hop_length"),
    ("fastspeech2.hiden", "hidden"), ("data.copus", "corpus"),
])
def test_misspelled_key_names_key_and_nearest(raw, dotted, nearest):
    with pytest.raises(ConfigError) as err:
        parse_params(with_value(raw, dotted, 1))
    assert f"`{dotted}`" in str(err.value) and f"`{nearest}`" in str(err.value)


def test_unknown_section_is_refused(raw):
    with pytest.raises(ConfigError, match="unknown section `fastspeach2`.*`fastspeech2`"):
        parse_params({**raw, "fastspeach2": {}})


@pytest.mark.parametrize("dotted, value, message", [
    ("audio.hop_length", 2048, "audio.hop_length"),
    ("audio.fmax", 12000.0, "audio.fmax"),
    ("model.batch_size", "sixteen", "model.batch_size"),
    ("model.precision", "fp16", "model.precision"),
    ("model.lr", True, "model.lr"),
    ("split.val_count", 0, "split.val_count"),
    ("data.builtin.engine", "festival", "data.builtin.engine"),
    ("data.builtin.length_jitter", 1.5, "data.builtin.length_jitter"),
    ("data.builtin.noise_scale", -0.1, "data.builtin.noise_scale"),
])
def test_wrong_type_or_impossible_value(raw, dotted, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_params(with_value(raw, dotted, value))


def test_network_inherits_model_defaults_and_overrides(raw):
    tree = with_value(with_value(raw, "model.lr", 5e-4), "fastspeech2.lr", 2e-4)
    params = parse_params(tree)
    assert params.network("fastspeech2")[0].lr == 2e-4
    assert params.network("tacotron2")[0].lr == 5e-4


def test_contract_fields_cannot_be_set_per_network(raw):
    with pytest.raises(ConfigError, match=r"`fastspeech2.n_mels` comes from audio"):
        parse_params(with_value(raw, "fastspeech2.n_mels", 40))
