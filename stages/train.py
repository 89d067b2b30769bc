"""Stage train_<name> (and distill_parallel_wavenet): train one registry network.

    python -m stages.train NAME --split DIR --features DIR [--align DIR] [--teacher FILE]
        [--base FILE] --checkpoints DIR --out FILE --metrics FILE --plots FILE

With `devices > 1` the stage re-launches itself under torchrun (DDP, `devices` processes
on this machine). Alone it uses a standalone (single-node) rendezvous; for several nodes,
run the same `dvc repro` on every node with torchrun's own environment variables set
(`PET_NNODES=2 PET_NODE_RANK=0|1 PET_RDZV_ENDPOINT=host:29500 PET_RDZV_ID=job`; README,
"Multi-node training"): torchrun reads them as --nnodes, --node-rank, --rdzv-endpoint and
--rdzv-id. Resumes from --checkpoints when the config hash matches. With `init_from` set,
starts from that finished model (tts/finetune.py); --base is the base_models stage's
manifest of it, checked against the file actually loaded.
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
from tts.digest import sha256_file
from tts.finetune import FineTuneError, prepare
from tts.media import validation_media_logger
from tts.tracking import Tracker
from tts.quality import ValidationListener
from tts.train import RunPaths, Trainer, pick_device, seed_everything


# torchrun settings read from the environment (its `PET_<OPTION>` convention); any of them
# replaces the single-node standalone rendezvous with the given one.
MULTI_NODE_ENV = frozenset({"PET_NNODES", "PET_RDZV_ENDPOINT", "PET_RDZV_BACKEND",
                            "PET_RDZV_ID", "PET_NODE_RANK", "PET_MASTER_ADDR"})


def torchrun_command(devices: int, args: list[str], environ) -> list[str]:
    """This stage under torchrun, `devices` processes on this node; standalone unless the
    environment names a rendezvous (MULTI_NODE_ENV), which torchrun then reads itself."""
    rendezvous = [] if MULTI_NODE_ENV & set(environ) else ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous,
            f"--nproc_per_node={devices}", "-m", "stages.train", *args]


def stage_name(name: str) -> str:
    return "distill_parallel_wavenet" if name == "parallel_wavenet" else f"train_{name}"


def run(name: str, params, paths: RunPaths, split: Path, features: Path,
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
        teacher_name, frozen, _ = ckpt.load_model(teacher)
        if teacher_name != spec.teacher:
            raise SystemExit(f"--teacher {teacher} holds a {teacher_name}, not a {spec.teacher}")
        extra = {"teacher_sha256": sha256_file(teacher)}
    extra |= tune.hash_extra
    if not quiet and int(os.environ.get("RANK", "0")) == 0:
        for note in tune.notes:
            print(note, flush=True)
    with Tracker(stage_name(name)) as tracker:
        tracker.log_params({"train": to_dict(train_cfg), "model": to_dict(model_cfg), **extra})
        tracker.set_tags({"model_name": name, **extra, **tune.tags})
        listen = None
        if train_cfg.val_listen_clips:
            listen = ValidationListener(spec.data, params.audio, split, features,
                                        train_cfg.val_listen_clips,
                                        train_cfg.val_listen_seconds, str(pick_device(0)))
        trainer = Trainer(name, model, model_cfg, train_cfg, data, paths, tracker,
                          teacher=frozen, hash_extra=extra, quiet=quiet,
                          log_media=validation_media_logger(params.audio),
                          payload_extra=tune.payload_extra, listen=listen)
        return trainer.fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(models.REGISTRY))
    for flag in ("split", "features", "checkpoints", "out", "metrics", "plots"):
        parser.add_argument(f"--{flag}", type=Path, required=True)
    parser.add_argument("--align", type=Path)
    parser.add_argument("--teacher", type=Path)
    parser.add_argument("--base", type=Path, help="base_models manifest of this network")
    args = parser.parse_args()
    params = load_params()
    train_cfg, _ = params.network(args.name)
    if train_cfg.devices > 1 and "LOCAL_RANK" not in os.environ:
        os.execv(sys.executable, torchrun_command(train_cfg.devices, sys.argv[1:], os.environ))
    paths = RunPaths(args.checkpoints, args.out, args.metrics, args.plots)
    try:
        run(args.name, params, paths, args.split, args.features, args.align, args.teacher,
            base=args.base)
    except FineTuneError as exc:
        raise SystemExit(f"{stage_name(args.name)}: {exc}") from exc


if __name__ == "__main__":
    main()
