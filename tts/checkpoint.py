"""Checkpoints: atomic writes, resume discovery, and models rebuilt from a file alone.

A checkpoint is a dict with `model_name`, `config` (the model config dataclass as a dict),
`config_hash`, `step`, `state_dict`, `symbol_table` (text models: the phoneme table
they were trained with; a mismatch is refused when the model is loaded), and, for resume
checkpoints, `optimizer`, `scheduler` and `rng` state. `load_model(path)` needs nothing but the file: the registry
maps `model_name` to its config class and network.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from models import spec
from tts.contract import CONTRACT_FIELDS
from tts.text import symbol_table_id

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{8})\.pt$")
SYMBOLS_KEY = "symbol_table"  # text models: tts.text.symbol_table_id() at training time


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


class LoadedModel(NamedTuple):
    """A network rebuilt from a finished model or resume checkpoint."""

    name: str  # registry name (`model_name` in the file)
    model: torch.nn.Module  # in eval mode, on CPU
    cfg: Any  # its config dataclass


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save to a temp file in the same directory, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_partial_writes(directory: str | Path, name: str = "") -> None:
    """Delete the temp files `save_atomic` leaves when killed mid-write (`.NAME.*.tmp`;
    every name when `name` is empty), so they pile up nowhere DVC hashes."""
    directory = Path(directory)
    if directory.is_dir():
        for tmp in directory.glob(f".{name or '*'}.*.tmp"):
            tmp.unlink(missing_ok=True)


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Resume checkpoints in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))


def read(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found; build it with `dvc repro`")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc}); delete it and "
                              f"re-run the stage that writes it") from exc


def model_payload(model_name: str, cfg: Any, model: torch.nn.Module, step: int,
                  config_hash: str, **extra: Any) -> dict:
    """What a finished model file holds: enough to rebuild the network alone. Networks
    that read phoneme ids also record the symbol table they were trained with."""
    symbols = {SYMBOLS_KEY: symbol_table_id()} if hasattr(cfg, "n_symbols") else {}
    return {"model_name": model_name, "config": dataclasses.asdict(cfg),
            "config_hash": config_hash, "step": step, **symbols,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **extra}


def check_symbols(payload: dict, source: str) -> None:
    """Refuse a text model trained with another symbol table than tts/text.py's."""
    if "n_symbols" not in payload.get("config", {}):
        return
    stored, current = payload.get(SYMBOLS_KEY), symbol_table_id()
    if stored != current:
        raise CheckpointError(
            f"{source} was trained with symbol table {stored or '(not recorded: older file)'}"
            f" but tts/text.py now has {current}: its phoneme ids would mean other sounds; "
            f"re-train it (`dvc repro` re-runs its training stage)")


def config_fields(config_cls: type, saved: dict) -> dict:
    """A saved config without the contract fields its class no longer declares: files
    written before a network stopped carrying a contract value it never read still load."""
    declared = {f.name for f in dataclasses.fields(config_cls)}
    return {k: v for k, v in saved.items() if k in declared or k not in CONTRACT_FIELDS}


def build_from_payload(payload: dict, source: str = "checkpoint") -> LoadedModel:
    """The network of a payload produced by `model_payload`."""

    check_symbols(payload, source)
    try:
        s = spec(payload["model_name"])
        cfg = s.config_cls(**config_fields(s.config_cls, payload["config"]))
        model = s.model_cls(cfg)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: cannot rebuild the model ({exc}); it was written "
                              f"by an incompatible version: re-run its training stage") from exc
    model.eval()
    return LoadedModel(payload["model_name"], model, cfg)


def load_model(path: str | Path) -> LoadedModel:
    """The network of a model or resume checkpoint file (eval mode, CPU)."""
    return build_from_payload(read(path), str(path))
