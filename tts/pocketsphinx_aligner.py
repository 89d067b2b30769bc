"""The pip-only aligner: pocketsphinx's bundled US English model, two-pass forced alignment.

A word-level FSG search, then a state-level Viterbi pass, over a per-utterance dictionary
generated from our phonemizer (stress removed), so its phones are ours; a faint seeded
noise floor replaces digital silence. Writes the same MFA-style TextGrids as `mfa`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from tts.alignment import AlignConfig, AlignmentDropped, Utterance, dictionary_key, strip_stress
from tts.audio import load_wav
from tts.textgrid import Interval, write_textgrid

PS_SAMPLE_RATE = 16000  # the bundled pocketsphinx model is trained on 16 kHz audio
SECONDS_DECIMALS = 6  # pocketsphinx boundary times in TextGrids (frames are 10 ms)
NOISE_SEED = 0  # the noise floor is the same on every run (reproducible TextGrids)
PCM_SCALE = 32767  # float [-1, 1] -> int16 for pocketsphinx
_WORKER: dict = {}


def _ps_decoder(cfg: AlignConfig, silence_prob: float | None = None):
    """A pocketsphinx decoder with no language model and an empty dictionary."""
    from pocketsphinx import Decoder

    options = dict(samprate=PS_SAMPLE_RATE, lm=None, loglevel="FATAL",
                   frate=cfg.ps_frame_rate, beam=cfg.ps_beam)
    if silence_prob is not None:
        options["silprob"] = silence_prob
    with tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False) as f:
        empty_dict = f.name  # the decoder needs a dictionary file; words come per utterance
    try:
        return Decoder(dict=empty_dict, **options)
    finally:
        os.unlink(empty_dict)


class PocketSphinx:
    """`pocketsphinx_align` with `cfg.ps_silence_prob`, retried once with pocketsphinx's
    own silence prior: on real speech a high prior occasionally leaves the search with no
    path to the end of the utterance (1 of 24 ljspeech-mini clips)."""

    def __init__(self, cfg: AlignConfig):
        self.cfg = cfg
        self.decoder = _ps_decoder(cfg, cfg.ps_silence_prob)
        self.fallback = None

    def __call__(self, utt: Utterance, audio: np.ndarray, sample_rate: int):
        try:
            return pocketsphinx_align(self.decoder, utt, audio, sample_rate, self.cfg)
        except AlignmentDropped as first:
            self.decoder = _ps_decoder(self.cfg, self.cfg.ps_silence_prob)  # reset its state
            if self.fallback is None:
                self.fallback = _ps_decoder(self.cfg)
            try:
                return pocketsphinx_align(self.fallback, utt, audio, sample_rate, self.cfg)
            except AlignmentDropped as second:
                self.fallback = None
                raise AlignmentDropped(f"{first}; retried with the default silence prior: "
                                       f"{second}") from second


def pocketsphinx_align(decoder, utt: Utterance, audio: np.ndarray, sample_rate: int,
                       cfg: AlignConfig) -> tuple[list[Interval], list[Interval]]:
    """Two-pass pocketsphinx forced alignment -> (words, phones) intervals in seconds."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if sample_rate != PS_SAMPLE_RATE:
        x = torchaudio.functional.resample(x, sample_rate, PS_SAMPLE_RATE)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    x = x + cfg.ps_noise_floor * noise  # (N,) no exact digital silence
    pcm = (x.clamp(-1, 1) * PCM_SCALE).to(torch.int16).numpy().tobytes()
    spoken = [(w, p) for w, p in utt.words if w and p]
    keys = []
    for _, phones in spoken:
        key = dictionary_key(phones)
        if decoder.lookup_word(key) is None:
            decoder.add_word(key, " ".join(strip_stress(p) for p in phones), True)
        keys.append(key)
    try:
        decoder.set_align_text(" ".join(keys))
        for alignment_pass in (False, True):  # word-level search, then state alignment
            if alignment_pass:
                decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
        alignment = decoder.get_alignment()
    except RuntimeError as exc:
        raise AlignmentDropped(f"pocketsphinx could not align: {exc}") from exc
    if alignment is None:
        raise AlignmentDropped("pocketsphinx found no alignment")
    duration = len(audio) / sample_rate

    def seconds(frame: int) -> float:  # frame index -> boundary time, offset by the lag
        t = frame / cfg.ps_frame_rate + cfg.ps_time_offset
        return 0.0 if frame == 0 else min(round(t, SECONDS_DECIMALS), duration)

    words, phones, spoken_iter = [], [], iter(spoken)
    for w in alignment:
        start, end = seconds(w.start), seconds(w.start + w.duration)
        if w.name.startswith("w_"):
            words.append(Interval(start, end, next(spoken_iter)[0]))
            phones += [Interval(seconds(p.start), seconds(p.start + p.duration), p.name)
                       for p in w]
        else:  # <sil>, </s>, fillers: silence
            words.append(Interval(start, end, ""))
            phones.append(Interval(start, end, "sil"))
    if next(spoken_iter, None) is not None:
        raise AlignmentDropped("pocketsphinx alignment is missing words")
    return words, phones


def _ps_init(cfg: AlignConfig, audio_cfg) -> None:
    torch.set_num_threads(1)
    _WORKER.update(aligner=PocketSphinx(cfg), cfg=cfg, audio=audio_cfg)


def _ps_job(job: tuple[Utterance, Path]) -> tuple[str, str | None]:
    utt, out = job
    audio_cfg = _WORKER["audio"]
    try:
        audio = load_wav(utt.wav, audio_cfg.sample_rate)
        words, phones = _WORKER["aligner"](utt, audio, audio_cfg.sample_rate)
        write_textgrid(out / f"{utt.id}.TextGrid", words, phones,
                       len(audio) / audio_cfg.sample_rate)
    except (AlignmentDropped, ValueError) as exc:  # tts.audio.AudioError is a ValueError
        return utt.id, str(exc)
    return utt.id, None


def run_pocketsphinx(utts: list[Utterance], out: Path, cfg: AlignConfig,
                     audio_cfg) -> tuple[dict[str, str], str]:
    """Align in `cfg.n_workers` processes; TextGrids to `out`. -> (failures, version)."""
    jobs = [(u, out) for u in utts]
    failures = {}
    bar = dict(total=len(jobs), desc="align (pocketsphinx)", unit="utt")
    if cfg.n_workers == 1:
        _ps_init(cfg, audio_cfg)
        results = map(_ps_job, jobs)
        failures = {k: v for k, v in tqdm(results, **bar) if v}
    else:
        with mp.get_context("fork").Pool(cfg.n_workers, _ps_init, (cfg, audio_cfg)) as pool:
            results = pool.imap_unordered(_ps_job, jobs, chunksize=4)
            failures = {k: v for k, v in tqdm(results, **bar) if v}
    return failures, f"pocketsphinx {version('pocketsphinx')}"
