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

One reader (`durations_from_textgrid`) turns either into frame durations over our symbol
sequence:

- Labels are compared without stress digits (MFA's AH0 matches our AH1).
- Silence labels (`sil`, `sp`, empty, pocketsphinx `SIL`, fillers) fill the gaps between
  phones. A gap where our sequence has a pause token (`sil` at the ends, `sp`/`sil` inside)
  becomes that token; any other gap is absorbed into its neighbours (`absorb_silence`).
- `spn` (MFA's unknown-word filler) stands for one or more of our phones; with
  `spn: spread` its time is shared equally among them, with `spn: drop` the utterance is
  dropped.
- Our phones are matched to the aligner's by edit distance; more than `max_phone_edits`
  substitutions/insertions/deletions drops the utterance ("phones do not match").
- Seconds become frames by rounding every cumulative boundary onto the frame grid: frame
  i is centred on sample i * hop (torchaudio center=True), so a boundary at time t closes
  after the ceil(t * sr / hop) frames whose centres precede it; the last boundary is T, so
  durations sum exactly to the mel frame count. A symbol left with zero frames takes one
  from the next symbol (pushing later boundaries as little as needed); an utterance with
  fewer frames than symbols is dropped. Nothing ever gets zero frames.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

PAUSES = ("sil", "sp")  # our pause tokens (tts.text)
SILENCE_LABELS = frozenset({"", "sil", "sp", "<eps>", "<sil>", "<s>", "</s>", "SIL"})
UNKNOWN_LABEL = "spn"  # MFA's unknown-word filler
PS_SAMPLE_RATE = 16000  # the bundled pocketsphinx model is trained on 16 kHz audio
GAP = 1e-6  # seconds: intervals closer than this touch
SECONDS_DECIMALS = 6  # pocketsphinx boundary times in TextGrids (frames are 10 ms)
NOISE_SEED = 0  # the noise floor is the same on every run (reproducible TextGrids)
PCM_SCALE = 32767  # float [-1, 1] -> int16 for pocketsphinx
MFA_INSTALL = ("install the Montreal Forced Aligner with `conda install -c conda-forge "
               "montreal-forced-aligner` (and `mfa model download acoustic <model>`), or "
               "switch to the pip-only aligner with `align.aligner: pocketsphinx` in "
               "params.yaml (`dvc exp run -S align.aligner=pocketsphinx`)")


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
        from tts.config import _check

        _check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")
        _check(self.max_phone_edits >= 0, f"{key}.max_phone_edits", "must be >= 0")
        _check(self.ps_frame_rate > 0, f"{key}.ps_frame_rate", "must be positive")
        _check(0 < self.ps_beam < 1, f"{key}.ps_beam", "must be in (0, 1)")
        _check(0 < self.ps_silence_prob <= 1, f"{key}.ps_silence_prob", "must be in (0, 1]")
        _check(0 <= self.ps_noise_floor < 1, f"{key}.ps_noise_floor", "must be in [0, 1)")
        _check(abs(self.ps_time_offset) < 1, f"{key}.ps_time_offset", "must be under 1 s")

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


class AlignmentDropped(Exception):
    """This utterance cannot be aligned; the message is the reason in the report."""


class Interval(NamedTuple):
    start: float  # seconds
    end: float
    label: str


def strip_stress(phone: str) -> str:
    return phone.rstrip("012").upper()


def is_silence(label: str) -> bool:
    return label.strip() in SILENCE_LABELS or label.startswith(("+", "["))  # ps fillers


# ------------------------------------------------------------------------ TextGrid IO


def write_textgrid(path: Path, words: list[Interval], phones: list[Interval],
                   duration: float) -> None:
    """MFA-style TextGrid: interval tiers `words` and `phones` covering [0, duration]."""
    from praatio import textgrid
    from praatio.utilities.constants import Interval as PraatInterval

    grid = textgrid.Textgrid(minTimestamp=0.0, maxTimestamp=duration)
    for name, items in (("words", words), ("phones", phones)):
        entries = [PraatInterval(s, min(e, duration), label)
                   for s, e, label in items if min(e, duration) > s]
        grid.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def read_phones(path: Path) -> tuple[list[Interval], float]:
    """The `phones` tier (gaps filled with empty labels) and the grid's end time."""
    from praatio import textgrid

    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
        tier = grid.getTier("phones")
    except Exception as exc:  # praatio raises several types for broken files
        raise AlignmentDropped(f"unreadable TextGrid {path}: {exc}") from exc
    intervals, t = [], grid.minTimestamp
    for start, end, label in tier.entries:
        if start > t:
            intervals.append(Interval(t, start, ""))
        intervals.append(Interval(start, end, label.strip()))
        t = end
    if grid.maxTimestamp > t:
        intervals.append(Interval(t, grid.maxTimestamp, ""))
    return intervals, grid.maxTimestamp


# ------------------------------------------------------------- matching and durations


def _match(ours: list[str], theirs: list[str]) -> tuple[list[list[int]], int]:
    """Edit-distance alignment of our phones to the aligner's (stress-free labels).

    Returns, for each of our phones, the aligner tokens it takes its time from (a `spn`
    token may cover several of ours), and the number of edits. Aligner tokens matched to
    none of ours (insertions) are left out and later absorbed like silence.
    """
    n, m = len(ours), len(theirs)
    inf = n + m + 1
    cost = np.full((n + 1, m + 1), inf, dtype=np.int64)
    cost[0, :] = np.arange(m + 1)
    cost[:, 0] = np.arange(n + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if theirs[j - 1] == UNKNOWN_LABEL:  # covers ours[i-1], first or continuing
                best = min(cost[i - 1, j - 1], cost[i - 1, j])
            else:
                best = cost[i - 1, j - 1] + (ours[i - 1] != theirs[j - 1])
            cost[i, j] = min(best, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    mapping: list[list[int]] = [[] for _ in range(n)]
    i, j = n, m
    while i > 0 and j > 0:
        c = cost[i, j]
        if theirs[j - 1] == UNKNOWN_LABEL and c == cost[i - 1, j]:
            mapping[i - 1].append(j - 1)  # our phone inside a spn word
            i -= 1
        elif c == cost[i - 1, j - 1] + (theirs[j - 1] != UNKNOWN_LABEL
                                       and ours[i - 1] != theirs[j - 1]):
            mapping[i - 1].append(j - 1)  # match, substitution, or the first of a spn
            i, j = i - 1, j - 1
        elif c == cost[i - 1, j] + 1:
            i -= 1  # deletion: our phone gets no aligner time
        else:
            j -= 1  # insertion: an extra aligner phone
    return mapping, int(cost[n, m])


def _spans(symbols: list[str], phones: list[Interval], cfg: AlignConfig,
           ) -> tuple[list[tuple[float, float]], dict]:
    """A time span (start, end) per symbol: contiguous, covering [0, end of grid]."""
    total = phones[-1].end if phones else 0.0
    speech = [p for p in phones if not is_silence(p.label)]
    theirs = [UNKNOWN_LABEL if p.label == UNKNOWN_LABEL else strip_stress(p.label)
              for p in speech]
    if UNKNOWN_LABEL in theirs and cfg.spn == "drop":
        raise AlignmentDropped("aligner marked a word unknown (spn) and align.spn is drop")
    ours_idx = [k for k, s in enumerate(symbols) if s not in PAUSES]
    ours = [strip_stress(symbols[k]) for k in ours_idx]
    if not ours:
        raise AlignmentDropped("transcript has no phones")
    if not speech:
        raise AlignmentDropped("aligner found no phones")
    mapping, edits = _match(ours, theirs)
    if edits > cfg.max_phone_edits:
        raise AlignmentDropped(
            f"phones do not match the transcript ({edits} edits > align.max_phone_edits="
            f"{cfg.max_phone_edits}): ours {' '.join(ours)} | aligner {' '.join(theirs)}")
    # speech spans; a spn token is shared equally among the phones it covers
    spans: list[list[float]] = []
    for i, tokens in enumerate(mapping):
        if not tokens:  # deletion: an empty span where the previous phone ends
            t = spans[-1][1] if spans else speech[0].start
            spans.append([t, t])
            continue
        j = tokens[0]
        if theirs[j] == UNKNOWN_LABEL:
            cover = [k for k, toks in enumerate(mapping) if toks and toks[0] == j]
            step = (speech[j].end - speech[j].start) / len(cover)
            r = cover.index(i)
            spans.append([speech[j].start + r * step, speech[j].start + (r + 1) * step])
        else:
            spans.append([speech[j].start, speech[j].end])
    # gaps between consecutive speech spans: our pause token there takes the gap, else
    # the gap is absorbed into the neighbours
    counts = {"pauses_aligned": 0, "pauses_empty": 0, "silences_absorbed": 0}
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(symbols)
    bounds = [0.0] + [t for s in spans for t in s] + [total]  # gap g: bounds[2g], [2g+1]
    for g in range(len(ours) + 1):
        lo, hi = bounds[2 * g], max(bounds[2 * g], bounds[2 * g + 1])
        first = ours_idx[g - 1] + 1 if g > 0 else 0
        last = ours_idx[g] if g < len(ours) else len(symbols)
        pauses = list(range(first, last))
        if pauses:
            out[pauses[0]] = (lo, hi)
            for k in pauses[1:]:
                out[k] = (hi, hi)
            has_silence = hi - lo > 0
            counts["pauses_aligned"] += has_silence
            counts["pauses_empty"] += len(pauses) - has_silence
        elif hi > lo:
            counts["silences_absorbed"] += 1
            cut = {"previous": hi, "next": lo, "split": (lo + hi) / 2}[cfg.absorb_silence]
            if g == 0:
                cut = lo
            elif g == len(ours):
                cut = hi
            bounds[2 * g], bounds[2 * g + 1] = cut, cut
    for i, k in enumerate(ours_idx):
        out[k] = (bounds[2 * i + 1], max(bounds[2 * i + 1], bounds[2 * i + 2]))
    return out, counts


def frame_boundary(seconds: float, sample_rate: int, hop_length: int) -> int:
    """Frames whose centre (i * hop) lies before `seconds`."""
    return max(0, math.ceil(seconds * sample_rate / hop_length - 1e-6))


def durations_from_spans(spans: list[tuple[float, float]], n_frames: int,
                         sample_rate: int, hop_length: int) -> tuple[np.ndarray, int]:
    """Whole-frame durations summing to n_frames, each >= 1; and the frames moved for that.

    A symbol whose span rounds to no frame takes one from the symbol after it (the one
    before it at the end), pushing boundaries along as little as possible.
    """
    if n_frames < len(spans):
        raise AlignmentDropped(f"{len(spans)} symbols but only {n_frames} frames")
    rounded = np.array([min(frame_boundary(end, sample_rate, hop_length), n_frames)
                        for _, end in spans], dtype=np.int64)
    rounded[-1] = n_frames
    ends = np.maximum.accumulate(rounded)
    for i in range(len(ends)):  # forward: every symbol at least one frame
        ends[i] = max(ends[i], (ends[i - 1] if i else 0) + 1)
    ends[-1] = n_frames
    for i in range(len(ends) - 2, -1, -1):  # backward: room for the symbols after
        ends[i] = min(ends[i], ends[i + 1] - 1)
    dur = np.diff(np.concatenate([[0], ends]))
    return dur, int(np.abs(ends - np.maximum.accumulate(rounded)).sum())


def durations_from_textgrid(path: Path, symbols: list[str], n_frames: int,
                            sample_rate: int, hop_length: int, cfg: AlignConfig,
                            utt_id: str = "") -> tuple[np.ndarray, dict]:
    """THE reader: a TextGrid's phones tier -> frame durations over `symbols`."""
    phones, total = read_phones(path)
    expected = 1 + int(total * sample_rate) // hop_length
    if abs(expected - n_frames) > 2:
        raise ValueError(f"{utt_id or path}: TextGrid covers {total:.3f} s (~{expected} "
                         f"frames) but the features have {n_frames} frames; were they made "
                         f"from different audio? Re-run the features and align stages.")
    if n_frames < len(symbols):
        raise AlignmentDropped(f"{len(symbols)} symbols but only {n_frames} frames")
    spans, counts = _spans(symbols, phones, cfg)
    dur, counts["frames_moved"] = durations_from_spans(spans, n_frames, sample_rate,
                                                       hop_length)
    if int(dur.sum()) != n_frames or (dur <= 0).any():
        raise ValueError(f"{utt_id or path}: durations sum to {int(dur.sum())}, expected "
                         f"{n_frames} frames (or a phone has no frames); this is a bug")
    return dur, counts


def phone_averages(dur: np.ndarray, f0: np.ndarray, voiced: np.ndarray,
                   energy: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Phone-level z-normalized log-F0 (voiced frames; 0 if none) and energy."""
    edges = np.concatenate([[0], np.cumsum(dur)])
    pitch, power = np.zeros(len(dur)), np.zeros(len(dur))
    log_f0 = np.log(np.maximum(f0, 1e-5))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        v = voiced[a:b].astype(bool)
        if v.any():
            pitch[k] = (log_f0[a:b][v].mean() - stats["log_f0_mean"]) / stats["log_f0_std"]
        power[k] = (energy[a:b].mean() - stats["energy_mean"]) / stats["energy_std"]
    return pitch, power


def boundary_errors(ref: list[Interval], hyp: list[Interval]) -> np.ndarray | None:
    """Signed hyp - ref phone boundary differences (seconds); None if the phones differ.

    Silence is ignored. Boundaries: every phone's start, plus its end where either aligner
    puts a silence after it (so a boundary shared by two phones counts once).
    """
    ref = [p for p in ref if not is_silence(p.label)]
    hyp = [p for p in hyp if not is_silence(p.label)]
    if [strip_stress(p.label) for p in ref] != [strip_stress(p.label) for p in hyp]:
        return None
    diffs = []
    for k, (r, h) in enumerate(zip(ref, hyp)):
        diffs.append(h.start - r.start)
        last = k == len(ref) - 1
        if last or ref[k + 1].start - r.end > GAP or hyp[k + 1].start - h.end > GAP:
            diffs.append(h.end - r.end)
    return np.asarray(diffs)


# --------------------------------------------------------------- the utterance to align


@dataclass
class Utterance:
    id: str
    wav: Path
    words: list[tuple[str, list[str]]]  # (word, phones with stress); pauses have word ""


def _word_key(phones: list[str]) -> str:
    """A dictionary key per pronunciation, so every entry is exactly our phones."""
    return "w_" + "_".join(strip_stress(p).lower() for p in phones)


# ---------------------------------------------------------------------- pocketsphinx


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
    import torch
    import torchaudio

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if sample_rate != PS_SAMPLE_RATE:
        x = torchaudio.functional.resample(x, sample_rate, PS_SAMPLE_RATE)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    x = x + cfg.ps_noise_floor * noise  # (N,) no exact digital silence
    pcm = (x.clamp(-1, 1) * PCM_SCALE).to(torch.int16).numpy().tobytes()
    spoken = [(w, p) for w, p in utt.words if w and p]
    keys = []
    for _, phones in spoken:
        key = _word_key(phones)
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


_WORKER: dict = {}


def _ps_init(cfg: AlignConfig, audio_cfg) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(aligner=PocketSphinx(cfg), cfg=cfg, audio=audio_cfg)


def _ps_job(job: tuple[Utterance, Path]) -> tuple[str, str | None]:
    from tts.audio import load_wav

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
    import multiprocessing as mp
    from importlib.metadata import version

    from tqdm import tqdm

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


# ------------------------------------------------------------------------------- MFA


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
        spoken = [(_word_key(p), p) for w, p in utt.words if w and p]
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
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(src), includeEmptyIntervals=False)
    spoken = iter(w for w, p in utt.words if w and p)
    tier = grid.getTier("words")
    entries = [e._replace(label=next(spoken, e.label)) if e.label.startswith("w_") else e
               for e in tier.entries]
    grid.replaceTier("words", tier.new(entries=entries))
    grid.save(str(dst), format="long_textgrid", includeBlankSpaces=True)


# -------------------------------------------------------------------------- dispatch


def align_corpus(utts: list[Utterance], out: Path, cfg: AlignConfig, audio_cfg,
                 work: Path) -> tuple[dict[str, str], str]:
    """Write `out/<id>.TextGrid` for every alignable utterance. -> (failures, version)."""
    out.mkdir(parents=True, exist_ok=True)
    if cfg.aligner == "mfa":
        return run_mfa(utts, out, cfg, work)
    return run_pocketsphinx(utts, out, cfg, audio_cfg)


def utterance(uid: str, wav: Path, normalized: str, phonemes: list[str], text_cfg=None,
              ) -> Utterance:
    """The words to align, from our phonemizer; they must spell the split's phonemes."""
    from tts.text import DEFAULT_CONFIG, phonemize_words

    words = phonemize_words(normalized, text_cfg or DEFAULT_CONFIG)
    if [p for _, ps in words for p in ps] != list(phonemes):
        raise AlignmentDropped("the split's phonemes differ from tts.text.phonemize_words of "
                               "its normalized text (text params changed? re-run `split`)")
    return Utterance(uid, Path(wav), words)
