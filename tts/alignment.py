"""What forced alignment works on: its params (`AlignConfig`), the utterance to align
(words with our phones, `utterance`), and `AlignmentDropped`, an utterance left out.

Stress digits never reach an aligner: `strip_stress` compares labels, and
`dictionary_key` names one dictionary entry per pronunciation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tts.contract import check
from tts.text import DEFAULT_CONFIG, phonemize_words


@dataclass(frozen=True)
class AlignConfig:
    aligner: Literal["pocketsphinx", "mfa"] = "pocketsphinx"  # which forced aligner runs
    workers: int = 0  # pocketsphinx processes (and `mfa --num_jobs`); 0 = all cores
    # silence where our text has no pause goes to the phone before, after, or half each
    absorb_silence: Literal["previous", "next", "split"] = "split"
    # MFA's unknown-word `spn`: share its time among the word's phones, or drop the utterance
    spn: Literal["spread", "drop"] = "spread"
    # substitutions/insertions/deletions tolerated between the aligner's phones and ours
    max_phone_edits: int = 0
    ps_frame_rate: int = 100  # pocketsphinx frames per second (its model's rate)
    ps_beam: float = 1.0e-48  # pocketsphinx search beam (smaller = wider, slower)
    # pocketsphinx prior of an optional pause between words; its default, 0.005, missed
    # 12 of 38 MFA pauses >= 50 ms on ljspeech-mini, 0.3 misses 3 and adds 2
    ps_silence_prob: float = 0.3
    # seconds added to pocketsphinx boundaries: its frames are labelled by window start;
    # the median lag behind MFA on ljspeech-mini was 15-20 ms
    ps_time_offset: float = 0.015
    # amplitude of (seeded) white noise added before pocketsphinx: exact digital silence,
    # as in the eSpeak builtin corpus, breaks its features (10 of 16 builtin clips failed
    # to align without it, 0 with 1e-3, about -60 dBFS)
    ps_noise_floor: float = 1.0e-3
    mfa_command: str = "mfa"  # path or name of the `mfa` executable
    mfa_acoustic_model: str = "english_us_arpa"  # pretrained model; "" = `mfa train`
    mfa_args: tuple[str, ...] = ()  # extra arguments for `mfa align` / `mfa train`

    def validate(self, key: str) -> None:
        check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")
        check(self.max_phone_edits >= 0, f"{key}.max_phone_edits", "must be >= 0")
        check(self.ps_frame_rate > 0, f"{key}.ps_frame_rate", "must be positive")
        check(0 < self.ps_beam < 1, f"{key}.ps_beam", "must be in (0, 1)")
        check(0 < self.ps_silence_prob <= 1, f"{key}.ps_silence_prob", "must be in (0, 1]")
        check(0 <= self.ps_noise_floor < 1, f"{key}.ps_noise_floor", "must be in [0, 1)")
        check(abs(self.ps_time_offset) < 1, f"{key}.ps_time_offset", "must be under 1 s")

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class AlignmentDropped(Exception):
    """This utterance cannot be aligned; the message is the reason in the report."""


@dataclass
class Utterance:
    id: str
    wav: Path
    words: list[tuple[str, list[str]]]  # (word, phones with stress); pauses have word ""


def strip_stress(phone: str) -> str:
    return phone.rstrip("012").upper()


def dictionary_key(phones: list[str]) -> str:
    """A dictionary key per pronunciation, so every entry is exactly our phones."""
    return "w_" + "_".join(strip_stress(p).lower() for p in phones)


def utterance(uid: str, wav: Path, normalized: str, phonemes: list[str], text_cfg=None,
              ) -> Utterance:
    """The words to align, from our phonemizer; they must spell the split's phonemes."""
    words = phonemize_words(normalized, text_cfg or DEFAULT_CONFIG)
    if [p for _, ps in words for p in ps] != list(phonemes):
        raise AlignmentDropped("the split's phonemes differ from tts.text.phonemize_words of "
                               "its normalized text (text params changed? re-run `split`)")
    return Utterance(uid, Path(wav), words)
