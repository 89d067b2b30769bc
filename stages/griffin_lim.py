"""Stage `griffin_lim`: the Griffin-Lim "vocoder" folder, so it sits beside the trained ones.

    python -m stages.griffin_lim --out FILE

Writes `griffin_lim:` params and the feature contract (`audio:`) to --out (a JSON file,
`data/models/griffin_lim/config.json` in the DAG); nothing is trained. Pairs that use
Griffin-Lim depend on that folder, so changing its settings re-evaluates exactly them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from models.griffin_lim import SETTINGS_KEY, GriffinLimConfig, settings
from stages import arguments, known_errors
from tts.config import AudioConfig, load_params


def run(cfg: GriffinLimConfig, audio: AudioConfig, out: Path) -> dict:
    record = settings(cfg, audio)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return record


def main() -> None:
    args = arguments(__doc__, "out")
    with known_errors("griffin_lim"):
        params = load_params(args.params)
        record = run(params.section("griffin_lim"), params.audio, args.out)
    print(json.dumps(record[SETTINGS_KEY]))


if __name__ == "__main__":
    main()
