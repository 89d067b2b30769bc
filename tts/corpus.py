"""LJSpeech-format corpora on disk: the layout, its metadata, atomic output folders.

A corpus is a folder with `metadata.csv` (`id|text|normalized`, no header) and
`wavs/<id>.wav`, the layout of LJSpeech 1.1 (Ito & Johnson, 2017). The download stage makes
one from one of three sources: `tts.builtin_corpus.synthesize_builtin` (Piper's VITS voice
or eSpeak NG, offline), `tts.download` (a verified, resumable download of the LJSpeech
tarball) or `copy_folder` here (any folder in that layout). Each writes into `staged_dir`,
a staging folder beside its output renamed into place at the end, so a failure never
leaves a half-written corpus.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
METADATA = "metadata.csv"
WAVS = "wavs"
PCM_16 = "PCM_16"


class CorpusError(ValueError):
    """A corpus problem; the message names the file or utterance and what to do."""


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str
    normalized: str


def read_metadata(path: Path) -> list[Utterance]:
    """Parse an LJSpeech `metadata.csv`; an empty normalized column falls back to `text`."""
    rows, seen = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) not in (2, 3) or not cols[0].strip():
            raise CorpusError(f"{path}:{n}: expected `id|text|normalized`, got {line[:80]!r}")
        uid, text = cols[0].strip(), " ".join(cols[1].split())
        normalized = " ".join(cols[2].split()) if len(cols) == 3 else ""
        if uid in seen:
            raise CorpusError(f"{path}:{n}: duplicate utterance id {uid!r}")
        seen.add(uid)
        rows.append(Utterance(uid, text, normalized or text))
    return rows


def write_metadata(path: Path, rows: list[Utterance]) -> None:
    for r in rows:
        if any("|" in s or "\n" in s for s in (r.id, r.text, r.normalized)):
            raise CorpusError(f"utterance {r.id!r}: text may not contain '|' or newlines")
    path.write_text("".join(f"{r.id}|{r.text}|{r.normalized}\n" for r in rows), encoding="utf-8")


def check_layout(folder: Path) -> None:
    """Raise CorpusError naming what is missing unless `folder` is in LJSpeech layout."""
    missing = [name for name, ok in ((METADATA, (folder / METADATA).is_file()),
                                     (f"{WAVS}/", (folder / WAVS).is_dir())) if not ok]
    if missing:
        raise CorpusError(f"{folder} is not an LJSpeech-layout corpus: missing "
                          f"{' and '.join(missing)} (expected metadata.csv with "
                          f"`id|text|normalized` lines and wavs/<id>.wav)")


def repo_path(path: str | Path, root: Path | None = None) -> Path:
    """A params path, relative to the repository root (`$DVC_ROOT`: the real repo even when
    `dvc exp run --queue` runs the stage in a temporary copy)."""
    root = root or Path(os.environ.get("DVC_ROOT", REPO_ROOT))
    return (root / Path(path).expanduser()).resolve()


def resolve_source(corpus: str, root: Path | None = None) -> str | Path:
    """`data.corpus` -> 'builtin', 'ljspeech' or an existing folder (relative to the repo root)."""
    if corpus in ("builtin", "ljspeech"):
        return corpus
    folder = repo_path(corpus, root)
    if not folder.is_dir():
        hint = difflib.get_close_matches(corpus, ["builtin", "ljspeech"], n=1)
        raise CorpusError(f"params: `data.corpus` = {corpus!r} is not 'builtin', 'ljspeech' or an "
                          f"existing folder (looked for {folder})"
                          + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return folder


@contextlib.contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out` that replaces `out` on success and is deleted on failure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    sf.write(path, samples, sample_rate, subtype=PCM_16, format="WAV")


def copy_folder(src: Path, out: Path) -> dict:
    """Copy an LJSpeech-layout folder (metadata.csv and wavs/*.wav) into `out`, atomically."""
    src = Path(src)
    check_layout(src)
    if src.resolve() == Path(out).resolve():
        raise CorpusError(f"data.corpus {src} is the stage output itself; point it elsewhere")
    rows = read_metadata(src / METADATA)  # fail early on malformed metadata
    with staged_dir(out) as tmp:
        shutil.copyfile(src / METADATA, tmp / METADATA)
        (tmp / WAVS).mkdir()
        for wav in tqdm(sorted((src / WAVS).glob("*.wav")), desc=f"copy {src.name}", unit="file"):
            shutil.copyfile(wav, tmp / WAVS / wav.name)
    return {"corpus": str(src), "utterances": len(rows)}
