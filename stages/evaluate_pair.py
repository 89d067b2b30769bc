"""Stage `evaluate_pair@<acoustic>-<vocoder>`: text to speech with one pair on the test list.

    python -m stages.evaluate_pair --acoustic NAME --vocoder NAME --models DIR --split DIR
        --features DIR --out DIR

Synthesizes the first `evaluate.utterances` test sentences (WaveNet: the first
`evaluate.wavenet_utterances`) from their phonemes with the trained models in --models
(inference settings from `synth:`), and writes wavs, figures, `utterances.csv` and
`summary.json` to --out (replaced only on success). See `tts.evaluation` for the metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts import evaluation as E
from tts.config import ConfigError, load_params
from tts.corpus import CorpusError, staged_dir
from tts.inference import SynthesisError, load_synthesizer, resolve_device


def _scoring_device(params) -> str:
    return str(resolve_device(params.section("synth").device))


def run(params, acoustic: str, vocoder: str, models: Path, split: Path, features: Path,
        out: Path) -> dict:
    cfg = params.section("evaluate")
    synth = load_synthesizer(acoustic, vocoder, params.audio, params.section("text"),
                             params.section("synth"), models)
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, _scoring_device(params))
    with staged_dir(out) as tmp:
        summary = E.evaluate_pair(synth, utterances, tmp, params.audio, cfg, scorers)
        E.write_summary(tmp, [summary])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acoustic", required=True, help="acoustic model name")
    parser.add_argument("--vocoder", required=True, help="vocoder name")
    parser.add_argument("--models", type=Path, required=True, help="folder of finished models")
    parser.add_argument("--split", type=Path, required=True, help="folder of split lists")
    parser.add_argument("--features", type=Path, required=True, help="feature store")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        summary = run(load_params(args.params), args.acoustic, args.vocoder, args.models,
                      args.split, args.features, args.out)
    except (ConfigError, SynthesisError, CorpusError, ValueError) as exc:
        raise SystemExit(f"evaluate_pair: {exc}") from exc
    print(json.dumps({"pair": summary["key"], "n": summary["n"], **summary["metrics"]}))


if __name__ == "__main__":
    main()
