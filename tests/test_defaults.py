"""One source of defaults: a value params.yaml sets is never repeated as a different
default in code, so a section left out of a user's params file, a preset, or a test that
builds a config from code gets what params.yaml documents."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import models
from tts import config
from tts.text import SYMBOLS

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a):
        a = config.to_dict(a)
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and same(a[k], v) for k, v in b.items())
    return a == b


def drift(cls: type, values: dict, key: str) -> list[str]:
    """`key.field: code default X != params.yaml Y` for each disagreeing field."""
    found = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if name not in fields:
            continue
        code = default(fields[name])
        if code is dataclasses.MISSING:
            continue
        if dataclasses.is_dataclass(code) and isinstance(value, dict):
            found += drift(type(code), value, f"{key}.{name}")
        elif not same(code, value):
            found.append(f"{key}.{name}: code default {code!r} != params.yaml {value!r}")
    return found


def sections() -> list[tuple[str, type, dict]]:
    out = [(name, cls, RAW.get(name) or {}) for name, cls in config._CORE.items()]
    out += [(name, config._import(path), RAW.get(name) or {})
            for name, path in config.EXTRA_SECTIONS.items()]
    for name in models.REGISTRY:
        spec = models.spec(name)
        section = config.get_path(RAW, spec.section) or {}
        out.append((spec.section, spec.config_cls, section))
    return out


@pytest.mark.parametrize("key,cls,values", sections(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_code_defaults_match_params_yaml(key, cls, values):
    assert not drift(cls, values, key)


def test_contract_field_defaults_match_the_audio_section():
    contract = {**RAW["audio"], "n_symbols": len(SYMBOLS)}
    found = []
    for name in models.REGISTRY:
        for f in dataclasses.fields(models.spec(name).config_cls):
            if f.name in config.CONTRACT_FIELDS and default(f) is not dataclasses.MISSING \
                    and not same(default(f), contract[f.name]):
                found.append(f"{name}.{f.name}: {default(f)!r} != {contract[f.name]!r}")
    assert not found


def test_drift_is_detected():
    @dataclasses.dataclass
    class Section:
        steps: int = 300

    assert drift(Section, {"steps": 500}, "model") == [
        "model.steps: code default 300 != params.yaml 500"]


def test_dctts_pair_disagreement_is_refused_at_load_naming_both_keys():
    import copy

    for field, value in (("reduction", 2), ("mel_max", 3.0)):
        raw = copy.deepcopy(RAW)
        raw["dctts"]["ssrn"][field] = value
        with pytest.raises(config.ConfigError) as err:
            config.parse_params(raw)
        assert f"dctts.text2mel.{field}" in str(err.value)
        assert f"dctts.ssrn.{field}" in str(err.value)


def test_yaml_syntax_error_names_its_line(tmp_path):
    lines = (ROOT / "params.yaml").read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if line.startswith("  batch_size:"))
    lines[broken] = "  batch_size: [8"  # an unclosed list
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(config.ConfigError, match=rf"params.yaml:{broken + 2}:.*"
                                                 rf"flow sequence \(line {broken + 1}\)"):
        config.load_params(path)  # noticed on the next line; the list opened on this one
    lines[broken] = "  batch_size: 8"
    lines[broken + 1] = "    steps: 500"  # indented under a scalar
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(config.ConfigError, match=rf"params.yaml:{broken + 2}:"):
        config.load_params(path)
