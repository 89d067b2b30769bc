"""Objective evaluation on the held-out test list: copy synthesis per vocoder, text to
speech per (acoustic model, vocoder) pair, and the ground-truth row.

Each evaluation writes one folder (a DVC output):

    summary.json     {"rows": [row, ...]}: a row per evaluated system (one per pair, one per
                     WaveGrad schedule in copy synthesis) with `key kind acoustic vocoder
                     label n metrics audio figures`; paths are relative to the folder
    utterances.csv   one line per (row, utterance): every metric, the recognizer's words
    wavs/<label>/<id>.wav, figures/<label>/<id>_{mel,attention,pitch}.png

Metrics (`tts.metrics`): MCD-DTW (dB, WORLD/SPTK mel-cepstra), log-F0 RMSE and voicing
error on the DTW path, multi-resolution STFT distance, PESQ (wide band), STOI, word/character
error rate of the recognizer (`tts.recognizer`: Whisper tiny.en by default) against the
transcript, predicted MOS (`tts.mos`: DistillMOS, 1-5, no reference needed), duration ratio
(synthesized / recorded), the attention alignment score (`tts.attention`: diagonal mass,
skip and repeat rates) and failure rate of attention models, and real-time factors (compute
seconds per second of audio; below 1 is faster than real time).

Every mean comes with its n and a bootstrap 95% interval over utterances (`summarize`).
`compare` restricts every row to the utterances all ranked rows share before ranking, so
rows evaluated on fewer sentences (WaveNet) are shown but never ranked against the others;
`rank` orders the TTS pairs by the mean of their ranks in each `rank_by` column (1 = best);
`tts.report` renders everything.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

import models
from models import ACOUSTIC_MODELS, VOCODERS
from tts import audio as A
from tts import metrics as M
from tts import plots
from tts.attention import alignment_scores
from tts.inference import check_name, resolve_device, seeded
from tts.contract import check as check_key
from tts.split_lists import read_split
from tts.featstore import FeatureStore
from tts.mos import load_mos_predictor
from tts.recognizer import error_rates, load_recognizer

SUMMARY_FILE = "summary.json"
UTTERANCES_FILE = "utterances.csv"
WAV_DIR = "wavs"
FIGURE_DIR = "figures"
WARMUP_PHONEMES = ("sil", "AH0", "sil")  # untimed first call: lazy init stays out of the RTF
WARMUP_FRAMES = 4


class Metric(NamedTuple):
    """How a reported metric is shown and compared."""

    label: str  # column heading
    better: str  # "low" | "high" | "one" (closest to 1)
    format: str  # str.format pattern of one value


# Every reported metric, by its key in the rows.
METRICS: dict[str, Metric] = {
    "mcd": Metric("MCD-DTW dB", "low", "{:.2f}"),
    "mcd_band_floor": Metric("MCD of the fmax low-pass", "low", "{:.2f}"),
    "log_f0_rmse": Metric("log-F0 RMSE", "low", "{:.3f}"),
    "f0_rmse_cents": Metric("F0 RMSE cents", "low", "{:.0f}"),
    "voicing_error": Metric("voicing err", "low", "{:.3f}"),
    "stft": Metric("MR-STFT", "low", "{:.3f}"),
    "pesq": Metric("PESQ wb", "high", "{:.2f}"),
    "stoi": Metric("STOI", "high", "{:.3f}"),
    "duration_ratio": Metric("duration ratio", "one", "{:.2f}"),
    "wer": Metric("WER", "low", "{:.3f}"),
    "cer": Metric("CER", "low", "{:.3f}"),
    "mos": Metric("MOS (predicted)", "high", "{:.2f}"),
    "wer_gap": Metric("WER − recordings", "low", "{:+.3f}"),
    "mos_gap": Metric("MOS − recordings", "high", "{:+.2f}"),
    "diagonal_mass": Metric("align score", "high", "{:.3f}"),
    "skip_rate": Metric("skip rate", "low", "{:.3f}"),
    "repeat_rate": Metric("repeat rate", "low", "{:.3f}"),
    "failure_rate": Metric("align failures", "low", "{:.2f}"),
    "rtf_acoustic": Metric("RTF acoustic", "low", "{:.3f}"),
    "rtf_vocoder": Metric("RTF vocoder", "low", "{:.3f}"),
    "rtf": Metric("RTF", "low", "{:.3f}"),
}
# Table order: intelligibility and distance first, then speed, then the diagnostics.
PAIR_METRICS = ("wer", "wer_gap", "mos", "mos_gap", "cer", "mcd", "log_f0_rmse",
                "duration_ratio", "rtf", "rtf_acoustic", "rtf_vocoder", "diagonal_mass",
                "failure_rate", "voicing_error")
COPY_METRICS = ("wer", "mos", "mcd", "log_f0_rmse", "voicing_error", "stft", "pesq", "stoi",
                "rtf")
GROUND_TRUTH_METRICS = ("wer", "cer", "mos", "mcd", "log_f0_rmse", "voicing_error", "stft",
                        "pesq", "stoi", "duration_ratio", "mcd_band_floor")
GAPS = {"wer_gap": "wer", "mos_gap": "mos"}  # pair minus recordings, per shared utterance
RECOGNIZER_CHOICES = ("whisper", "pocketsphinx", "none")
BOOTSTRAP_SEED = 1234  # the intervals' resampling: same rows, same interval


@dataclass(frozen=True)
class EvaluateConfig:
    utterances: int = 24  # test utterances evaluated: the first N of test.tsv (0 = all)
    # They are processed shortest first; the subsets below are the shortest ones.
    wavenet_utterances: int = 1  # WaveNet samples one value at a time: only N (0 = none)
    report_utterances: int = 3  # test sentences with audio players in the report
    figure_utterances: int = 1  # test sentences with mel / attention / pitch figures
    max_length_ratio: float = 2.0  # attention models stop by this x the recording's length
    pesq: bool = True  # wide-band PESQ in copy synthesis (needs the `pesq` package)
    stoi: bool = True  # STOI in copy synthesis
    recognizer: str = "whisper"  # WER/CER: whisper | pocketsphinx | none
    recognizer_model: str = ""  # CTranslate2 Whisper folder; "" = bundled tiny.en
    mos: bool = True  # predicted MOS (DistillMOS) for every row
    bootstrap: int = 1000  # resamples of the 95% intervals on every mean (0 = none)
    confidence: float = 0.95  # interval coverage
    intelligible_wer_gap: float = 0.1  # verdict: a pair is intelligible when its WER is
    # within this of the recordings' WER on the same sentences
    failure_diagonal_mass: float = 0.5  # attention failure: align score below this, or no stop
    rank_by: list[str] = field(default_factory=lambda: ["wer", "mos", "mcd", "log_f0_rmse"])
    # ^ the TTS pairs' rank is the mean of their ranks in these columns
    cpu_threads: int = 1  # torch threads on CPU, RTF timed with them (0 = torch's default)
    figure_dpi: int = 72  # resolution of the report's figures

    def validate(self, key: str) -> None:
        def check(ok: bool, name: str, message: str) -> None:  # name: a field of this section
            check_key(ok, f"{key}.{name}", message)

        check(self.utterances >= 0, "utterances", "must be >= 0 (0 = the whole test list)")
        check(self.figure_dpi >= 1, "figure_dpi", "must be at least 1")
        for name in ("wavenet_utterances", "report_utterances", "figure_utterances",
                     "cpu_threads"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(self.max_length_ratio >= 1, "max_length_ratio", "must be at least 1")
        check(0 <= self.failure_diagonal_mass <= 1, "failure_diagonal_mass", "must be in [0, 1]")
        check(self.recognizer in RECOGNIZER_CHOICES, "recognizer",
              f"must be one of {list(RECOGNIZER_CHOICES)}")
        check(self.bootstrap >= 0, "bootstrap", "must be >= 0 (0 = no intervals)")
        check(0 < self.confidence < 1, "confidence", "must be in (0, 1)")
        check(self.intelligible_wer_gap >= 0, "intelligible_wer_gap", "must be >= 0")
        bad = [m for m in self.rank_by if m not in PAIR_METRICS]
        check(self.rank_by and not bad, "rank_by",
              f"must be a non-empty list of {list(PAIR_METRICS)}; unknown: {bad}")


# ------------------------------------------------------------------------- test utterances


@dataclass
class TestUtterance:
    id: str
    text: str  # the corpus transcript
    normalized: str  # what is spoken: the recognizer's reference
    phonemes: tuple[str, ...]
    seconds: float  # recording duration
    audio: np.ndarray  # (N,) the recording (features' copy, T * hop samples)
    mel: np.ndarray  # (n_mels, T) its log-mel


def test_utterances(split: Path, features: Path, limit: int) -> list[TestUtterance]:
    """The first `limit` (0 = all) utterances of test.tsv with their recorded features,
    shortest first (so the WaveNet, report and figure subsets are the shortest)."""
    entries = read_split(Path(split) / "test.tsv")
    if not entries:
        raise ValueError(f"{split}/test.tsv is empty; set split.test_count >= 1")
    store = FeatureStore(features)
    out = []
    for e in entries[:limit or None]:
        if e.id not in store:
            raise ValueError(f"test utterance {e.id} is missing from {features}; re-run "
                             f"`dvc repro features`")
        item = store[e.id]
        out.append(TestUtterance(e.id, e.text, e.normalized, e.phonemes, e.duration,
                                 np.asarray(item["audio"], dtype=np.float32),
                                 np.asarray(item["mel"], dtype=np.float32)))
    return sorted(out, key=lambda u: (u.seconds, u.id))


def subset(utterances: list[TestUtterance], vocoder: str, cfg: EvaluateConfig) -> list:
    """What a vocoder is evaluated on: everything; one slow to generate (WaveNet, one
    sample at a time) only the shortest `wavenet_utterances`."""
    return utterances[:cfg.wavenet_utterances] if models.named(vocoder).slow else utterances


# ------------------------------------------------------------------------------ metrics


def _nan_to_none(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _column(rows: list[dict], name: str) -> np.ndarray:
    """The finite values of one metric over utterance rows (CSV strings accepted)."""
    values = []
    for r in rows:
        v = r.get(name)
        if v is None or v == "":
            continue
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            values.append(v)
    return np.asarray(values, dtype=float)


def mean_metrics(rows: list[dict], names) -> dict:
    """Column means over utterances, NaN-aware (a column of NaNs gives None)."""
    out = {}
    for name in names:
        values = _column(rows, name)
        out[name] = float(values.mean()) if len(values) else None
    return out


def bootstrap_interval(values: np.ndarray, resamples: int, confidence: float,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of `values` (None: fewer than 2 values or
    no resamples). Deterministic for a given seed."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def summarize(rows: list[dict], names, cfg: EvaluateConfig) -> dict:
    """{"metrics": means, "intervals": {name: [lo, hi]}, "counts": {name: n}} over utterance
    rows, each metric over the utterances where it is finite."""
    metrics, intervals, counts = {}, {}, {}
    for name in names:
        values = _column(rows, name)
        counts[name] = len(values)
        metrics[name] = float(values.mean()) if len(values) else None
        ci = bootstrap_interval(values, cfg.bootstrap, cfg.confidence)
        if ci is not None:
            intervals[name] = list(ci)
    return {"metrics": metrics, "intervals": intervals, "counts": counts}


@dataclass
class Scorers:
    """What listens to the audio: a recognizer (`tts.recognizer`) and a MOS predictor
    (`tts.mos`); either may be None (switched off in params)."""

    recognizer: object = None
    mos: object = None


def scoring_device(params) -> str:
    """Where the recognizer and MOS predictor run: the `synth.device` of the params."""
    return str(resolve_device(params.section("synth").device))


def load_scorers(cfg: EvaluateConfig, device: str = "cpu") -> Scorers:
    """The recognizer and MOS predictor `cfg` asks for (loaded once per stage)."""
    recognizer = mos = None
    if cfg.recognizer != "none":
        recognizer = load_recognizer(cfg.recognizer, cfg.recognizer_model, device,
                                     cfg.cpu_threads)
    if cfg.mos:
        mos = load_mos_predictor(device)
    return Scorers(recognizer, mos)


def listen(scorers: Scorers | None, wav: np.ndarray, sample_rate: int, reference: str) -> dict:
    """WER/CER (with the recognizer's words) and predicted MOS of one utterance."""
    out: dict = {}
    if scorers is None:
        return out
    if scorers.recognizer is not None:
        words = scorers.recognizer.transcribe(wav, sample_rate)
        out.update(error_rates(reference, words), hypothesis=words)
    if scorers.mos is not None:
        out["mos"] = scorers.mos(wav, sample_rate)
    return out


def copy_metrics(ref: np.ndarray, syn: np.ndarray, audio_cfg, cfg: EvaluateConfig) -> dict:
    """Metrics of a time-aligned resynthesis (same length as the recording)."""
    out = {**M.spectral_metrics(ref, syn, audio_cfg), "stft": M.stft_distance(ref, syn)}
    if cfg.pesq:
        out["pesq"] = M.pesq_wb(ref, syn, audio_cfg.sample_rate)
    if cfg.stoi:
        out["stoi"] = M.stoi(ref, syn, audio_cfg.sample_rate)
    return out


def aligned_f0(ref: np.ndarray, syn: np.ndarray, audio_cfg) -> tuple[np.ndarray, np.ndarray]:
    """(recording F0, synthesized F0 warped onto the recording's frames by DTW), Hz, with
    unvoiced frames 0: the pitch contour plotted against the recording."""
    path = M.dtw_align(M.mel_cepstrum(ref, audio_cfg), M.mel_cepstrum(syn, audio_cfg))
    ref_f0, ref_voiced = A.pitch(ref.astype(np.float64), audio_cfg)
    syn_f0, syn_voiced = A.pitch(syn.astype(np.float64), audio_cfg)
    warped = np.zeros_like(ref_f0)
    r = np.minimum(path.ref, len(ref_f0) - 1)
    s = np.minimum(path.syn, len(syn_f0) - 1)
    warped[r[::-1]] = (syn_f0 * syn_voiced)[s[::-1]]  # reversed: the first match wins
    return ref_f0 * ref_voiced, warped


def figures(out: Path, label: str, utt: TestUtterance, syn: np.ndarray, *, audio_cfg,
            cfg: EvaluateConfig, predicted_mel=None, attention=None) -> dict[str, str]:
    """Mel (acoustic output, resynthesized audio, recording), attention, F0 contours."""
    folder = out / FIGURE_DIR / label
    mels = {}
    if predicted_mel is not None:
        mels["acoustic model output"] = predicted_mel
    mels["synthesized audio"] = A.mel_spectrogram(torch.from_numpy(syn), audio_cfg)
    mels["recording"] = utt.mel
    made = {"mel": plots.save(plots.mel_figure(mels, f"{label} {utt.id}"),
                              folder / f"{utt.id}_mel.png", cfg.figure_dpi)}
    if attention is not None:
        made["attention"] = plots.save(plots.attention_figure(attention, f"{label} {utt.id}"),
                                       folder / f"{utt.id}_attention.png", cfg.figure_dpi)
    ref_f0, syn_f0 = aligned_f0(utt.audio, syn, audio_cfg)
    made["pitch"] = plots.save(
        plots.pitch_figure({"recording": ref_f0, f"{label} (DTW-aligned)": syn_f0},
                           audio_cfg.hop_length / audio_cfg.sample_rate, f"F0 {utt.id}"),
        folder / f"{utt.id}_pitch.png", cfg.figure_dpi)
    return {k: str(Path(v).relative_to(out)) for k, v in made.items()}


def _save_wav(out: Path, label: str, uid: str, wav, sample_rate: int) -> str:
    path = out / WAV_DIR / label / f"{uid}.wav"
    A.save_wav(path, wav, sample_rate)
    return str(path.relative_to(out))


def _set_threads(cfg: EvaluateConfig) -> None:
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)


# ------------------------------------------------------------------------ TTS pairs


def evaluate_pair(synth, utterances: list[TestUtterance], out: Path, audio_cfg,
                  cfg: EvaluateConfig, *, scorers: Scorers | None = None) -> dict:
    """Text to speech with `synth` (a `tts.inference.Synthesizer`) on every utterance;
    writes wavs and figures under `out` and returns the summary row (with per-utterance
    rows under "rows")."""
    _set_threads(cfg)
    acoustic, vocoder = synth.acoustic, synth.vocoder
    label = f"{acoustic.name}-{vocoder.name}"
    utterances = subset(utterances, vocoder.name, cfg)
    if utterances:
        synth.speak_phonemes(WARMUP_PHONEMES)  # untimed: first-call costs
    rate = audio_cfg.sample_rate
    rows, audio_links, figs = [], [], {}
    for i, utt in enumerate(tqdm(utterances, desc=label, unit="utt")):
        cap = math.ceil(cfg.max_length_ratio * utt.mel.shape[-1])
        res = synth.speak_phonemes(utt.phonemes, max_frames=cap)
        wav = res["audio"].numpy()
        seconds = len(wav) / rate
        row = {"id": utt.id, "seconds": utt.seconds, "synth_seconds": seconds,
               "duration_ratio": seconds / utt.seconds,
               **M.spectral_metrics(utt.audio, wav, audio_cfg),
               **listen(scorers, wav, rate, utt.text),
               "rtf_acoustic": M.real_time_factor(res["acoustic_seconds"], len(wav), rate),
               "rtf_vocoder": M.real_time_factor(res["vocoder_seconds"], len(wav), rate)}
        row["rtf"] = row["rtf_acoustic"] + row["rtf_vocoder"]
        if res["attention"] is not None:
            scores = alignment_scores(res["attention"].float().cpu())
            row.update(scores, hit_max_length=res["hit_max_length"],
                       failed=float(res["hit_max_length"]
                                    or scores["diagonal_mass"] < cfg.failure_diagonal_mass))
        link = _save_wav(out, label, utt.id, wav, rate)
        if i < cfg.report_utterances:
            audio_links.append({"id": utt.id, "text": utt.text, "wav": link})
        if i < cfg.figure_utterances:
            figs[utt.id] = figures(out, label, utt, wav, audio_cfg=audio_cfg, cfg=cfg,
                                   predicted_mel=res["mel"], attention=res["attention"])
        rows.append(row)
    if acoustic.attention:
        for row in rows:
            row["failure_rate"] = row["failed"]
    stats = summarize(rows, PAIR_METRICS + ("skip_rate", "repeat_rate"), cfg)
    return {"key": label, "kind": "pair", "acoustic": acoustic.name, "vocoder": vocoder.name,
            "label": f"{acoustic.name} + {vocoder.label}", "n": len(rows), **stats,
            "audio": audio_links, "figures": figs, "rows": rows}


# ------------------------------------------------------------------ copy synthesis


def evaluate_copy(vocoder, utterances: list[TestUtterance], out: Path, audio_cfg,
                  cfg: EvaluateConfig, *, seed: int = 0, device: str = "cpu",
                  scorers: Scorers | None = None) -> dict:
    """One vocoder (a `tts.inference.Vocoder`) on the recordings' own mels; sampling
    vocoders draw their noise from `seed`."""
    _set_threads(cfg)
    label = vocoder.label
    utterances = subset(utterances, vocoder.name, cfg)
    if utterances:
        vocoder(torch.from_numpy(utterances[0].mel[:, :WARMUP_FRAMES]).to(device))  # warm-up
    rate = audio_cfg.sample_rate
    rows, audio_links, figs = [], [], {}
    for i, utt in enumerate(tqdm(utterances, desc=label, unit="utt")):
        mel = torch.from_numpy(utt.mel).to(device)
        with seeded(seed, device), torch.no_grad(), M.stopwatch() as elapsed:
            wav = vocoder(mel).float().cpu().numpy()  # (N,); .cpu() waits for the device
        seconds = elapsed()
        wav = wav[:len(utt.audio)]
        row = {"id": utt.id, **copy_metrics(utt.audio, wav, audio_cfg, cfg),
               **listen(scorers, wav, rate, utt.text),
               "rtf": M.real_time_factor(seconds, len(wav), rate)}
        link = _save_wav(out, label, utt.id, wav, rate)
        if i < cfg.report_utterances:
            audio_links.append({"id": utt.id, "text": utt.text, "wav": link})
        if i < cfg.figure_utterances:
            figs[utt.id] = figures(out, label, utt, wav, audio_cfg=audio_cfg, cfg=cfg)
        rows.append(row)
    return {"key": label, "kind": "copy", "acoustic": None, "vocoder": vocoder.name,
            "label": label, "n": len(rows), **summarize(rows, COPY_METRICS, cfg),
            "audio": audio_links, "figures": figs, "rows": rows}


# -------------------------------------------------------------------- ground truth


def evaluate_ground_truth(utterances: list[TestUtterance], out: Path, audio_cfg,
                          cfg: EvaluateConfig, *, scorers: Scorers | None = None) -> dict:
    """The recordings measured like a system: the recognizer's WER here is the floor."""
    label, rate = "ground_truth", audio_cfg.sample_rate
    rows, audio_links = [], []
    for i, utt in enumerate(tqdm(utterances, desc=label, unit="utt")):
        row = {"id": utt.id, **copy_metrics(utt.audio, utt.audio, audio_cfg, cfg),
               "duration_ratio": 1.0, "mcd_band_floor": M.band_limit_mcd(utt.audio, audio_cfg),
               **listen(scorers, utt.audio, rate, utt.text)}
        if i < cfg.report_utterances:
            audio_links.append({"id": utt.id, "text": utt.text,
                                "wav": _save_wav(out, label, utt.id, utt.audio, rate)})
        rows.append(row)
    return {"key": label, "kind": "ground_truth", "acoustic": None, "vocoder": None,
            "label": "recordings", "n": len(rows),
            **summarize(rows, GROUND_TRUTH_METRICS, cfg), "audio": audio_links,
            "figures": {}, "rows": rows}


# ---------------------------------------------------------------------- summaries


def write_summary(out: Path, summaries: list[dict]) -> None:
    """summary.json (rows without per-utterance lines) and utterances.csv under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in s.items() if k != "rows"} for s in summaries]
    for row in rows:
        row["metrics"] = {k: _nan_to_none(v) for k, v in row["metrics"].items()}
    (out / SUMMARY_FILE).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    write_utterances(out / UTTERANCES_FILE, [
        {"key": s["key"], "kind": s["kind"], **r} for s in summaries for r in s["rows"]])


def write_utterances(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def read_utterances(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_summaries(folder: Path) -> list[dict]:
    """Summary rows of one evaluation folder, with paths made absolute."""
    path = Path(folder) / SUMMARY_FILE
    try:
        rows = json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is missing or not an evaluation summary ({exc}); re-run "
                         f"its evaluate stage") from exc
    lines = read_utterances(Path(folder) / UTTERANCES_FILE) \
        if (Path(folder) / UTTERANCES_FILE).is_file() else []
    for row in rows:
        row["rows"] = [r for r in lines if r.get("key") == row["key"]]
        row["audio"] = [{**a, "wav": str(Path(folder) / a["wav"])} for a in row["audio"]]
        row["figures"] = {uid: {k: str(Path(folder) / p) for k, p in figs.items()}
                          for uid, figs in row["figures"].items()}
        row["folder"] = str(folder)
    return rows


@dataclass
class Gathered:
    """Every evaluation folder's summary rows, and the evaluations not run yet."""

    pairs: list[dict]  # one per evaluated (acoustic model, vocoder) pair
    copies: list[dict]  # copy synthesis: one per vocoder (variant)
    truth: dict | None  # the recordings' row
    missing: list[str]  # `dvc repro` targets of the evaluations without a summary

    @property
    def empty(self) -> bool:
        return not (self.pairs or self.copies or self.truth)


def gather(pairs_dir: Path, vocoders_dir: Path, truth_dir: Path) -> Gathered:
    """The rows of `<pairs>/<acoustic>-<vocoder>/`, `<vocoders>/<vocoder>/` and the
    ground-truth folder for every registry name; a folder without a summary is missing."""
    found = Gathered([], [], None, [])
    for a in ACOUSTIC_MODELS:
        for v in VOCODERS:
            folder = Path(pairs_dir) / f"{a}-{v}"
            if (folder / SUMMARY_FILE).is_file():
                found.pairs += read_summaries(folder)
            else:
                found.missing.append(f"evaluate_pair@{a}-{v}")
    for v in VOCODERS:
        folder = Path(vocoders_dir) / v
        if (folder / SUMMARY_FILE).is_file():
            found.copies += read_summaries(folder)
        else:
            found.missing.append(f"evaluate_vocoder@{v}")
    if (Path(truth_dir) / SUMMARY_FILE).is_file():
        found.truth = read_summaries(truth_dir)[0]
    else:
        found.missing.append("evaluate_ground_truth")
    return found


def shared_ids(rows: list[dict]) -> list[str]:
    """Utterance ids every complete row has: the rows with the most utterances define the
    set (a row evaluated on a subset, like WaveNet's, does not shrink it)."""
    if not rows:
        return []
    most = max(len(r["rows"]) for r in rows)
    full = [r for r in rows if len(r["rows"]) == most]
    common = set.intersection(*({u["id"] for u in r["rows"]} for r in full))
    return [u["id"] for u in full[0]["rows"] if u["id"] in common]


def restrict(row: dict, ids: list[str], names, cfg: EvaluateConfig, *,
             reference: dict | None = None) -> dict:
    """`row` with metrics, intervals and n recomputed over `ids` only; with `reference`
    (the recordings) also the paired gaps `GAPS` (row minus reference, per utterance)."""
    keep = set(ids)
    lines = [u for u in row["rows"] if u["id"] in keep]
    out = {**row, "rows": lines, "n": len(lines),
           **summarize(lines, [n for n in names if n not in GAPS], cfg)}
    if reference is not None:
        ref = {u["id"]: u for u in reference["rows"]}
        for gap, name in GAPS.items():
            diffs = [{"id": u["id"], gap: float(u[name]) - float(ref[u["id"]][name])}
                     for u in lines if u["id"] in ref and u.get(name) not in (None, "")
                     and ref[u["id"]].get(name) not in (None, "")]
            gap_stats = summarize(diffs, [gap], cfg)
            for key in ("metrics", "intervals", "counts"):
                out[key] = {**out[key], **gap_stats[key]}
    return out


def compare(pairs: list[dict], copies: list[dict], truth: dict | None,
            cfg: EvaluateConfig) -> dict:
    """Rows ready to compare: each table restricted to the utterances its complete rows
    share, pairs ranked over those only; rows with fewer utterances come back unranked
    under "partial" (shown with their own n, never ranked or picked by the verdict)."""
    pair_ids, copy_ids = shared_ids(pairs), shared_ids(copies)
    out: dict = {"pair_ids": pair_ids, "copy_ids": copy_ids}
    truth_pairs = restrict(truth, pair_ids or [u["id"] for u in truth["rows"]],
                           GROUND_TRUTH_METRICS, cfg) if truth else None
    out["truth"] = truth_pairs
    out["truth_copies"] = restrict(truth, copy_ids or [u["id"] for u in truth["rows"]],
                                   GROUND_TRUTH_METRICS, cfg) if truth else None
    complete = [p for p in pairs if set(pair_ids) <= {u["id"] for u in p["rows"]}]
    partial = [p for p in pairs if p not in complete]
    out["pairs"] = rank_pairs([restrict(p, pair_ids, PAIR_METRICS, cfg, reference=truth)
                               for p in complete], cfg.rank_by)
    out["partial_pairs"] = [restrict(p, [u["id"] for u in p["rows"]], PAIR_METRICS, cfg,
                                     reference=truth) for p in partial]
    complete = [c for c in copies if set(copy_ids) <= {u["id"] for u in c["rows"]}]
    out["copies"] = sorted((restrict(c, copy_ids, COPY_METRICS, cfg) for c in complete),
                           key=lambda c: sort_key(c["metrics"].get("mcd"), "low"))
    out["partial_copies"] = [restrict(c, [u["id"] for u in c["rows"]], COPY_METRICS, cfg)
                             for c in copies if c not in complete]
    return out


def rank_pairs(pairs: list[dict], rank_by) -> list[dict]:
    """Set `rank` (1 = best) and `quality` (mean column rank) on each pair row; sorted.

    Each `rank_by` column ranks the pairs (ties share the lower rank; a missing value ranks
    last); a pair's quality is the mean of its column ranks, ties broken by MCD."""
    def column_ranks(name: str) -> list[float]:
        keys = [sort_key(p["metrics"].get(name), METRICS[name].better) for p in pairs]
        return [1 + sum(k2 < k for k2 in keys) for k in keys]

    ranks = [column_ranks(name) for name in rank_by]
    for i, pair in enumerate(pairs):
        pair["quality"] = float(np.mean([r[i] for r in ranks]))
    ordered = sorted(pairs, key=lambda p: (p["quality"],
                                           sort_key(p["metrics"].get("mcd"), "low")))
    for rank, pair in enumerate(ordered, 1):
        pair["rank"] = rank
    return ordered


def sort_key(value, better: str) -> float:
    """Smaller is better; a missing value sorts last."""
    if value is None or not math.isfinite(value):
        return math.inf
    return {"low": value, "high": -value, "one": abs(math.log(max(value, 1e-9)))}[better]


def best_pair(metrics_path: Path, acoustic: str = "", vocoder: str = "") -> tuple[str, str] | None:
    """The best-ranked evaluated pair matching the given names (empty: any), or None when
    no evaluation has been run."""
    try:
        pairs = json.loads(Path(metrics_path).read_text())["pairs"]
    except (OSError, ValueError, KeyError):
        return None
    found = []
    for key, values in pairs.items():
        a, v = key.split("-", 1)
        if (not acoustic or a == acoustic) and (not vocoder or v == vocoder):
            found.append((values.get("rank", math.inf), a, v))
    return min(found)[1:] if found else None


class PairChoice(NamedTuple):
    acoustic: str
    vocoder: str
    why: str  # as requested, the evaluation's best, or the params' defaults


def choose_pair(acoustic: str, vocoder: str, metrics: Path, cfg) -> PairChoice:
    """The pair to synthesize with: given names win; the best-ranked pair of the
    evaluation `metrics` fills the rest; without one, `cfg` (`synth:`) does."""
    if acoustic:
        check_name(acoustic, "acoustic")
    if vocoder:
        check_name(vocoder, "vocoder")
    if acoustic and vocoder:
        return PairChoice(acoustic, vocoder, "as requested")
    best = best_pair(metrics, acoustic, vocoder)
    if best:
        return PairChoice(best[0], best[1], f"best-ranked evaluated pair in {metrics}")
    return PairChoice(acoustic or cfg.acoustic, vocoder or cfg.vocoder,
                      f"synth.acoustic / synth.vocoder defaults (no evaluation in {metrics})")


def spoken_check(cfg: EvaluateConfig, wav, sample_rate: int, text: str) -> dict:
    """What the recognizer of `cfg` heard in `wav` (`heard`, with `wer`/`cer` against
    `text`) and its predicted MOS (`predicted_mos`): is synthesized audio intelligible?"""
    heard = listen(load_scorers(cfg), wav, sample_rate, text)
    out = {}
    if "hypothesis" in heard:
        out.update(heard=heard["hypothesis"], wer=round(heard["wer"], 3),
                   cer=round(heard["cer"], 3))
    if heard.get("mos") is not None:
        out["predicted_mos"] = round(heard["mos"], 2)
    return out
