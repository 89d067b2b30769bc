"""Stage `evaluate_ground_truth`: the recordings measured like a system.

    python -m stages.evaluate_ground_truth --split DIR --features DIR --out DIR

The first `evaluate.utterances` test recordings through the same metrics as the systems:
the recognizer's WER/CER on real audio is the floor the pairs compare with, and MCD 0,
PESQ 4.6 / STOI 1 check the metric code. Writes `summary.json`, `utterances.csv` and the
report's reference wavs to --out.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import evaluation as E
from tts.config import load_params
from tts.corpus import CorpusError, staged_dir


def run(params, split: Path, features: Path, out: Path) -> dict:
    cfg = params.section("evaluate")
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, E.scoring_device(params))
    with staged_dir(out) as tmp:
        summary = E.evaluate_ground_truth(utterances, tmp, params.audio, cfg, scorers=scorers)
        E.write_summary(tmp, [summary])
    return summary


def main() -> None:
    args = arguments(__doc__, "split features out")
    with known_errors("evaluate_ground_truth", CorpusError, ValueError):
        summary = run(load_params(args.params), args.split, args.features, args.out)
    print(json.dumps({"n": summary["n"], **summary["metrics"]}))


if __name__ == "__main__":
    main()
