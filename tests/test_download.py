"""Stage `download`: LJSpeech archive over a loopback HTTP server, folder and builtin corpora."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stages.download import run
from tts import builtin_corpus, corpus, download
from tts.config import BuiltinCorpusConfig, DataConfig, LJSpeechConfig

SR = 22050
IDS = ("LJ001-0001", "LJ001-0002", "LJ001-0003")
ARCHIVE = "LJSpeech-1.1.tar.bz2"


def _wav_bytes(seed: int, seconds: float = 0.6) -> bytes:
    noise = np.random.default_rng(seed).normal(0, 0.1, int(SR * seconds))  # incompressible
    buf = io.BytesIO()
    sf.write(buf, noise.astype(np.float32), SR, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _make_archive() -> bytes:
    """A small .tar.bz2 laid out like LJSpeech 1.1: LJSpeech-1.1/{metadata.csv,wavs/}."""
    meta = "".join(f"{uid}|Text number {i}.|Text number {i}.\n" for i, uid in enumerate(IDS))
    files = {"LJSpeech-1.1/metadata.csv": meta.encode(), "LJSpeech-1.1/README": b"test\n"}
    files.update({f"LJSpeech-1.1/wavs/{uid}.wav": _wav_bytes(i) for i, uid in enumerate(IDS)})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """127.0.0.1 HTTP server of one file with Range support; can drop the first connection."""

    def __init__(self, payload: bytes, drop_after: int | None = None):
        self.payload, self.drop_after, self.ranges = payload, drop_after, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
                body = outer.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drop_after is not None:  # promise everything, send part, hang up
                    body, outer.drop_after = body[:outer.drop_after], None
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{ARCHIVE}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def archive() -> bytes:
    return _make_archive()


@pytest.fixture
def serve():
    servers = []

    def start(payload, drop_after=None):
        servers.append(Server(payload, drop_after))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _lj(server: Server, payload: bytes, tmp_path: Path, sha256: str | None = None) -> DataConfig:
    lj = LJSpeechConfig(url=server.url, size=len(payload), download_dir="downloads",
                        sha256=sha256 or hashlib.sha256(payload).hexdigest())
    return DataConfig(corpus="ljspeech", ljspeech=lj)


def _check_corpus(out: Path) -> None:
    rows = corpus.read_metadata(out / "metadata.csv")
    assert [r.id for r in rows] == list(IDS)
    for i, uid in enumerate(IDS):
        assert (out / "wavs" / f"{uid}.wav").read_bytes() == _wav_bytes(i)


def test_dropped_connection_resumes_with_range(archive, serve, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    half = len(archive) // 2
    server = serve(archive, drop_after=half)
    summary = run(_lj(server, archive, tmp_path), tmp_path / "corpus", root=tmp_path)
    assert server.ranges == [None, f"bytes={half}-"]  # second request resumed the .part
    assert summary["utterances"] == len(IDS)
    _check_corpus(tmp_path / "corpus")
    assert (tmp_path / "downloads" / ARCHIVE).read_bytes() == archive
    assert not (tmp_path / "downloads" / f"{ARCHIVE}.part").exists()


def test_interrupted_run_leaves_part_that_next_run_resumes(archive, serve, tmp_path):
    third = len(archive) // 3
    server = serve(archive, drop_after=third)
    dest = tmp_path / ARCHIVE
    sha = hashlib.sha256(archive).hexdigest()
    with pytest.raises(download.DownloadError, match="resumes"):
        download.fetch_archive(server.url, dest, len(archive), sha, retries=0)
    assert (tmp_path / f"{ARCHIVE}.part").stat().st_size == third
    assert not dest.exists()
    download.fetch_archive(server.url, dest, len(archive), sha, retries=0)
    assert server.ranges == [None, f"bytes={third}-"]
    assert dest.read_bytes() == archive


def test_wrong_checksum_is_clear_and_archive_not_used(archive, serve, tmp_path):
    server = serve(archive)
    data = _lj(server, archive, tmp_path, sha256="0" * 64)
    with pytest.raises(download.DownloadError, match=f"sha256.*{ARCHIVE}.bad.*not extracted"):
        run(data, tmp_path / "corpus", root=tmp_path)
    assert not (tmp_path / "corpus").exists()
    assert not (tmp_path / "downloads" / ARCHIVE).exists()  # never promoted, never extracted
    assert (tmp_path / "downloads" / f"{ARCHIVE}.bad").read_bytes() == archive


def test_verified_archive_is_not_downloaded_again(archive, serve, tmp_path):
    server = serve(archive)
    data = _lj(server, archive, tmp_path)
    run(data, tmp_path / "corpus", root=tmp_path)
    assert len(server.ranges) == 1
    run(data, tmp_path / "corpus2", root=tmp_path)
    assert len(server.ranges) == 1
    _check_corpus(tmp_path / "corpus2")
    (tmp_path / "downloads" / f"{ARCHIVE}.verified").unlink()  # marker lost: re-hash, no fetch
    run(data, tmp_path / "corpus3", root=tmp_path)
    assert len(server.ranges) == 1
    assert (tmp_path / "downloads" / f"{ARCHIVE}.verified").is_file()


def test_failed_extraction_leaves_no_corpus(archive, tmp_path):
    broken = tmp_path / ARCHIVE
    broken.write_bytes(archive[: len(archive) // 2])  # truncated bz2
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "keep").write_text("previous output")
    with pytest.raises(corpus.CorpusError, match=f"{ARCHIVE} could not be extracted"):
        download.extract_archive(broken, out)
    assert (out / "keep").read_text() == "previous output"  # earlier output untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE, "corpus"]  # no staging left


def _folder(root: Path) -> Path:
    src = root / "my-corpus"
    (src / "wavs").mkdir(parents=True)
    (src / "metadata.csv").write_text("a1|One.|One.\na2|Two.|Two.\n")
    for i, uid in enumerate(("a1", "a2")):
        (src / "wavs" / f"{uid}.wav").write_bytes(_wav_bytes(i))
    return src


def test_folder_corpus_is_copied(tmp_path):
    src = _folder(tmp_path)
    summary = run(DataConfig(corpus="my-corpus"), tmp_path / "corpus", root=tmp_path)
    assert summary["utterances"] == 2
    copied = tmp_path / "corpus" / "metadata.csv"
    assert copied.read_bytes() == (src / "metadata.csv").read_bytes()
    assert (tmp_path / "corpus" / "wavs" / "a2.wav").read_bytes() == _wav_bytes(1)


def test_folder_corpus_errors_name_what_is_missing(tmp_path):
    (_folder(tmp_path) / "metadata.csv").unlink()
    with pytest.raises(corpus.CorpusError, match="my-corpus.*missing metadata.csv"):
        run(DataConfig(corpus="my-corpus"), tmp_path / "corpus", root=tmp_path)
    with pytest.raises(corpus.CorpusError, match="did you mean 'builtin'"):
        run(DataConfig(corpus="bultin"), tmp_path / "corpus", root=tmp_path)
    assert not (tmp_path / "corpus").exists()


def test_malformed_metadata_names_file_and_line(tmp_path):
    src = _folder(tmp_path)
    (src / "metadata.csv").write_text("a1|One.|One.\njust text without columns\n")
    with pytest.raises(corpus.CorpusError, match=r"metadata.csv:2"):
        run(DataConfig(corpus=str(src)), tmp_path / "corpus")


def test_mini_ljspeech_folder_accepted(mini_corpus, tmp_path):
    rel = Path("..") / "shared" / "data" / "ljspeech-mini"  # as users write it in params.yaml
    summary = run(DataConfig(corpus=str(rel)), tmp_path / "corpus",
                  root=corpus.REPO_ROOT)
    assert summary["utterances"] == 24
    assert len(list((tmp_path / "corpus" / "wavs").glob("*.wav"))) == 24


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_builtin_is_byte_identical_and_well_formed(engine, tmp_path):
    from tts.text import normalize

    cfg = BuiltinCorpusConfig(n_utterances=3, seed=7, engine=engine, workers=1)
    run(DataConfig(builtin=cfg), tmp_path / "a")  # piper: one process, then two workers
    run(DataConfig(builtin=dataclasses.replace(cfg, workers=2)), tmp_path / "b")
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert len(_hashes(tmp_path / "a")) == 4  # metadata.csv + 3 wavs
    rows = corpus.read_metadata(tmp_path / "a" / "metadata.csv")
    prompts = builtin_corpus.read_prompts()
    for r in rows:
        assert r.text in prompts and r.normalized == normalize(r.text)
        info = sf.info(str(tmp_path / "a" / "wavs" / f"{r.id}.wav"))
        assert (info.samplerate, info.subtype, info.channels) == (SR, "PCM_16", 1)
        assert info.frames > SR // 2


def test_builtin_plan_ids_and_jitter():
    cfg = BuiltinCorpusConfig(n_utterances=5, seed=3)
    # more utterances than prompts: second takes
    plan = builtin_corpus.builtin_plan(cfg, n_prompts=3)
    ids = [uid for uid, *_ in plan]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert sum(uid.startswith("BI002-") for uid in ids) == 2
    assert {p for _, p, _, _ in plan} == {0, 1, 2}
    for uid, prompt, rate, pitch in plan:
        assert uid.endswith(f"-{prompt + 1:04d}")
        assert abs(rate - cfg.rate_wpm) <= cfg.rate_jitter_wpm
        assert abs(pitch - cfg.pitch) <= cfg.pitch_jitter
    # an utterance's id, rate and pitch do not depend on how many others are made
    fewer = builtin_corpus.builtin_plan(BuiltinCorpusConfig(n_utterances=2, seed=3), n_prompts=3)
    assert set(fewer) <= set(plan)
    assert len({(r, p) for _, _, r, p in plan}) > 1  # jitter varies


def test_builtin_engines_speak_the_same_prompts(tmp_path):
    piper, espeak = (BuiltinCorpusConfig(n_utterances=2, engine=e, workers=1)
                     for e in ("piper", "espeak"))
    run(DataConfig(builtin=piper), tmp_path / "p")
    run(DataConfig(builtin=espeak), tmp_path / "e")
    assert ((tmp_path / "p" / "metadata.csv").read_bytes()
            == (tmp_path / "e" / "metadata.csv").read_bytes())
    assert _hashes(tmp_path / "p") != _hashes(tmp_path / "e")


def test_builtin_resamples_to_configured_rate(tmp_path):
    cfg = BuiltinCorpusConfig(n_utterances=1, sample_rate=16000, workers=1)
    run(DataConfig(builtin=cfg), tmp_path / "c")
    (wav,) = (tmp_path / "c" / "wavs").glob("*.wav")
    assert sf.info(str(wav)).samplerate == 16000
