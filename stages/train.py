"""Stage train_<name> (and distill_parallel_wavenet): train one registry network.

    python -m stages.train NAME --split DIR --features DIR [--align DIR] [--teacher FILE]
        --checkpoints DIR --out FILE --metrics FILE --plots FILE

With `devices > 1` the stage re-launches itself under torchrun (DDP, one process per
device). Resumes from --checkpoints when the config hash matches.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import models
from tts import checkpoint as ckpt
from tts.config import load_params, to_dict
from tts.data import build_train_data
from tts.media import validation_media_logger
from tts.tracking import Tracker
from tts.train import RunPaths, Trainer, seed_everything


def stage_name(name: str) -> str:
    return "distill_parallel_wavenet" if name == "parallel_wavenet" else f"train_{name}"


def run(name: str, params, paths: RunPaths, split: Path, features: Path,
        align: Path | None = None, teacher: Path | None = None, quiet: bool = False) -> dict:
    spec = models.spec(name)
    train_cfg, model_cfg = params.network(name)
    if spec.needs_alignment and align is None:
        raise SystemExit(f"{name} trains on phone durations: pass --align (the align stage's "
                         f"output)")
    data = build_train_data(spec.data, train_cfg, params.audio, split, features, align)
    seed_everything(train_cfg.seed)  # initial weights follow the run's seed
    model = models.build_model(name, model_cfg)
    frozen, extra = None, {}
    if spec.teacher:
        if teacher is None:
            raise SystemExit(f"{name} distills from a {spec.teacher} teacher: pass --teacher")
        teacher_name, frozen, _ = ckpt.load_model(teacher)
        if teacher_name != spec.teacher:
            raise SystemExit(f"--teacher {teacher} holds a {teacher_name}, not a {spec.teacher}")
        extra = {"teacher_sha256": ckpt.file_hash(teacher)}
    with Tracker(stage_name(name)) as tracker:
        tracker.log_params({"train": to_dict(train_cfg), "model": to_dict(model_cfg), **extra})
        tracker.set_tags({"model_name": name, **extra})
        listen = None
        if train_cfg.val_listen_clips:
            from tts.quality import ValidationListener
            from tts.train import pick_device

            listen = ValidationListener(spec.data, params.audio, split, features,
                                        train_cfg.val_listen_clips,
                                        train_cfg.val_listen_seconds, str(pick_device(0)))
        trainer = Trainer(name, model, model_cfg, train_cfg, data, paths, tracker,
                          teacher=frozen, hash_extra=extra, quiet=quiet,
                          log_media=validation_media_logger(params.audio), listen=listen)
        return trainer.fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(models.REGISTRY))
    for flag in ("split", "features", "checkpoints", "out", "metrics", "plots"):
        parser.add_argument(f"--{flag}", type=Path, required=True)
    parser.add_argument("--align", type=Path)
    parser.add_argument("--teacher", type=Path)
    args = parser.parse_args()
    params = load_params()
    train_cfg, _ = params.network(args.name)
    if train_cfg.devices > 1 and "LOCAL_RANK" not in os.environ:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={train_cfg.devices}", "-m", "stages.train"]
        os.execv(sys.executable, launcher + sys.argv[1:])
    paths = RunPaths(args.checkpoints, args.out, args.metrics, args.plots)
    run(args.name, params, paths, args.split, args.features, args.align, args.teacher)


if __name__ == "__main__":
    main()
