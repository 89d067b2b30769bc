"""LJSpeech-format corpora: reading, the builtin synthesized corpus, LJSpeech download, splits.

A corpus is a folder with `metadata.csv` (`id|text|normalized`, no header) and
`wavs/<id>.wav`, the layout of LJSpeech 1.1 (Ito & Johnson, 2017). Three sources make one:
`synthesize_builtin` (Piper's VITS voice or eSpeak NG, offline), `fetch_archive` +
`extract_archive` (a verified, resumable download of the LJSpeech tarball) and
`copy_folder` (any folder in that layout).
Each writes into a staging folder beside its output and renames it into place at the end,
so a failure never leaves a half-written corpus.

`check_utterance` and `assign_splits` implement the `split` stage: every utterance is kept
or dropped with a reason, and the kept ones are ranked by a hash of (seed, id), so the
split depends on the corpus alone, never on the order files are listed in.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPTS = Path(__file__).with_name("prompts.txt")
METADATA = "metadata.csv"
WAVS = "wavs"
BUILTIN_PREFIX = "BI"  # builtin ids: BI<take:03d>-<prompt:04d>, like LJSpeech's LJ001-0001
PCM_16 = "PCM_16"
INT16_SCALE = 32768.0
CHUNK_BYTES = 1 << 20  # download / hash / copy block
DOWNLOAD_RETRIES = 5  # reconnections (each resumes with an HTTP Range request)
RETRY_WAIT_S = 2.0  # seconds before reconnection k is k * RETRY_WAIT_S
TIMEOUT_S = 60.0  # socket timeout of one connection
SILENT_PEAK = 1e-4  # peak |amplitude| (full scale 1) at or below which audio counts as silent
SPLIT_HEADER = ("id", "text", "normalized", "phonemes", "duration")
DROPPED_HEADER = ("id", "reason", "detail")
SPLITS = ("train", "val", "test")
AUDIO_ERRORS = (RuntimeError, ValueError, sf.SoundFileError)  # what libsndfile raises on bad files


class CorpusError(ValueError):
    """A corpus problem; the message names the file or utterance and what to do."""


class DownloadError(RuntimeError):
    """A download that failed or did not verify; the message names the file."""


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str
    normalized: str


# ----------------------------------------------------------------------------- metadata


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


# ------------------------------------------------------------------------------ builtin


def read_prompts(path: Path = PROMPTS) -> list[str]:
    """One prompt per line; blank lines skipped."""
    lines = [" ".join(s.split()) for s in Path(path).read_text(encoding="utf-8").splitlines()]
    prompts = [s for s in lines if s]
    if not prompts:
        raise CorpusError(f"{path} holds no prompts")
    return prompts


def builtin_plan(cfg, n_prompts: int) -> list[tuple[str, int, int, int]]:
    """(id, prompt index, rate, pitch) per utterance, a pure function of cfg and n_prompts.

    Prompts are drawn in one seeded permutation (taken again as take 2, 3, ... when more
    utterances than prompts are asked for); each utterance's rate and pitch jitter come from
    its own generator seeded by (seed, take, prompt), so it never depends on the others.
    """
    order = np.random.default_rng(cfg.seed).permutation(n_prompts)
    plan = []
    for i in range(cfg.n_utterances):
        take, prompt = i // n_prompts + 1, int(order[i % n_prompts])
        rng = np.random.default_rng([cfg.seed, take, prompt])
        rate = cfg.rate_wpm + int(rng.integers(-cfg.rate_jitter_wpm, cfg.rate_jitter_wpm + 1))
        pitch = cfg.pitch + int(rng.integers(-cfg.pitch_jitter, cfg.pitch_jitter + 1))
        plan.append((f"{BUILTIN_PREFIX}{take:03d}-{prompt + 1:04d}", prompt, rate, pitch))
    return sorted(plan)


def resample_int16(samples: np.ndarray, orig: int, target: int) -> np.ndarray:
    if orig == target:
        return samples
    import torch
    import torchaudio.functional as AF

    x = AF.resample(torch.from_numpy(samples.astype(np.float32) / INT16_SCALE), orig, target)
    x = np.clip(np.round(x.numpy() * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1)
    return x.astype(np.int16)


def _builtin_key(uid: str) -> tuple[int, int]:
    """(take, prompt number) of a builtin id BI<take>-<prompt>."""
    take, prompt = uid.removeprefix(BUILTIN_PREFIX).split("-")
    return int(take), int(prompt)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (rounded, clipped)."""
    x = np.round(np.asarray(samples, np.float64) * INT16_SCALE)
    return np.clip(x, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


def _espeak_many(cfg, jobs: list[tuple[str, int, int]]) -> Iterator[tuple[np.ndarray, int]]:
    from tts import espeak

    for text, rate, pitch in jobs:
        yield espeak.synthesize(text, cfg.voice, rate, pitch), espeak.sample_rate()


def _piper_many(cfg, jobs: list[tuple[str, int, int]]) -> Iterator[tuple[np.ndarray, int]]:
    from tts import piper_voice

    for samples in piper_voice.speak_many(cfg, jobs, cfg.workers):
        yield to_int16(samples), piper_voice.SAMPLE_RATE


def synthesize_builtin(cfg, out: Path, text_cfg=None, prompts_path: Path = PROMPTS) -> dict:
    """Speak `cfg.n_utterances` prompts into an LJSpeech-layout `out` with `cfg.engine`:
    Piper's VITS voice (`tts.piper_voice`) or eSpeak NG (`tts.espeak`).

    Either speaks the normalized text (`tts.text.normalize` with `text_cfg`), so the sound
    matches what the phonemizer reads ("1800" is not read two ways); `text` keeps the
    prompt as written. Both are byte-identical for the same params.
    """
    from tts.text import DEFAULT_CONFIG, normalize

    text_cfg = text_cfg or DEFAULT_CONFIG
    prompts = read_prompts(prompts_path)
    plan = builtin_plan(cfg, len(prompts))
    normalized = [normalize(prompts[prompt], text_cfg) for _, prompt, _, _ in plan]
    if cfg.engine == "piper":
        audio = _piper_many(cfg, [(text, *_builtin_key(uid))
                                  for text, (uid, *_) in zip(normalized, plan)])
    else:
        audio = _espeak_many(cfg, [(text, rate, pitch)
                                   for text, (_, _, rate, pitch) in zip(normalized, plan)])
    rows, seconds = [], 0.0
    with staged_dir(out) as tmp:
        (tmp / WAVS).mkdir()
        for (uid, prompt, _, _), text, (samples, rate) in tqdm(
                zip(plan, normalized, audio), total=len(plan), desc=f"synthesize ({cfg.engine})",
                unit="utt"):
            if samples.size == 0:
                raise CorpusError(f"{cfg.engine} produced no audio for prompt {prompt + 1} of "
                                  f"{prompts_path}: {prompts[prompt]!r}; fix or remove that line")
            samples = resample_int16(samples, rate, cfg.sample_rate)
            write_wav(tmp / WAVS / f"{uid}.wav", samples, cfg.sample_rate)
            rows.append(Utterance(uid, prompts[prompt], text))
            seconds += samples.size / cfg.sample_rate
        write_metadata(tmp / METADATA, rows)
    return {"corpus": "builtin", "engine": cfg.engine, "utterances": len(rows),
            "hours": seconds / 3600}


# ----------------------------------------------------------------------------- download


def sha256_file(path: Path, desc: str | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=desc or f"sha256 {path.name}", leave=False) as bar:
        while block := f.read(CHUNK_BYTES):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


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
            while block := resp.read(CHUNK_BYTES):
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
    got = sha256_file(part)
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


# -------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitEntry:
    id: str
    text: str
    normalized: str
    phonemes: tuple[str, ...]
    duration: float  # seconds
    sample_rate: int = 0  # of the wav (not written to the lists; 0 when read back)
    channels: int = 0  # of the wav (> 1: down-mixed by features; 0 when read back)


def check_utterance(utt: Utterance, wavs: Path, cfg, text_cfg) -> SplitEntry | tuple[str, str]:
    """Kept `SplitEntry`, or a dropped (reason, detail); cheap checks first, decoding last.

    The entry's `normalized` is `tts.text.normalize` of the corpus' normalized column (what
    `phonemize` reads; LJSpeech's column keeps abbreviations such as "Mr.").
    """
    from tts.text import UnspeakableTextError, normalize, phonemize

    wav = wavs / f"{utt.id}.wav"
    if not wav.is_file():
        return "missing_wav", f"{wav} does not exist"
    try:
        info = sf.info(str(wav))
    except AUDIO_ERRORS as exc:
        return "unreadable_audio", f"{wav}: {exc}"
    if info.frames <= 0 or info.samplerate <= 0:
        return "empty_audio", f"{wav} has no samples"
    duration = info.frames / info.samplerate
    if duration < cfg.min_duration:
        return "too_short", f"{duration:.3f} s < split.min_duration {cfg.min_duration} s"
    if duration > cfg.max_duration:
        return "too_long", f"{duration:.3f} s > split.max_duration {cfg.max_duration} s"
    if not utt.normalized.strip():
        return "empty_text", "the transcript is empty"
    try:
        normalized = normalize(utt.normalized, text_cfg)
        phonemes = tuple(phonemize(normalized, text_cfg))
    except UnspeakableTextError as exc:
        return "unspeakable_text", str(exc)
    if len(phonemes) > cfg.max_phonemes:
        return "too_many_phonemes", f"{len(phonemes)} > split.max_phonemes {cfg.max_phonemes}"
    try:  # decoded last, only for utterances that passed everything else
        samples, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    except AUDIO_ERRORS as exc:
        return "unreadable_audio", f"{wav}: {exc}"
    if samples.size == 0:
        return "empty_audio", f"{wav}: no samples could be decoded"
    bad = int(samples.size - np.isfinite(samples).sum())
    if bad:
        return "non_finite_audio", f"{wav}: {bad} NaN/inf samples; re-export the file"
    if float(np.abs(samples).max()) <= SILENT_PEAK:
        return "silent_audio", f"{wav}: peak amplitude <= {SILENT_PEAK}"
    duration = len(samples) / info.samplerate  # decoded length: a truncated file is shorter
    return SplitEntry(utt.id, utt.text, normalized, phonemes, duration, info.samplerate,
                      samples.shape[1])


# ------------------------------------------------------------------- transcript check

_WORKER_RECOGNIZER = None


def _init_transcript_worker(kind: str) -> None:
    global _WORKER_RECOGNIZER
    import torch

    torch.set_num_threads(1)
    from tts.recognizer import load_recognizer

    _WORKER_RECOGNIZER = load_recognizer(kind, threads=1)


def _transcript_job(job: tuple[str, str, str]) -> tuple[str, float, str]:
    """(id, CER of the recognizer against the transcript, what it heard)."""
    from tts.recognizer import error_rates

    uid, wav, text = job
    samples, rate = sf.read(wav, dtype="float32", always_2d=True)
    heard = _WORKER_RECOGNIZER.transcribe(samples.mean(axis=1), rate)
    return uid, error_rates(text, heard)["cer"], heard


def transcript_errors(entries: list[SplitEntry], wavs: Path, kind: str,
                      workers: int = 0) -> dict[str, tuple[float, str]]:
    """{id: (CER, heard)}: the recognizer on every entry's audio against its transcript,
    in `workers` processes (0 = all cores), each loading its own recognizer."""
    import multiprocessing as mp

    jobs = [(e.id, str(wavs / f"{e.id}.wav"), e.text) for e in entries]
    workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    out = {}
    bar = tqdm(total=len(jobs), desc="transcripts", unit="utt")
    if workers == 1:
        _init_transcript_worker(kind)
        results = map(_transcript_job, jobs)
        for uid, cer, heard in results:
            out[uid] = (cer, heard)
            bar.update()
    else:  # fork: workers start in milliseconds; each loads the recognizer once
        method = "fork" if "fork" in mp.get_all_start_methods() else None
        with mp.get_context(method).Pool(workers, _init_transcript_worker, (kind,)) as pool:
            for uid, cer, heard in pool.imap_unordered(_transcript_job, jobs, chunksize=4):
                out[uid] = (cer, heard)
                bar.update()
    bar.close()
    return out


def split_rank(uid: str, seed: int) -> str:
    """The sort key that places an utterance: a hash of (seed, id), independent of order."""
    return hashlib.sha256(f"{seed}:{uid}".encode()).hexdigest()


def assign_splits(entries: list[SplitEntry], cfg) -> dict[str, list[SplitEntry]]:
    """val: the `val_count` lowest ranks, test: the next `test_count`, train: the rest."""
    held = cfg.val_count + cfg.test_count
    if len(entries) <= held:
        raise CorpusError(f"only {len(entries)} usable utterances, but split.val_count + "
                          f"split.test_count = {held} and training needs at least one more; "
                          f"lower them or use a bigger corpus")
    ranked = sorted(entries, key=lambda e: (split_rank(e.id, cfg.seed), e.id))
    parts = {"val": ranked[:cfg.val_count], "test": ranked[cfg.val_count:held],
             "train": ranked[held:]}
    return {name: sorted(parts[name], key=lambda e: e.id) for name in SPLITS}


def _tsv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Tab-separated; a field holding a quote is quoted CSV-style (pandas' default reads it)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_split(path: Path, entries: list[SplitEntry]) -> None:
    _tsv(path, SPLIT_HEADER, [(e.id, e.text, e.normalized, " ".join(e.phonemes),
                               f"{e.duration:.4f}") for e in entries])


def write_dropped(path: Path, dropped: list[tuple[str, str, str]]) -> None:
    _tsv(path, DROPPED_HEADER, [(uid, reason, " ".join(detail.split()))
                                for uid, reason, detail in dropped])


def read_split(path: Path) -> list[SplitEntry]:
    """Read a `train.tsv` / `val.tsv` / `test.tsv` written by the split stage."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f, delimiter="\t"))
    if not lines or tuple(lines[0]) != SPLIT_HEADER:
        raise CorpusError(f"{path}: not a split list (header must be {' '.join(SPLIT_HEADER)}); "
                          f"re-run `dvc repro split`")
    entries = []
    for n, cols in enumerate(lines[1:], 2):
        if len(cols) != len(SPLIT_HEADER):
            raise CorpusError(f"{path}:{n}: expected {len(SPLIT_HEADER)} tab-separated fields")
        uid, text, normalized, phonemes, duration = cols
        entries.append(SplitEntry(uid, text, normalized, tuple(phonemes.split()), float(duration)))
    return entries


def split_corpus(corpus: Path, out: Path, cfg, sample_rate: int, text_cfg=None) -> dict:
    """Check every utterance of `corpus`, split the kept ones, write `out` atomically.

    `sample_rate` is the feature contract's rate: other rates are kept (features resample)
    and counted in the report. `text_cfg`: `tts.text.TextConfig` (default when None).
    """
    from tts.text import DEFAULT_CONFIG

    text_cfg = text_cfg or DEFAULT_CONFIG
    corpus = Path(corpus)
    check_layout(corpus)
    rows = read_metadata(corpus / METADATA)
    kept, dropped = [], []
    for utt in tqdm(sorted(rows, key=lambda u: u.id), desc="split", unit="utt"):
        result = check_utterance(utt, corpus / WAVS, cfg, text_cfg)
        if isinstance(result, SplitEntry):
            kept.append(result)
        else:
            dropped.append((utt.id, *result))
    transcript_report = None
    if cfg.transcript_recognizer != "none" and kept:
        started = time.perf_counter()
        errors = transcript_errors(kept, corpus / WAVS, cfg.transcript_recognizer, cfg.workers)
        elapsed = time.perf_counter() - started
        hours = sum(e.duration for e in kept) / 3600
        mismatched = {uid for uid, (cer, _) in errors.items() if cer > cfg.max_transcript_cer}
        for uid in sorted(mismatched):
            cer, heard = errors[uid]
            dropped.append((uid, "transcript_mismatch",
                            f"recognizer CER {cer:.2f} > split.max_transcript_cer "
                            f"{cfg.max_transcript_cer}: heard {heard!r}"))
        kept = [e for e in kept if e.id not in mismatched]
        cers = np.array([cer for cer, _ in errors.values()])
        transcript_report = {
            "recognizer": cfg.transcript_recognizer, "checked": len(errors),
            "max_cer": cfg.max_transcript_cer, "cer_mean": round(float(cers.mean()), 4),
            "cer_median": round(float(np.median(cers)), 4),
            "cer_p90": round(float(np.percentile(cers, 90)), 4),
            "wall_seconds": round(elapsed, 1), "audio_hours": round(hours, 4),
            "wall_seconds_per_audio_hour": round(elapsed / max(hours, 1e-9), 1),
        }
    by_reason: dict[str, int] = {}
    for _, reason, _ in dropped:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    if not kept:
        examples = "; ".join(f"{uid}: {reason} ({detail})" for uid, reason, detail in dropped[:3])
        raise CorpusError(f"{corpus}: none of {len(rows)} utterances is usable "
                          f"(dropped by reason: {by_reason}); e.g. {examples}")
    parts = assign_splits(kept, cfg)
    listed = {u.id for u in rows}
    report = {
        "utterances": len(rows),
        "kept": len(kept),
        "dropped": len(dropped),
        "dropped_by_reason": dict(sorted(by_reason.items())),
        "counts": {name: len(parts[name]) for name in SPLITS},
        "hours": {name: round(sum(e.duration for e in parts[name]) / 3600, 6) for name in SPLITS},
        "resampled": sum(e.sample_rate != sample_rate for e in kept),  # by features, to sample_rate
        "downmixed": sum(e.channels > 1 for e in kept),  # multi-channel, mixed to mono by features
        "unlisted_wavs": sum(p.stem not in listed for p in (corpus / WAVS).glob("*.wav")),
        "seed": cfg.seed,
    }
    if transcript_report:
        report["transcript_check"] = transcript_report
    with staged_dir(out) as tmp:
        for name in SPLITS:
            write_split(tmp / f"{name}.tsv", parts[name])
        write_dropped(tmp / "dropped.tsv", dropped)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
