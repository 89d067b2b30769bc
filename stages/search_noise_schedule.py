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

import argparse
import json
from pathlib import Path

from tts import corpus, split_lists
from tts import noise_schedule as ns
from tts.checkpoint import CheckpointError, load_model
from tts.config import AudioConfig, ConfigError, load_params
from tts.featstore import FeatureStore
from tts.tracking import write_metrics

MODEL_NAME = "wavegrad"


def load_wavegrad(path: Path):
    """(model, cfg) from a finished WaveGrad model file, or a clear refusal."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no trained WaveGrad model at {path}; the search scores "
                                f"schedules on trained weights: run `dvc repro train_wavegrad`")
    name, model, cfg = load_model(path)
    if name != MODEL_NAME:
        raise ValueError(f"{path} holds a {name} model, not {MODEL_NAME}")
    return model, cfg


def run(cfg: ns.NoiseScheduleConfig, audio_cfg: AudioConfig, model_path: Path,
        split: Path, features: Path, out: Path, metrics_path: Path) -> dict:
    model, model_cfg = load_wavegrad(model_path)
    if (model_cfg.n_mels, model_cfg.hop_length) != (audio_cfg.n_mels, audio_cfg.hop_length):
        raise ValueError(f"{model_path} was trained for n_mels={model_cfg.n_mels}, hop_length="
                         f"{model_cfg.hop_length}, but `audio:` now says {audio_cfg.n_mels}, "
                         f"{audio_cfg.hop_length}: re-run `dvc repro train_wavegrad`")
    val = [e.id for e in split_lists.read_split(Path(split) / "val.tsv")]
    train = {e.id for e in split_lists.read_split(Path(split) / "train.tsv")}
    clips = ns.select_clips(val, FeatureStore(features), cfg, audio_cfg.hop_length, train)
    tables = ns.search(model, clips, audio_cfg, cfg)
    with corpus.staged_dir(Path(out)) as tmp:
        metrics = ns.write_results(tables, tmp, [c["id"] for c in clips])
    write_metrics(metrics_path, metrics)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained WaveGrad model.pt")
    parser.add_argument("--split", type=Path, required=True, help="folder of split lists")
    parser.add_argument("--features", type=Path, required=True, help="feature store")
    parser.add_argument("--out", type=Path, required=True, help="folder for the schedules")
    parser.add_argument("--metrics", type=Path, required=True, help="DVC metrics JSON")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        params = load_params(args.params)
        metrics = run(params.section("noise_schedule"), params.audio, args.model, args.split,
                      args.features, args.out, args.metrics)
    except (ConfigError, CheckpointError, corpus.CorpusError, FileNotFoundError,
            ValueError, RuntimeError) as exc:
        raise SystemExit(f"search_noise_schedule: {exc}") from exc
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
