"""Stage `base_models`: which finished model each network fine-tunes from, by content.

    python -m stages.base_models --out DIR

Writes DIR/<network>.json for every registry network: `{network, key, init_from, sha256}`
(`init_from` and `sha256` null for a network trained from scratch). The stage is
`always_changed` in dvc.yaml: `init_from` may point anywhere, even outside the repository,
so DVC cannot list it as a dependency itself; this stage re-hashes it on every `dvc repro`
and DVC re-runs a training stage only when its manifest's bytes changed (another base
model, or new bytes at the same path).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import models
from tts.config import ConfigError, load_params
from tts.corpus import staged_dir
from tts.finetune import FineTuneError, manifest


def run(params, out: Path) -> dict[str, dict]:
    records = {name: manifest(params.raw, params.network(name)[0], name)
               for name in models.REGISTRY}
    with staged_dir(Path(out)) as tmp:
        for name, record in records.items():
            (tmp / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of manifests")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        records = run(load_params(args.params), args.out)
    except (ConfigError, FineTuneError) as exc:
        raise SystemExit(f"base_models: {exc}") from exc
    for name, record in records.items():
        if record["init_from"]:
            print(f"{name}: {record['init_from']} (sha256 {record['sha256'][:12]})")


if __name__ == "__main__":
    main()
