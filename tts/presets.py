"""Turn a preset params file (e.g. presets/fastspeech2-paper.yaml) into `dvc exp run -S` flags.

    dvc exp run $(python -m tts.presets presets/fastspeech2-paper.yaml)

A preset is a fragment of params.yaml; it is validated against the full params file
before any flag is printed, so a stale preset fails here, naming the key.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
from pathlib import Path

import yaml

from tts.config import ConfigError, parse_params


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def merge(base: dict, preset: dict) -> dict:
    merged = copy.deepcopy(base)
    for dotted, value in flatten(preset).items():
        node = merged
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return merged


def apply(preset_path: Path, params_path: Path = Path("params.yaml")):
    """The params a preset makes: `params_path` with the preset merged in, validated."""
    if not Path(preset_path).is_file():
        raise ConfigError(f"preset {preset_path} not found; give a file under presets/ "
                          f"(e.g. presets/ljspeech-gpu.yaml)")
    try:
        preset = yaml.safe_load(Path(preset_path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset {preset_path} is not valid YAML: {exc}") from exc
    if not isinstance(preset, dict):
        raise ConfigError(f"preset {preset_path} must be a mapping of params sections")
    return parse_params(merge(yaml.safe_load(Path(params_path).read_text()), preset))


def flags(preset_path: Path, params_path: Path = Path("params.yaml")) -> list[str]:
    apply(preset_path, params_path)  # validates
    preset = yaml.safe_load(preset_path.read_text()) or {}
    # -S values are parsed as YAML, of which JSON is a subset
    return [f"-S {shlex.quote(f'{k}={v if isinstance(v, str) else json.dumps(v)}')}"
            for k, v in flatten(preset).items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", type=Path, nargs="+")
    args = parser.parse_args()
    print(" ".join(f for p in args.presets for f in flags(p)))


if __name__ == "__main__":
    main()
