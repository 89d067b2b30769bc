"""Content digests: the one sha256 of a file every pinned weight, voice and model check
uses, and the one short hash of configs and data identities (resume hashes)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

READ_BLOCK = 1 << 20  # bytes read at a time: large files never sit in memory whole
FINGERPRINT_CHARS = 16  # hex digits kept of a fingerprint's sha256


def sha256_file(path: str | Path, progress: bool = False) -> str:
    """Hex sha256 of a file's bytes (`progress`: a byte progress bar, for big downloads)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"sha256 {path.name}", leave=False,
                                     disable=not progress) as bar:
        while block := f.read(READ_BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def to_dict(obj: Any) -> Any:
    """Dataclass (possibly nested) -> plain JSON-able dict."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def fingerprint(*parts: Any) -> str:
    """A short stable hash of configs (dataclasses) and plain JSON-able values: the resume
    hash of a training run and the identity of its training data."""
    blob = json.dumps([to_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:FINGERPRINT_CHARS]
