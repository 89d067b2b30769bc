"""Stage `evaluate_vocoder@<vocoder>`: copy synthesis, the vocoder on the recordings' mels.

    python -m stages.evaluate_vocoder --vocoder NAME --models DIR --split DIR --features DIR
        --out DIR

Vocodes the ground-truth log-mels of the first `evaluate.utterances` test utterances
(WaveNet: the first `evaluate.wavenet_utterances`) and compares with the recordings;
WaveGrad is evaluated once per searched noise schedule. Writes wavs, figures,
`utterances.csv` and `summary.json` to --out (replaced only on success).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts import evaluation as E
from tts import inference
from tts.config import ConfigError, load_params
from tts.corpus import CorpusError, staged_dir


def run(params, vocoder: str, models: Path, split: Path, features: Path, out: Path) -> list[dict]:
    cfg, synth_cfg = params.section("evaluate"), params.section("synth")
    device = inference.resolve_device(synth_cfg.device)
    if vocoder == "wavegrad":  # every searched schedule
        vocoders = [inference.load_vocoder(vocoder, models, synth_cfg, device, n)
                    for n in sorted(inference.wavegrad_schedules(models))]
    else:
        vocoders = [inference.load_vocoder(vocoder, models, synth_cfg, device)]
    for v in vocoders:
        inference.check_contract(params.audio, (v.name, v.cfg))
    utterances = E.test_utterances(split, features, cfg.utterances)
    scorers = E.load_scorers(cfg, str(device))
    with staged_dir(out) as tmp:
        summaries = [E.evaluate_copy(v, utterances, tmp, params.audio, cfg, synth_cfg.seed,
                                     device, scorers) for v in vocoders]
        E.write_summary(tmp, summaries)
    return summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocoder", required=True, help="vocoder name")
    parser.add_argument("--models", type=Path, required=True, help="folder of finished models")
    parser.add_argument("--split", type=Path, required=True, help="folder of split lists")
    parser.add_argument("--features", type=Path, required=True, help="feature store")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        summaries = run(load_params(args.params), args.vocoder, args.models, args.split,
                        args.features, args.out)
    except (ConfigError, inference.SynthesisError, CorpusError, ValueError) as exc:
        raise SystemExit(f"evaluate_vocoder: {exc}") from exc
    for s in summaries:
        print(json.dumps({"vocoder": s["key"], "n": s["n"], **s["metrics"]}))


if __name__ == "__main__":
    main()
