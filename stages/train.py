"""Stage train_<name> (and distill_parallel_wavenet): train one registry network.

    python -m stages.train NAME --split DIR --features DIR [--align DIR] [--teacher FILE]
        [--base FILE] --checkpoints DIR --out FILE --metrics FILE --plots FILE

With `devices > 1` the stage re-launches itself under torchrun (`tts.launch`: DDP, one
node or several). Resumes from --checkpoints when the config hash matches. With
`init_from` set, starts from that finished model (tts/finetune.py); --base is the
base_models stage's manifest of it, checked against the file actually loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import models
from stages import arguments, known_errors
from tts import checkpoint as ckpt
from tts.config import load_params, to_dict
from tts.data import build_train_data
from tts.digest import sha256_file
from tts.finetune import FineTuneError, prepare
from tts.launch import relaunch_under_torchrun
from tts.media import validation_media_logger
from tts.quality import validation_listener
from tts.tracking import Tracker
from tts.train import RunPaths, Trainer, seed_everything


def run(name: str, params, paths: RunPaths, *, split: Path, features: Path,
        align: Path | None = None, teacher: Path | None = None, quiet: bool = False,
        base: Path | None = None) -> dict:
    spec = models.spec(name)
    train_cfg, model_cfg = params.network(name)
    if spec.needs_alignment and align is None:
        raise SystemExit(f"{name} trains on phone durations: pass --align (the align stage's "
                         f"output)")
    seed_everything(train_cfg.seed)  # initial weights follow the run's seed
    model = models.build_model(name, model_cfg)
    # before the data: a base model that cannot work is refused in seconds
    tune = prepare(name, model, model_cfg, train_cfg, params.audio, params.raw,
                   params.section("text"), base, out=paths.out)
    data = build_train_data(spec.data, train_cfg, params.audio, split, features, align)
    frozen, extra = None, {}
    if spec.teacher:
        if teacher is None:
            raise SystemExit(f"{name} distills from a {spec.teacher} teacher: pass --teacher")
        loaded = ckpt.load_model(teacher)
        if loaded.name != spec.teacher:
            raise SystemExit(f"--teacher {teacher} holds a {loaded.name}, not a {spec.teacher}")
        frozen, extra = loaded.model, {"teacher_sha256": sha256_file(teacher)}
    extra |= tune.hash_extra
    if not quiet and int(os.environ.get("RANK", "0")) == 0:
        for note in tune.notes:
            print(note, flush=True)
    with Tracker(spec.stage_name) as tracker:
        tracker.log_params({"train": to_dict(train_cfg), "model": to_dict(model_cfg), **extra})
        tracker.set_tags({"model_name": name, **extra, **tune.tags})
        listen = validation_listener(spec.data, train_cfg, params.audio, split, features)
        trainer = Trainer(name, model, model_cfg, train_cfg, data, paths, tracker,
                          teacher=frozen, hash_extra=extra, quiet=quiet,
                          log_media=validation_media_logger(params.audio),
                          payload_extra=tune.payload_extra, listen=listen)
        return trainer.fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(models.REGISTRY))
    args = arguments(__doc__, "split features checkpoints out metrics plots",
                     optional="align teacher base", params=False, parser=parser)
    with known_errors(models.spec(args.name).stage_name, FineTuneError):
        params = load_params()
        relaunch_under_torchrun(params.network(args.name)[0].devices, "stages.train")
        paths = RunPaths(args.checkpoints, args.out, args.metrics, args.plots)
        run(args.name, params, paths, split=args.split, features=args.features,
            align=args.align, teacher=args.teacher, base=args.base)


if __name__ == "__main__":
    main()
