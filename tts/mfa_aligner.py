"""The Montreal Forced Aligner (McAuliffe et al., 2017): the `mfa` command of a conda
install, run as a subprocess on a corpus in MFA's layout with a dictionary generated from
our phonemizer."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from praatio import textgrid

from tts.alignment import AlignConfig, Utterance, dictionary_key

MFA_INSTALL = ("install the Montreal Forced Aligner with `conda install -c conda-forge "
               "montreal-forced-aligner` (and `mfa model download acoustic <model>`), or "
               "switch to the pip-only aligner with `align.aligner: pocketsphinx` in "
               "params.yaml (`dvc exp run -S align.aligner=pocketsphinx`)")


def mfa_version(cfg: AlignConfig) -> str:
    exe = shutil.which(cfg.mfa_command)
    if exe is None:
        raise RuntimeError(f"align.aligner is mfa but `{cfg.mfa_command}` "
                           f"(align.mfa_command) is not on PATH: {MFA_INSTALL}")
    try:
        result = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"`{exe} version` failed ({exc}); {MFA_INSTALL}") from exc
    if result.returncode != 0:
        raise RuntimeError(f"`{exe} version` exited with {result.returncode}: "
                           f"{(result.stderr or result.stdout).strip()[-500:]}; {MFA_INSTALL}")
    return f"mfa {result.stdout.strip().splitlines()[-1] if result.stdout.strip() else '?'}"


def write_mfa_corpus(utts: list[Utterance], corpus: Path, dictionary: Path) -> None:
    """MFA layout: <id>.wav + <id>.lab side by side; a dictionary of our pronunciations."""
    corpus.mkdir(parents=True, exist_ok=True)
    lexicon: dict[str, set[str]] = {}
    for utt in utts:
        wav = corpus / f"{utt.id}.wav"
        if not wav.exists():
            os.symlink(Path(utt.wav).resolve(), wav)
        spoken = [(dictionary_key(p), p) for w, p in utt.words if w and p]
        (corpus / f"{utt.id}.lab").write_text(" ".join(k for k, _ in spoken) + "\n")
        for key, phones in spoken:
            lexicon.setdefault(key, set()).add(" ".join(phones))
    dictionary.write_text("".join(f"{k}\t{p}\n" for k in sorted(lexicon)
                                  for p in sorted(lexicon[k])))


def mfa_command(cfg: AlignConfig, corpus: Path, dictionary: Path, out: Path,
                work: Path) -> list[str]:
    """`mfa align` with a pretrained model, or `mfa train` when none is named."""
    common = ["--clean", "--single_speaker", "--num_jobs", str(cfg.n_workers),
              "--temporary_directory", str(work / "tmp"), *cfg.mfa_args]
    if cfg.mfa_acoustic_model:
        return [cfg.mfa_command, "align", str(corpus), str(dictionary),
                cfg.mfa_acoustic_model, str(out), *common]
    return [cfg.mfa_command, "train", str(corpus), str(dictionary),
            str(work / "acoustic_model.zip"), "--output_directory", str(out), *common]


def run_mfa(utts: list[Utterance], out: Path, cfg: AlignConfig,
            work: Path) -> tuple[dict[str, str], str]:
    """Run MFA; its TextGrids (words tier renamed back to our words) land in `out`."""
    version = mfa_version(cfg)
    corpus, dictionary, raw = work / "corpus", work / "dictionary.txt", work / "textgrids"
    write_mfa_corpus(utts, corpus, dictionary)
    cmd = mfa_command(cfg, corpus, dictionary, raw, work)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {result.returncode}:\n"
                           f"{(result.stderr or result.stdout).strip()[-2000:]}\n"
                           f"If MFA is broken: {MFA_INSTALL}")
    found = {p.stem: p for p in raw.rglob("*.TextGrid")}
    failures = {}
    for utt in utts:
        if utt.id not in found:
            failures[utt.id] = "mfa produced no TextGrid (could not align)"
            continue
        _rename_words(found[utt.id], out / f"{utt.id}.TextGrid", utt)
    return failures, version


def _rename_words(src: Path, dst: Path, utt: Utterance) -> None:
    """Copy an MFA TextGrid, its `words` tier relabelled from dictionary keys to words."""
    grid = textgrid.openTextgrid(str(src), includeEmptyIntervals=False)
    spoken = iter(w for w, p in utt.words if w and p)
    tier = grid.getTier("words")
    entries = [e._replace(label=next(spoken, e.label)) if e.label.startswith("w_") else e
               for e in tier.entries]
    grid.replaceTier("words", tier.new(entries=entries))
    grid.save(str(dst), format="long_textgrid", includeBlankSpaces=True)
