"""Stage `split`: drop reasons, order-independent seeded split, report, real LJSpeech data."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from stages.split import run
from tts import corpus, split_lists
from tts.config import SplitConfig

SR = 22050
CFG = SplitConfig(seed=5, val_count=2, test_count=3, min_duration=0.5, max_duration=3.0,
                  max_phonemes=60, transcript_recognizer="none")  # tones: nothing to hear
GOOD = [f"G{i:02d}" for i in range(12)]
SENTENCES = ["The cat sat on the mat.", 'He said, "Good morning!" and left.',
             "Birds fly south in winter.", "Please bring the blue book."]
# id -> (text, audio or None for no wav, expected reason); audio: seconds of tone / raw bytes
BAD = {
    "B-missing": ("Where is my file?", None, "missing_wav"),
    "B-garbage": ("This file is garbage.", b"not a wav file at all", "unreadable_audio"),
    "B-empty": ("No samples here.", 0.0, "empty_audio"),
    "B-silent": ("Nothing but silence.", "silent", "silent_audio"),
    "B-nan": ("A broken float file.", "nan", "non_finite_audio"),
    "B-short": ("Too quick.", 0.2, "too_short"),
    "B-long": ("This one goes on and on.", 4.0, "too_long"),
    "B-notext": ("", 1.0, "empty_text"),
    "B-symbols": ("... --- !!!", 1.0, "unspeakable_text"),
    "B-wordy": (" ".join(["The quick brown fox jumps over the lazy dog."] * 4), 2.0,
                "too_many_phonemes"),
}


def _tone(seconds: float, sr: int = SR, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(wavs: Path, uid: str, audio, sr: int = SR) -> None:
    path = wavs / f"{uid}.wav"
    if isinstance(audio, bytes):
        path.write_bytes(audio)
    elif audio == "silent":
        sf.write(path, np.zeros(SR, np.float32), sr, subtype="PCM_16")
    elif audio == "nan":
        samples = _tone(1.0, sr)
        samples[100:110] = np.nan
        sf.write(path, samples, sr, subtype="FLOAT")
    elif audio == "stereo":
        sf.write(path, np.stack([_tone(1.0, sr)] * 2, axis=1), sr, subtype="PCM_16")
    elif audio is not None:
        sf.write(path, _tone(audio, sr), sr, subtype="PCM_16")


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    root = tmp_path / "corpus"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for i, uid in enumerate(GOOD):
        sr = 16000 if i == 0 else SR  # another rate is kept: features resample it
        # a stereo file is kept too: features mix it down
        _write(root / "wavs", uid, "stereo" if i == 1 else 0.6 + 0.1 * i, sr)
        text = SENTENCES[i % len(SENTENCES)]
        lines.append(f"{uid}|{text}|{text}")
    for uid, (text, audio, _) in BAD.items():
        _write(root / "wavs", uid, audio)
        lines.append(f"{uid}|{text}|{text}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_drops_every_bad_utterance_with_its_reason(corpus_dir, tmp_path):
    report = run(CFG, SR, corpus_dir=corpus_dir, out=tmp_path / "split")
    dropped = pd.read_csv(tmp_path / "split" / "dropped.tsv", sep="\t", keep_default_na=False)
    assert dict(zip(dropped["id"], dropped["reason"])) == {k: v[2] for k, v in BAD.items()}
    assert all(dropped["detail"].str.len() > 0)
    assert report["dropped"] == len(BAD) and report["kept"] == len(GOOD)
    assert report["counts"] == {"train": len(GOOD) - 5, "val": 2, "test": 3}
    assert report["resampled"] == 1 and report["downmixed"] == 1
    assert "transcript_check" not in report  # off unless asked for
    assert sum(report["dropped_by_reason"].values()) == len(BAD)
    on_disk = json.loads((tmp_path / "split" / "report.json").read_text())
    assert on_disk == report


def test_lists_have_contract_columns(corpus_dir, tmp_path):
    from tts.text import phonemize

    run(CFG, SR, corpus_dir=corpus_dir, out=tmp_path / "split")
    seen = []
    for name in split_lists.SPLITS:
        table = pd.read_csv(tmp_path / "split" / f"{name}.tsv", sep="\t", dtype={"id": str},
                            keep_default_na=False)  # pandas' default quoting reads our quotes
        assert tuple(table.columns) == split_lists.SPLIT_HEADER
        entries = split_lists.read_split(tmp_path / "split" / f"{name}.tsv")
        assert [e.id for e in entries] == list(table["id"]) == sorted(table["id"])
        assert list(table["text"]) == [e.text for e in entries]
        for e in entries:
            assert e.phonemes == tuple(phonemize(e.normalized))
        seen += [e.id for e in entries]
    assert sorted(seen) == GOOD
    hours = json.loads((tmp_path / "split" / "report.json").read_text())["hours"]
    train = split_lists.read_split(tmp_path / "split" / "train.tsv")
    assert hours["train"] == pytest.approx(sum(e.duration for e in train) / 3600, abs=1e-5)
    g03 = next(e for e in train + split_lists.read_split(tmp_path / "split" / "val.tsv")
               + split_lists.read_split(tmp_path / "split" / "test.tsv") if e.id == "G03")
    assert g03.duration == pytest.approx(0.9, abs=1e-3)
    assert '"Good morning!"' in " ".join(e.text for e in train + split_lists.read_split(
        tmp_path / "split" / "val.tsv") + split_lists.read_split(tmp_path / "split" / "test.tsv"))


def test_split_ignores_listing_order_and_follows_seed(corpus_dir, tmp_path):
    run(CFG, SR, corpus_dir=corpus_dir, out=tmp_path / "a")
    meta = corpus_dir / "metadata.csv"
    lines = meta.read_text().splitlines()
    random.Random(0).shuffle(lines)
    meta.write_text("\n".join(lines) + "\n")
    run(CFG, SR, corpus_dir=corpus_dir, out=tmp_path / "b")
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")
    other = SplitConfig(**{**CFG.__dict__, "seed": CFG.seed + 1})
    run(other, SR, corpus_dir=corpus_dir, out=tmp_path / "c")
    assert (tmp_path / "a" / "val.tsv").read_bytes() != (tmp_path / "c" / "val.tsv").read_bytes()


def test_too_small_and_unusable_corpora_are_clear_errors(corpus_dir, tmp_path):
    big = SplitConfig(**{**CFG.__dict__, "val_count": 6, "test_count": 6})
    with pytest.raises(corpus.CorpusError, match="12 usable.*val_count.*test_count"):
        run(big, SR, corpus_dir=corpus_dir, out=tmp_path / "split")
    assert not (tmp_path / "split").exists()
    lines = [ln for ln in (corpus_dir / "metadata.csv").read_text().splitlines()
             if ln.startswith("B-")]
    (corpus_dir / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(corpus.CorpusError, match=f"none of {len(BAD)} utterances is usable"):
        run(CFG, SR, corpus_dir=corpus_dir, out=tmp_path / "split")


def test_mini_ljspeech_split(mini_corpus, tmp_path):
    cfg = SplitConfig(val_count=2, test_count=2, max_duration=12.0, max_phonemes=300)
    report = run(cfg, SR, corpus_dir=mini_corpus, out=tmp_path / "split")
    assert report["utterances"] == 24 and report["resampled"] == 0
    assert report["kept"] + report["dropped"] == 24 and report["kept"] >= 20
    assert 0.03 < sum(report["hours"].values()) < 0.05  # about 2.7 minutes
    for name in split_lists.SPLITS:
        for e in split_lists.read_split(tmp_path / "split" / f"{name}.tsv"):
            assert e.phonemes[0] == e.phonemes[-1] == "sil"
            wav = mini_corpus / "wavs" / f"{e.id}.wav"
            assert e.duration == pytest.approx(sf.info(str(wav)).duration, abs=1e-3)


def test_builtin_corpus_splits(tiny_builtin_corpus, tmp_path):
    src = tmp_path / "corpus"
    shutil.copytree(tiny_builtin_corpus, src)
    report = run(SplitConfig(val_count=1, test_count=1), SR, corpus_dir=src,
                 out=tmp_path / "split")
    assert report["dropped"] == 0 and report["kept"] == 6


def test_transcript_check_drops_mislabeled_clips(mini_corpus, tmp_path):
    """Two real clips with swapped transcripts are dropped with the recognizer's words; the
    rest are confirmed and kept (the check runs in worker processes)."""
    rows = corpus.read_metadata(mini_corpus / corpus.METADATA)
    chosen = sorted(rows, key=lambda u: sf.info(str(mini_corpus / "wavs" / f"{u.id}.wav"))
                    .duration)[:6]
    root = tmp_path / "corpus"
    (root / "wavs").mkdir(parents=True)
    texts = {u.id: u.text for u in chosen}
    a, b = chosen[0].id, chosen[1].id
    texts[a], texts[b] = texts[b], texts[a]
    for u in chosen:
        shutil.copy(mini_corpus / "wavs" / f"{u.id}.wav", root / "wavs")
    (root / "metadata.csv").write_text("".join(f"{u.id}|{texts[u.id]}|{texts[u.id]}\n"
                                               for u in chosen))
    cfg = SplitConfig(val_count=1, test_count=1, max_duration=12.0, max_phonemes=300,
                      transcript_recognizer="whisper", max_transcript_cer=0.3, workers=2)
    report = run(cfg, SR, corpus_dir=root, out=tmp_path / "split")
    dropped = pd.read_csv(tmp_path / "split" / "dropped.tsv", sep="\t", keep_default_na=False)
    assert set(dropped["id"]) == {a, b}
    assert set(dropped["reason"]) == {"transcript_mismatch"}
    assert all("heard" in d for d in dropped["detail"])
    check = report["transcript_check"]
    assert check["checked"] == 6 and report["kept"] == 4
    # same corpus, same params, same bytes: no wall time in the cached output
    again = run(cfg, SR, corpus_dir=root, out=tmp_path / "split_again")
    assert again == report
    for name in ("report.json", "train.tsv", "dropped.tsv"):
        assert ((tmp_path / "split" / name).read_bytes()
                == (tmp_path / "split_again" / name).read_bytes())
