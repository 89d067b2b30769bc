"""Stage `search_noise_schedule`: few-iteration beta schedules for the trained WaveGrad.

    python -m stages.search_noise_schedule --model FILE --split DIR --features DIR
        --out DIR --metrics FILE

Loads the trained WaveGrad checkpoint (refusing to run without one: a search on untrained
weights says nothing), scores every candidate schedule of `tts.noise_schedule` on held-out
validation clips and writes, per iteration count n in `noise_schedule.iterations`,
`best_<n>.json` (betas and score) and `candidates_<n>.csv` (every candidate) to --out, and
the best score per n to --metrics. Same params and model -> same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import models
from stages import arguments, known_errors
from tts import corpus, split_lists
from tts import noise_schedule as ns
from tts.checkpoint import CheckpointError, load_model
from tts.config import AudioConfig, load_params
from tts.featstore import FeatureStore
from tts.tracking import write_metrics

# The networks whose vocoder samples with searched noise schedules (the registry's
# `schedules` trait): the only ones this search applies to.
SCHEDULED = {p.network: m for m in models.MODELS.values() if m.schedules
             for p in m.parts if p.network}


def load_scheduled(path: Path):
    """The finished model file of a scheduled vocoder's network, or a clear refusal."""
    if not Path(path).is_file():
        stages = " ".join(models.spec(n).stage_name for n in SCHEDULED)
        raise FileNotFoundError(f"no trained model at {path}; the search scores schedules "
                                f"on trained weights: run `dvc repro {stages}`")
    loaded = load_model(path)
    if loaded.name not in SCHEDULED:
        raise ValueError(f"{path} holds a {loaded.name} model, not one of "
                         f"{', '.join(SCHEDULED)} (vocoders with searched noise schedules)")
    return loaded


def run(cfg: ns.NoiseScheduleConfig, audio_cfg: AudioConfig, *, model_path: Path,
        split: Path, features: Path, out: Path, metrics_path: Path) -> dict:
    name, model, model_cfg = load_scheduled(model_path)
    if (model_cfg.n_mels, model_cfg.hop_length) != (audio_cfg.n_mels, audio_cfg.hop_length):
        raise ValueError(f"{model_path} was trained for n_mels={model_cfg.n_mels}, hop_length="
                         f"{model_cfg.hop_length}, but `audio:` now says {audio_cfg.n_mels}, "
                         f"{audio_cfg.hop_length}: re-run `dvc repro "
                         f"{models.spec(name).stage_name}`")
    val = [e.id for e in split_lists.read_split(Path(split) / "val.tsv")]
    train = {e.id for e in split_lists.read_split(Path(split) / "train.tsv")}
    clips = ns.select_clips(val, FeatureStore(features), cfg, audio_cfg.hop_length, train)
    tables = ns.search(model, clips, audio_cfg, cfg)
    with corpus.staged_dir(Path(out)) as tmp:
        metrics = ns.write_results(tables, tmp, [c["id"] for c in clips])
    write_metrics(metrics_path, metrics)
    return metrics


def main() -> None:
    args = arguments(__doc__, "model split features out metrics")
    with known_errors("search_noise_schedule", CheckpointError, corpus.CorpusError,
                      FileNotFoundError, ValueError, RuntimeError):
        params = load_params(args.params)
        metrics = run(params.section("noise_schedule"), params.audio, model_path=args.model,
                      split=args.split, features=args.features, out=args.out,
                      metrics_path=args.metrics)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
