"""Content digests of files: the one sha256 every pinned weight, voice and model check uses."""

from __future__ import annotations

import hashlib
from pathlib import Path

READ_BLOCK = 1 << 20  # bytes read at a time: large files never sit in memory whole


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()
