"""Stage `evaluate_vocoder@<vocoder>`: copy synthesis, the vocoder on the recordings' mels.

    python -m stages.evaluate_vocoder --vocoder NAME --models DIR --split DIR --features DIR
        --out DIR

Vocodes the ground-truth log-mels of the first `evaluate.utterances` test utterances
(WaveNet: the first `evaluate.wavenet_utterances`) and compares with the recordings; a
vocoder with searched noise schedules (WaveGrad) is evaluated once per schedule. Writes
wavs, figures, `utterances.csv` and `summary.json` to --out (replaced only on success).
"""

from __future__ import annotations

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import evaluation as E
from tts import inference
from tts.config import load_params
from tts.corpus import CorpusError, staged_dir


def run(params, vocoder: str, *, models: Path, split: Path, features: Path,
        out: Path) -> list[dict]:
    cfg, synth_cfg = params.section("evaluate"), params.section("synth")
    device = inference.resolve_device(synth_cfg.device)
    vocoders = inference.load_variants(vocoder, models, synth_cfg, device)  # every schedule
    for v in vocoders:
        inference.check_contract(params.audio, (v.name, v.cfg))
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, str(device))
    with staged_dir(out) as tmp:
        summaries = [E.evaluate_copy(v, utterances, tmp, params.audio, cfg, seed=synth_cfg.seed,
                                     device=device, scorers=scorers) for v in vocoders]
        E.write_summary(tmp, summaries)
    return summaries


def main() -> None:
    args = arguments(__doc__, "models split features out", words="vocoder")
    with known_errors("evaluate_vocoder", inference.SynthesisError, CorpusError, ValueError):
        summaries = run(load_params(args.params), args.vocoder, models=args.models,
                        split=args.split, features=args.features, out=args.out)
    for s in summaries:
        print(json.dumps({"vocoder": s["key"], "n": s["n"], **s["metrics"]}))


if __name__ == "__main__":
    main()
