"""The LJSpeech download: a resumable, verified HTTP fetch and a streaming extraction.

`fetch_archive` resumes `<archive>.part` with HTTP Range requests, checks size and
sha256, and marks a verified archive so it is never fetched or hashed again;
`extract_archive` unpacks it into an LJSpeech-layout folder (`tts.corpus`) atomically.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from tts.corpus import METADATA, CorpusError, check_layout, read_metadata, staged_dir
from tts.digest import READ_BLOCK, sha256_file

DOWNLOAD_RETRIES = 5  # reconnections (each resumes with an HTTP Range request)
RETRY_WAIT_S = 2.0  # seconds before reconnection k is k * RETRY_WAIT_S
TIMEOUT_S = 60.0  # socket timeout of one connection


class DownloadError(RuntimeError):
    """A download that failed or did not verify; the message names the file."""


def _marker(archive: Path) -> Path:
    return archive.with_name(archive.name + ".verified")


def is_verified(archive: Path, size: int, sha256: str) -> bool:
    """True when `archive` carries a marker written after hashing it, and is unchanged since."""
    marker = _marker(archive)
    if not (archive.is_file() and marker.is_file()):
        return False
    st = archive.stat()
    try:
        seen = json.loads(marker.read_text())
    except ValueError:
        return False
    expected = {"sha256": sha256, "size": size, "mtime_ns": st.st_mtime_ns}
    return seen == expected and st.st_size == size


def _mark_verified(archive: Path, size: int, sha256: str) -> None:
    stamp = {"sha256": sha256, "size": size, "mtime_ns": archive.stat().st_mtime_ns}
    _marker(archive).write_text(json.dumps(stamp))


def _set_aside(path: Path) -> Path:
    bad = path.with_name(path.name.removesuffix(".part") + ".bad")
    os.replace(path, bad)
    return bad


def _download_once(url: str, part: Path, size: int, timeout: float) -> None:
    """Append the rest of `url` to `part` (HTTP Range from its current length)."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:  # longer than the archive can be: not ours
        part.unlink()
        have = 0
    if have == size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # range not satisfiable: the partial file is not a prefix
            part.unlink()
            raise ConnectionError(f"server refused resuming at byte {have}; restarting") from exc
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; "
                            f"check data.ljspeech.url") from exc
    with resp:
        if have and resp.status != 206:  # server ignored Range: start over
            have = 0
        elif have and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise DownloadError(f"{url}: server resumed at {resp.headers.get('Content-Range')!r}, "
                                f"not at byte {have}; delete {part} and re-run")
        bar = tqdm(total=size, initial=have, unit="B", unit_scale=True, desc=f"download {url}")
        with open(part, "ab" if have else "wb") as f, bar:
            while block := resp.read(READ_BLOCK):
                f.write(block)
                bar.update(len(block))
                if f.tell() > size:
                    break
    got = part.stat().st_size
    if got < size:
        raise ConnectionError(f"connection closed at byte {got} of {size}")


def fetch_archive(url: str, dest: Path, size: int, sha256: str, retries: int = DOWNLOAD_RETRIES,
                  timeout: float = TIMEOUT_S) -> Path:
    """Download `url` to `dest`, resuming `dest.part`; verify size and sha256.

    A verified archive is never fetched again. One that fails verification is moved to
    `<name>.bad` and never extracted.
    """
    dest = Path(dest)
    if is_verified(dest, size, sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():  # complete but unmarked (marker lost or file touched): re-hash it
        os.replace(dest, part)
    for attempt in range(retries + 1):
        try:
            _download_once(url, part, size, timeout)
            break
        except (OSError, http.client.HTTPException) as exc:  # dropped connection, timeout
            if attempt == retries:
                raise DownloadError(f"downloading {url} failed after {retries + 1} attempts "
                                    f"({exc}); {part} is kept and the next run resumes it") from exc
            tqdm.write(f"download interrupted ({exc}); resuming from byte "
                       f"{part.stat().st_size if part.exists() else 0}")
            time.sleep(RETRY_WAIT_S * (attempt + 1))
    got_size = part.stat().st_size
    if got_size != size:
        bad = _set_aside(part)
        raise DownloadError(f"{url}: got {got_size} bytes, expected {size} (data.ljspeech.size); "
                            f"moved to {bad}, nothing extracted")
    got = sha256_file(part, progress=True)
    if got != sha256:
        bad = _set_aside(part)
        raise DownloadError(f"{url}: sha256 {got} does not match data.ljspeech.sha256 {sha256}; "
                            f"the archive was moved to {bad} and not extracted. Check the url and "
                            f"checksum, then re-run to download it again")
    os.replace(part, dest)
    _mark_verified(dest, size, sha256)
    return dest


class _CountingReader:
    """A file wrapper that advances a progress bar by the bytes read through it."""

    def __init__(self, f, bar: tqdm):
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        block = self.f.read(n)
        self.bar.update(len(block))
        return block


def extract_archive(archive: Path, out: Path) -> dict:
    """Stream-extract an LJSpeech-format .tar.bz2 (sequential read) into `out`, atomically."""
    with staged_dir(out) as tmp:
        unpack = tmp / ".unpack"
        with open(archive, "rb") as f, tqdm(total=archive.stat().st_size, unit="B", unit_scale=True,
                                            desc=f"extract {archive.name}") as bar:
            try:
                with tarfile.open(fileobj=_CountingReader(f, bar), mode="r|bz2") as tar:
                    for member in tar:
                        tar.extract(member, unpack, filter="data")
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise CorpusError(f"{archive} could not be extracted ({exc}); delete it and "
                                  f"its .verified marker to download again") from exc
        roots = [p.parent for p in unpack.rglob(METADATA)]
        if len(roots) != 1:
            raise CorpusError(f"{archive} holds {len(roots)} {METADATA} files; expected one "
                              f"(LJSpeech layout: <root>/metadata.csv and <root>/wavs/)")
        check_layout(roots[0])
        for item in roots[0].iterdir():
            os.replace(item, tmp / item.name)
        shutil.rmtree(unpack)
        n = len(read_metadata(tmp / METADATA))
    return {"corpus": "ljspeech", "utterances": n}
