"""Stage `evaluate_pair@<acoustic>-<vocoder>`: text to speech with one pair on the test list.

    python -m stages.evaluate_pair --acoustic NAME --vocoder NAME --models DIR --split DIR
        --features DIR --out DIR

Synthesizes the first `evaluate.utterances` test sentences (WaveNet: the first
`evaluate.wavenet_utterances`) from their phonemes with the trained models in --models
(inference settings from `synth:`), and writes wavs, figures, `utterances.csv` and
`summary.json` to --out (replaced only on success). See `tts.evaluation` for the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import evaluation as E
from tts.config import load_params
from tts.corpus import CorpusError, staged_dir
from tts.inference import SynthesisError, load_synthesizer


def run(params, acoustic: str, vocoder: str, *, models: Path, split: Path, features: Path,
        out: Path) -> dict:
    cfg = params.section("evaluate")
    synth = load_synthesizer(acoustic, vocoder, params.audio, params.section("text"),
                             cfg=params.section("synth"), root=models)
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, E.scoring_device(params))
    with staged_dir(out) as tmp:
        summary = E.evaluate_pair(synth, utterances, tmp, params.audio, cfg, scorers=scorers)
        E.write_summary(tmp, [summary])
    return summary


def main() -> None:
    args = arguments(__doc__, "models split features out", words="acoustic vocoder")
    with known_errors("evaluate_pair", SynthesisError, CorpusError, ValueError):
        summary = run(load_params(args.params), args.acoustic, args.vocoder,
                      models=args.models, split=args.split, features=args.features, out=args.out)
    print(json.dumps({"pair": summary["key"], "n": summary["n"], **summary["metrics"]}))


if __name__ == "__main__":
    main()
