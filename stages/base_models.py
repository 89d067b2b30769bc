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

import json
from pathlib import Path

import models
from stages import arguments, known_errors
from tts.config import load_params
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
    args = arguments(__doc__, "out")
    with known_errors("base_models", FineTuneError):
        records = run(load_params(args.params), args.out)
    for name, record in records.items():
        if record["init_from"]:
            print(f"{name}: {record['init_from']} (sha256 {record['sha256'][:12]})")


if __name__ == "__main__":
    main()
