"""The one training loop, for every network in the registry.

Each network is one module, one optimizer and one scalar loss (`model.loss(batch)`);
distillation is the same loop with a frozen teacher bound into the student's loss. The
loop owns what every network needs and nothing model-specific: seeding, device choice,
DDP under torchrun, bf16 autocast on GPU, gradient clipping, warmup + cosine LR,
a NaN/inf guard, atomic checkpoints with config-hash-checked resume, validation with
plots and audio, MLflow and DVC metrics.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from tts import checkpoint as ckpt
from tts.config import TrainConfig
from tts.data import BatchPlan, TrainData
from tts.digest import fingerprint
from tts.text import symbol_table_id
from tts.tracking import Tracker, write_metrics, write_plot

# Fields of TrainConfig that change how a run is observed or scheduled, not what it
# computes: they may differ between an interrupted run and its resumption.
# `cpu_threads` is not among them: the intra-op thread count partitions reductions and
# GEMMs differently, so it changes the numbers (measured: 1 vs 2 threads, FastSpeech 2,
# 30 steps: weights 1e-3 apart); the effective count is part of the run hash.
# `init_from` is a location: the base model's sha256 goes into the hash instead.
NON_SEMANTIC_FIELDS = ("log_every", "val_every", "checkpoint_every", "keep_checkpoints",
                       "val_utterances", "init_from", "val_listen_clips", "val_listen_seconds")
# Metrics that measure the machine, not the model: kept out of the model file so the
# same params and data give the same bytes (they still go to the metrics JSON and MLflow).
TIMING_METRICS = ("steps_per_second",)
STALE_DIR = "stale"  # checkpoints of another config are moved here, never mixed in
VAL_PREFIX = "val_"  # validation metrics' names in logs, plots and the model file
CORRUPT_DIR = "corrupt"  # unreadable checkpoints are moved here; resume uses an older one


class NonFiniteLossError(FloatingPointError):
    """A loss term or gradient became NaN/inf; the message names step and term."""


@dataclass
class RunPaths:
    checkpoints: Path  # resume directory (DVC persist: true)
    out: Path  # finished model file (DVC cached output)
    metrics: Path | None = None  # DVC metrics JSON
    plots: Path | None = None  # DVC plots TSV


def run_hash(name: str, model_cfg: Any, train: TrainConfig, data_fingerprint: str,
             extra: dict | None = None) -> str:
    semantic = {k: v for k, v in dataclasses.asdict(train).items()
                if k not in NON_SEMANTIC_FIELDS}
    return fingerprint({"name": name, "data": data_fingerprint, **(extra or {})},
                       model_cfg, semantic)


def set_deterministic(enabled: bool) -> None:
    """`model.deterministic`: PyTorch's deterministic algorithms (docs/architecture.md,
    "Reproducibility"). CPU training is bitwise reproducible without it; on GPU it makes
    cuBLAS and cuDNN pick deterministic kernels and errors on ops that have none."""
    if not enabled:
        return
    # cuBLAS needs a fixed workspace before its first handle is created
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def lr_lambda(train: TrainConfig) -> Callable[[int], float]:
    """Linear warmup to 1, then cosine decay to `min_lr_ratio` at `steps`."""

    def factor(step: int) -> float:
        if step < train.warmup_steps:
            return (step + 1) / (train.warmup_steps + 1)
        span = max(train.steps - train.warmup_steps, 1)
        progress = min((step - train.warmup_steps) / span, 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return train.min_lr_ratio + (1 - train.min_lr_ratio) * cosine

    return factor


class _LossModule(torch.nn.Module):
    """forward(batch) = model.loss(batch), so DDP's gradient hooks see the call."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> dict:
        return self.model.loss(batch)


def distributed() -> tuple[int, int]:
    """(rank, world size); initializes the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def pick_device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def _check_finite(losses: dict[str, torch.Tensor], step: int, last_good: Path | None,
                  world: int = 1) -> None:
    """Raise NonFiniteLossError naming step and term when a loss term is NaN/inf.

    Under DDP the per-term flags are all-reduced first, so every rank stops at the same
    step with the same message instead of the healthy ranks waiting forever in backward's
    gradient all-reduce for the one that raised."""
    terms = [(name, value) for name, value in losses.items() if torch.is_tensor(value)]
    if not terms:
        return
    bad = torch.stack([(~torch.isfinite(value.detach())).any() for _, value in terms]).float()
    if world > 1:
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.SUM)
    if not bool((bad > 0).any()):
        return
    index = int((bad > 0).nonzero()[0])
    term, value = terms[index]
    kept = f"last good checkpoint kept: {last_good}" if last_good else \
        "no checkpoint written yet"
    what = (f"is not finite on {int(bad[index])} of {world} ranks" if world > 1
            else f"is {value.detach().float().cpu().item()}")
    raise NonFiniteLossError(
        f"step {step}: loss term '{term}' {what}; stopping ({kept}). Lower the learning "
        f"rate or check the data.")


class Trainer:
    """Fit `model` (a registry network) for `train.steps` steps; see module docstring."""

    def __init__(self, name: str, model: torch.nn.Module, model_cfg: Any, train: TrainConfig,
                 data: TrainData, paths: RunPaths, tracker: Tracker | None = None,
                 teacher: torch.nn.Module | None = None, hash_extra: dict | None = None,
                 log_media: Callable | None = None, quiet: bool = False,
                 payload_extra: dict | None = None, listen: Callable | None = None):
        self.name, self.model_cfg, self.train, self.data, self.paths = \
            name, model_cfg, train, data, paths
        self.rank, self.world = distributed()
        self.device = pick_device(self.rank)
        if self.device.type == "cpu" and train.cpu_threads:
            # measured: small models on 2 cores train up to 10x faster on one thread than
            # with torch's default, whose spinning threads contend with everything else
            torch.set_num_threads(train.cpu_threads)
        set_deterministic(train.deterministic)
        seed_everything(train.seed)
        self.model = model.to(self.device)
        if teacher is not None:
            teacher = teacher.to(self.device).eval().requires_grad_(False)
            self.model.bind_teacher(teacher)
        self.tracker = tracker or Tracker(name, enabled=False)
        self.log_media, self.quiet = log_media, quiet
        self.listen = listen  # (model, val_batches) -> {"mos", "cer"}: tts.quality
        self.payload_extra = payload_extra or {}  # recorded in every checkpoint (provenance)
        numerics = {"threads": torch.get_num_threads()} if self.device.type == "cpu" else {}
        if hasattr(model_cfg, "n_symbols"):  # a new symbol table never resumes an old run
            numerics["symbol_table"] = symbol_table_id()
        self.hash = run_hash(name, model_cfg, train, data.fingerprint,
                             {**(hash_extra or {}), **numerics})
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=train.lr,
                                           weight_decay=train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(train))
        self.loss_module = _LossModule(self.model)
        if self.world > 1:
            self.loss_module = torch.nn.parallel.DistributedDataParallel(
                self.loss_module, find_unused_parameters=True,
                device_ids=[self.device.index] if self.device.type == "cuda" else None)
        lengths = [data.dataset.length(i) for i in range(len(data.dataset))]
        self.plan = BatchPlan(lengths, train.batch_size, train.seed, self.rank, self.world)
        self.step, self.history, self.last_good = 0, [], None
        self.autocast = (self.device.type == "cuda" and train.precision == "bf16")

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict:
        return ckpt.model_payload(self.name, self.model_cfg, self.model, self.step, self.hash,
                                  optimizer=self.optimizer.state_dict(),
                                  scheduler=self.scheduler.state_dict(), rng=rng_state(),
                                  history=self.history, **self.payload_extra)

    def save_checkpoint(self) -> None:
        path = ckpt.checkpoint_path(self.paths.checkpoints, self.step)
        self.last_good = path  # every rank names it in a non-finite-loss message
        if self.rank != 0:
            return
        ckpt.save_atomic(self._payload(), path)
        for old in ckpt.list_checkpoints(self.paths.checkpoints)[:-self.train.keep_checkpoints]:
            old.unlink()

    def resume(self) -> bool:
        """Load the newest readable checkpoint if its config hash matches; else start fresh.

        A checkpoint that cannot be read (truncated by a full disk, a foreign file) is
        moved to `corrupt/` with a message, and the one before it is tried."""
        if self.rank == 0:
            ckpt.remove_partial_writes(self.paths.checkpoints)
            ckpt.remove_partial_writes(self.paths.out.parent, self.paths.out.name)
        found = ckpt.list_checkpoints(self.paths.checkpoints)
        payload = None
        while found and payload is None:
            try:
                payload = ckpt.read(found[-1])
            except ckpt.CheckpointError as exc:
                corrupt = self.paths.checkpoints / CORRUPT_DIR
                self._say(f"[{self.name}] {exc.__cause__ or exc}: {found[-1].name} is "
                          f"unreadable; moved to {corrupt}, trying the one before it")
                if self.rank == 0:
                    corrupt.mkdir(parents=True, exist_ok=True)
                    if found[-1].exists():
                        found[-1].replace(corrupt / found[-1].name)
                found.pop()
        if payload is None:
            return False
        if payload.get("config_hash") != self.hash:
            self._say(f"[{self.name}] {found[-1]} was written for another config or data "
                      f"(hash {payload.get('config_hash')} != {self.hash}): starting fresh; "
                      f"old checkpoints moved to {self.paths.checkpoints / STALE_DIR}")
            if self.rank == 0:
                stale = self.paths.checkpoints / STALE_DIR / str(payload.get("config_hash"))
                stale.mkdir(parents=True, exist_ok=True)
                for path in found:
                    path.replace(stale / path.name)
            return False
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        set_rng_state(payload["rng"])
        self.step, self.history = payload["step"], payload.get("history", [])
        self.last_good = found[-1]
        self._say(f"[{self.name}] resumed from {found[-1]} at step {self.step}")
        return True

    def _say(self, message: str) -> None:
        if self.rank == 0 and not self.quiet:
            tqdm.write(message)

    # ------------------------------------------------------------------ steps
    def _batch(self, step: int) -> dict:
        items = [self.data.dataset[key] for key in self.plan.batch(step)]
        return to_device(self.data.collate(items), self.device)

    def train_step(self) -> dict[str, float]:
        self.model.train()
        batch = self._batch(self.step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            losses = self.loss_module(batch)
        _check_finite(losses, self.step, self.last_good, self.world)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.train.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.train.grad_clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        _check_finite({"gradient norm": norm}, self.step, self.last_good)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {k: float(v.detach()) for k, v in losses.items() if torch.is_tensor(v)} | {
            "grad_norm": float(norm)}

    def validate(self) -> dict[str, float]:
        """Validation draws from forked RNGs, so it never changes the training stream."""
        py_state, np_state = random.getstate(), np.random.get_state()
        devices = [self.device.index] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            result = self._validate()
        random.setstate(py_state)
        np.random.set_state(np_state)
        return result

    def _validate(self) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        for batch in self.data.val_batches:
            batch = to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                values = {k: float(v) for k, v in self.model.loss(batch).items()}
                if hasattr(self.model, "scores"):
                    values |= self.model.scores(batch)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v / len(self.data.val_batches)
        if (self.log_media and self.rank == 0 and self.data.val_batches
                and hasattr(self.model, "sample")):
            media = self.model.sample(to_device(self.data.val_batches[0], self.device))
            self.log_media(self.tracker, media, self.data.val_batches[0], self.step)
        if self.listen and self.rank == 0:
            sums |= self.listen(self.model, self.data.val_batches)
        self.model.train()
        return {f"{VAL_PREFIX}{k}": v for k, v in sums.items()}

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to `train.steps`; `stop_at` ends early after a checkpoint at that step,
        as an interruption would (tests use it to check resumption)."""
        train = self.train
        self.resume()
        start, started = self.step, time.perf_counter()
        bar = tqdm(total=train.steps, initial=self.step, desc=self.name, unit="step",
                   disable=self.rank != 0 or self.quiet, dynamic_ncols=True)
        val: dict[str, float] = {}
        latest: dict[str, float] = {}
        while self.step < train.steps:
            latest = self.train_step()
            bar.update(1)
            done = self.step == train.steps
            if self.step % train.log_every == 0 or done:
                rate = (self.step - start) / max(time.perf_counter() - started, 1e-9)
                row = {"step": self.step, **latest, "lr": self.scheduler.get_last_lr()[0]}
                self.history.append(row)
                bar.set_postfix(loss=f"{latest['loss']:.4f}", steps_s=f"{rate:.2f}")
                if self.rank == 0:
                    self.tracker.log_metrics({k: v for k, v in row.items() if k != "step"},
                                             self.step)
            if self.step % train.val_every == 0 or done:
                val = self.validate()
                if self.rank == 0:
                    self.tracker.log_metrics(val, self.step)
                if self.history and self.history[-1]["step"] == self.step:
                    self.history[-1].update(val)  # the plots TSV gets the learning curve
                else:
                    self.history.append({"step": self.step, **val})
            if self.step % train.checkpoint_every == 0 or done or self.step == stop_at:
                self.save_checkpoint()
            if self.step == stop_at:
                bar.close()
                return {"step": self.step, "interrupted": True}
        bar.close()
        if self.world > 1:  # BatchNorm statistics drift per rank: rank 0's are the model's
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        if not val and not latest and self.history:
            # resumed at the end (killed between the last checkpoint and the model file):
            # the last logged row holds that step's losses and validation, so the model
            # file is the one an uninterrupted run writes
            last = self.history[-1]
            val = {k: v for k, v in last.items() if k.startswith(VAL_PREFIX)}
            latest = {k: v for k, v in last.items() if k not in ("step", "lr") and k not in val}
        if not val:  # nothing logged: still report validation
            val = self.validate()
        elapsed = time.perf_counter() - started
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        metrics = {"step": self.step, "parameters": n_params,
                   "steps_per_second": (self.step - start) / elapsed if self.step > start else 0.0,
                   **{f"train_{k}": v for k, v in latest.items()}, **val}
        if self.rank == 0:
            stored = {k: v for k, v in metrics.items() if k not in TIMING_METRICS}
            ckpt.save_atomic(ckpt.model_payload(self.name, self.model_cfg, self.model,
                                                self.step, self.hash, metrics=stored,
                                                **self.payload_extra),
                             self.paths.out)
            if self.paths.metrics:
                write_metrics(self.paths.metrics, metrics)
            if self.paths.plots:
                write_plot(self.paths.plots, self.history)
        if self.world > 1:
            torch.distributed.barrier()
        return metrics
