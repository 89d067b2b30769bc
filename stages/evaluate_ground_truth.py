"""Stage `evaluate_ground_truth`: the recordings measured like a system.

    python -m stages.evaluate_ground_truth --split DIR --features DIR --out DIR

The first `evaluate.utterances` test recordings through the same metrics as the systems:
the recognizer's WER/CER on real audio is the floor the pairs compare with, and MCD 0,
PESQ 4.6 / STOI 1 check the metric code. Writes `summary.json`, `utterances.csv` and the
report's reference wavs to --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts import evaluation as E
from tts.config import ConfigError, load_params
from tts.corpus import CorpusError, staged_dir
from tts.inference import resolve_device


def _scoring_device(params) -> str:
    return str(resolve_device(params.section("synth").device))


def run(params, split: Path, features: Path, out: Path) -> dict:
    cfg = params.section("evaluate")
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, _scoring_device(params))
    with staged_dir(out) as tmp:
        summary = E.evaluate_ground_truth(utterances, tmp, params.audio, cfg, scorers)
        E.write_summary(tmp, [summary])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, required=True, help="folder of split lists")
    parser.add_argument("--features", type=Path, required=True, help="feature store")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        summary = run(load_params(args.params), args.split, args.features, args.out)
    except (ConfigError, CorpusError, ValueError) as exc:
        raise SystemExit(f"evaluate_ground_truth: {exc}") from exc
    print(json.dumps({"n": summary["n"], **summary["metrics"]}))


if __name__ == "__main__":
    main()
