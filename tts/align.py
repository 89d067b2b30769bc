"""Forced alignment: phone durations in mel frames for FastSpeech2.

FastSpeech 2 (Ren et al., 2021, "FastSpeech 2: Fast and High-Quality End-to-End Text to
Speech") trains its duration predictor on per-phone frame counts from an external forced
aligner, the Montreal Forced Aligner (McAuliffe et al., 2017). Two aligners write the same
MFA-style TextGrids (tiers `words` and `phones`):

- `pocketsphinx` (default, pip only): the `pocketsphinx` wheel's bundled US English
  acoustic model, two-pass forced alignment (word-level FSG search, then a state-level
  Viterbi pass), with a per-utterance dictionary generated from our phonemizer (stress
  removed) so its phones are ours; a faint seeded noise floor replaces digital silence.
- `mfa`: the `mfa` command from a conda install, run as a subprocess on a corpus in MFA's
  layout with a dictionary generated from our phonemizer.

`align_corpus` runs the chosen one; `tts.durations` reads either's TextGrids.
"""

from __future__ import annotations

from pathlib import Path

from tts.alignment import AlignConfig, Utterance
from tts.mfa_aligner import run_mfa
from tts.pocketsphinx_aligner import run_pocketsphinx


def align_corpus(utts: list[Utterance], out: Path, cfg: AlignConfig, audio_cfg,
                 work: Path) -> tuple[dict[str, str], str]:
    """Write `out/<id>.TextGrid` for every alignable utterance. -> (failures, version)."""
    out.mkdir(parents=True, exist_ok=True)
    if cfg.aligner == "mfa":
        return run_mfa(utts, out, cfg, work)
    return run_pocketsphinx(utts, out, cfg, audio_cfg)
