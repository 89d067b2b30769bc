"""Inference: trained acoustic models and vocoders by the names users type, and
text -> normalized phonemes -> mel -> waveform.

Finished models live under one root (`data/models/` in the DAG), one folder per name of
`models.MODELS`, which says what each folder holds and how it loads: finished model files
of registry networks (joined by the entry's `assemble` hook, e.g. DCTTS's two networks),
a settings file (Griffin-Lim: nothing trained), searched noise schedules (WaveGrad:
`schedules/best_<n>.json`, one variant each). No code here knows a model by its name.

Text is normalized and phonemized by `tts.text` (the same front-end as training), split
into sentences at the phonemizer's sentence-end pauses (a sentence longer than
`max_phonemes` is split again at its internal pauses, then between words), synthesized
chunk by chunk and joined with `sentence_pause` seconds of silence. Everything runs under
a fixed seed, so the same text and models give the same audio.
"""

from __future__ import annotations

import difflib
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import models
from models import ACOUSTIC_MODELS, VOCODERS, NamedModel
from tts.checkpoint import CheckpointError, load_model
from tts.contract import check as check_key
from tts.metrics import stopwatch
from tts.text import DEFAULT_CONFIG, SIL, SP, UnspeakableTextError, phonemize_words, to_ids

MODEL_ROOT = Path("data/models")
SCHEDULE_GLOB = "best_*.json"  # written by tts.noise_schedule.write_results
# Feature-contract fields that an acoustic model and a vocoder must agree on (each
# compared where both configs carry it).
CONTRACT_KEYS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin",
                 "fmax", "log_floor")


class SynthesisError(ValueError):
    """Text or models that cannot be synthesized; the message says what to do."""


@dataclass(frozen=True)
class SynthConfig:
    acoustic: str = "fastspeech2"  # `make synth` pair when no evaluation has ranked them
    vocoder: str = "wavegrad"
    wavegrad_iterations: int = 0  # searched noise schedule to sample with; 0 = best-scoring
    temperature: float = 1.0  # noise scale of WaveNet / Parallel WaveNet sampling
    max_frames_per_phoneme: int = 15  # attention models stop by L * this frames at the latest
    max_phonemes: int = 150  # a longer sentence is split at its pauses, then between words
    sentence_pause: float = 0.3  # seconds of silence between split sentences
    seed: int = 1234  # sampling noise (prenet dropout, vocoder noise): same text, same audio
    # spectral-contrast postfilter on every acoustic model's mel before the vocoder
    # (`spectral_contrast`); 0 = off. Not applied to copy synthesis.
    postfilter: float = 1.0
    postfilter_width: float = 4.0  # its envelope's smoothing, mel bins (standard deviation)
    device: str = "cpu"  # cpu | cuda | auto (cuda when available)

    def validate(self, key: str) -> None:
        def check(ok: bool, name: str, message: str) -> None:  # name: a field of this section
            check_key(ok, f"{key}.{name}", message)

        check(self.acoustic in ACOUSTIC_MODELS, "acoustic",
              f"must be one of {list(ACOUSTIC_MODELS)}")
        check(self.vocoder in VOCODERS, "vocoder", f"must be one of {list(VOCODERS)}")
        check(self.wavegrad_iterations >= 0, "wavegrad_iterations", "must be >= 0 (0 = best)")
        check(self.temperature >= 0, "temperature", "must be >= 0")
        check(self.max_frames_per_phoneme >= 1, "max_frames_per_phoneme", "must be at least 1")
        check(self.max_phonemes >= 3, "max_phonemes", "must be at least 3 (sil, a phone, sil)")
        check(self.sentence_pause >= 0, "sentence_pause", "must be >= 0")
        check(self.postfilter >= 0, "postfilter", "must be >= 0 (0 = off)")
        check(self.postfilter_width > 0, "postfilter_width", "must be > 0 (mel bins)")
        check(self.device in ("cpu", "cuda", "auto"), "device", "must be cpu, cuda or auto")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SynthesisError("synth.device is cuda but no CUDA device is visible; use cpu")
    return torch.device(name)


# ------------------------------------------------------------------------------- loading


def check_name(name: str, kind: str) -> NamedModel:
    """The registry entry of `name` if it is a valid acoustic model / vocoder name, else a
    SynthesisError that lists the valid ones (and says so when a name of the other kind
    was given)."""
    valid, other = ((ACOUSTIC_MODELS, VOCODERS) if kind == "acoustic"
                    else (VOCODERS, ACOUSTIC_MODELS))
    if name in valid:
        return models.named(name)
    if name in other:
        hint = f" ({name!r} is {'a vocoder' if kind == 'acoustic' else 'an acoustic model'})"
    else:
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SynthesisError(f"unknown {kind} model {name!r}{hint}; valid {kind} models: "
                         f"{', '.join(valid)}")


def require(root: Path, entry: NamedModel) -> Path:
    """The folder of a trained model, or an error saying which `dvc repro` builds it."""
    folder = Path(root) / entry.name
    missing = [p for p in entry.parts if not (folder / p.file).exists()]
    if missing:
        files = ", ".join(str(folder / p.file) for p in missing)
        stages = " ".join(dict.fromkeys(p.stage for p in missing))
        raise SynthesisError(f"{entry.name} is not trained yet ({files} missing); build it "
                             f"with `dvc repro {stages}`")
    return folder


def _load(path: Path, expected: str):
    try:
        loaded = load_model(path)
    except CheckpointError as exc:
        raise SynthesisError(str(exc)) from exc
    if loaded.name != expected:
        raise SynthesisError(f"{path} holds a {loaded.name} model, not {expected}; re-run "
                             f"its stage")
    return loaded.model, loaded.cfg


def load_module(entry: NamedModel, folder: Path) -> tuple[torch.nn.Module, Any]:
    """(inference module, config carrying its feature contract) of a model folder: built
    from its settings file, or its networks' finished model files (the first network's
    config speaks for the contract), joined by the entry's `assemble` hook."""
    build = entry.settings_builder()
    if build is not None:
        path = folder / entry.settings_file
        try:
            return build(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise SynthesisError(f"{path} is not a {entry.name} settings file ({exc}); "
                                 f"re-run `dvc repro {entry.parts[0].stage}`") from exc
    loaded = [_load(folder / p.file, p.network) for p in entry.parts if p.network]
    join = entry.assembler()
    if join is None:
        return loaded[0]
    try:
        return join(*(module for module, _ in loaded)), loaded[0][1]
    except ValueError as exc:
        raise SynthesisError(str(exc)) from exc


def contract(cfg: Any) -> dict:
    """The feature-contract fields a config carries."""
    return {k: getattr(cfg, k) for k in CONTRACT_KEYS if hasattr(cfg, k)}


GAUSSIAN_REACH = 3  # the postfilter's smoothing kernel reaches this many std each way


def spectral_contrast(log_mel: Tensor, amount: float, width: float) -> Tensor:
    """The postfilter: sharpen the spectral peaks of a predicted log-mel (..., n_mels, T).

    Each frame's log spectrum moves away from its local envelope, a Gaussian smoothing
    across mel bins (standard deviation `width` bins): log_mel + amount * (log_mel -
    envelope). This is the log-domain form of the formant-enhancing postfilters of speech
    codecs and statistical parametric synthesis: acoustic models trained with an L1/L2 loss
    predict spectra flatter than speech's, and Griffin-Lim turns that flatness into buzz. A
    frame with a flat spectrum (silence at the log floor) stays as it is; amount 0 is the
    identity.
    """
    if amount == 0:
        return log_mel
    reach = max(1, int(GAUSSIAN_REACH * width))
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float32, device=log_mel.device)
    kernel = torch.exp(-0.5 * (offsets / width) ** 2)
    kernel = (kernel / kernel.sum()).to(log_mel.dtype)  # (K,)
    shape = log_mel.shape
    frames = log_mel.reshape(-1, *shape[-2:]).transpose(1, 2)  # (B, T, n_mels)
    rows = frames.reshape(-1, 1, shape[-2])  # (B * T, 1, n_mels)
    envelope = F.conv1d(F.pad(rows, (reach, reach), mode="replicate"), kernel[None, None])
    envelope = envelope.reshape(frames.shape).transpose(1, 2).reshape(shape)  # (..., n_mels, T)
    return log_mel + amount * (log_mel - envelope)


@dataclass
class Acoustic:
    """A trained acoustic model: phoneme ids -> log-mel (and attention for attention models)."""

    name: str
    module: torch.nn.Module
    cfg: Any  # its config: carries the feature-contract fields
    max_frames_per_phoneme: int
    attention: bool = False  # the registry trait: synthesize takes max_frames, gives attention

    def __call__(self, ids: Tensor, max_frames: int | None = None) -> dict:
        """ids (1, L) -> {mel (n_mels, T), attention (T_out, L) or None, hit_max_length};
        attention models stop by `max_frames` (default: L * max_frames_per_phoneme)."""
        options = {}
        if self.attention:
            options["max_frames"] = max_frames or self.max_frames_per_phoneme * ids.shape[1]
        out = self.module.synthesize(ids, **options)
        return {"mel": out["mel"][0], "attention": out.get("attention"),  # (n_mels, T)
                "hit_max_length": bool(out.get("hit_max_length", False))}


@dataclass
class Vocoder:
    """A vocoder with its inference options bound: log-mel -> waveform."""

    name: str  # user-facing name
    label: str  # name plus the option that matters (the searched noise schedule)
    module: torch.nn.Module
    cfg: Any
    options: dict = field(default_factory=dict)  # keyword arguments of `generate`

    def __call__(self, mel: Tensor) -> Tensor:
        """mel (n_mels, T) -> audio (T * hop,)."""
        return self.module.generate(mel[None], **self.options)[0]


def load_acoustic(name: str, root: Path = MODEL_ROOT, cfg: SynthConfig = SynthConfig(),
                  device: torch.device | str = "cpu") -> Acoustic:
    entry = check_name(name, "acoustic")
    module, model_cfg = load_module(entry, require(root, entry))
    return Acoustic(name, module.eval().to(device), model_cfg, cfg.max_frames_per_phoneme,
                    entry.attention)


def noise_schedules(name: str, root: Path = MODEL_ROOT) -> dict[int, dict]:
    """{iterations: best_<n>.json record (betas, score, ...)} of a vocoder's searched
    noise schedules (the noise-schedule search)."""
    entry = models.named(name)
    part = next(p for p in entry.parts if p.file == entry.schedules)
    folder = require(root, entry) / part.file
    records = {}
    for path in sorted(folder.glob(SCHEDULE_GLOB)):
        try:
            record = json.loads(path.read_text())
            records[int(record["iterations"])] = record
            if not record["betas"]:
                raise ValueError("empty betas")
        except (ValueError, KeyError, TypeError) as exc:
            raise SynthesisError(f"{path} is not a noise-schedule record ({exc}); re-run "
                                 f"`dvc repro {part.stage}`") from exc
    if not records:
        raise SynthesisError(f"no {SCHEDULE_GLOB} in {folder}; run `dvc repro {part.stage}`")
    return records


def choose_schedule(records: dict[int, dict], iterations: int) -> dict:
    """The record for `iterations` (0: the best-scoring one)."""
    if iterations == 0:
        return min(records.values(), key=lambda r: (r["score"], r["iterations"]))
    if iterations not in records:
        raise SynthesisError(f"no searched noise schedule with {iterations} iterations "
                             f"(have {sorted(records)}); add it to `noise_schedule.iterations` "
                             f"or set `synth.wavegrad_iterations` to one of them (0 = best)")
    return records[iterations]


def load_vocoder(name: str, root: Path = MODEL_ROOT, cfg: SynthConfig = SynthConfig(),
                 device: torch.device | str = "cpu", *, iterations: int | None = None) -> Vocoder:
    """A vocoder by name; `iterations` picks a searched noise schedule (default: the
    config's `wavegrad_iterations`) for a vocoder that has them."""
    entry = check_name(name, "vocoder")
    module, model_cfg = load_module(entry, require(root, entry))
    if entry.from_settings:  # nothing trained: a settings object, kept as it was built
        return Vocoder(name, name, module, model_cfg)
    module = module.eval().to(device)
    if entry.schedules:
        record = choose_schedule(noise_schedules(name, root),
                                 cfg.wavegrad_iterations if iterations is None else iterations)
        return Vocoder(name, entry.variant_label(record["iterations"]), module, model_cfg,
                       {"betas": [float(b) for b in record["betas"]]})
    options = {"temperature": cfg.temperature} if entry.sampling else {}
    return Vocoder(name, name, module, model_cfg, options)


def load_variants(name: str, root: Path = MODEL_ROOT, cfg: SynthConfig = SynthConfig(),
                  device: torch.device | str = "cpu") -> list[Vocoder]:
    """Every variant of a vocoder: one per searched noise schedule, else just the one."""
    if check_name(name, "vocoder").schedules:
        return [load_vocoder(name, root, cfg, device, iterations=n)
                for n in sorted(noise_schedules(name, root))]
    return [load_vocoder(name, root, cfg, device)]


def check_contract(audio, *parts: tuple[str, Any]) -> None:
    """Every (what, config) must match the feature contract `audio` where it has a field."""
    want = contract(audio)
    for what, cfg in parts:
        for key, value in contract(cfg).items():
            if key in want and not math.isclose(float(value), float(want[key]), rel_tol=1e-9):
                raise SynthesisError(f"{what} was trained with {key}={value}, but `audio.{key}` "
                                     f"is {want[key]}: re-run its training stage (`dvc repro`)")


# --------------------------------------------------------------------------- text chunks


@dataclass(frozen=True)
class Chunk:
    text: str  # the normalized words spoken
    phonemes: tuple[str, ...]  # starts and ends with `sil`


Entry = tuple[str, list[str]]  # (word or "" for a pause, phones), as tts.text.phonemize_words


def _count(entries: list[Entry]) -> int:
    return sum(len(phones) for _, phones in entries)


def _pack(units: list[list[Entry]], budget: int, glue: list[Entry]) -> list[list[Entry]]:
    """Greedily join consecutive units (with `glue` between) while they fit `budget` phones."""
    chunks: list[list[Entry]] = []
    for unit in units:
        if chunks and _count(chunks[-1] + glue + unit) <= budget:
            chunks[-1] = chunks[-1] + glue + unit
        else:
            chunks.append(list(unit))
    return chunks


def _split_at(entries: list[Entry], pause: str) -> list[list[Entry]]:
    parts: list[list[Entry]] = [[]]
    for word, phones in entries:
        if not word and phones == [pause]:
            parts.append([])
        else:
            parts[-1].append((word, phones))
    return [p for p in parts if any(word for word, _ in p)]


def split_text(text: str, text_cfg, max_phonemes: int) -> list[Chunk]:
    """Sentences (each within `max_phonemes` where the words allow) of `text`;
    `text_cfg`: the params' `text` section (`tts.text.TextConfig`; None: its defaults)."""
    if not text or not text.strip():
        raise SynthesisError("nothing to synthesize: the text is empty")
    try:
        entries = phonemize_words(text, text_cfg or DEFAULT_CONFIG)
    except UnspeakableTextError as exc:
        raise SynthesisError(str(exc)) from exc
    budget = max_phonemes - 2  # each chunk is wrapped in `sil`
    chunks = []
    for sentence in _split_at(entries, SIL):
        pieces = [sentence]
        if _count(sentence) > budget:  # at internal pauses, then between words
            pieces = []
            for clause in _pack(_split_at(sentence, SP), budget, [("", [SP])]):
                pieces += [clause] if _count(clause) <= budget else _pack(
                    [[e] for e in clause], budget, [])
        for piece in pieces:
            while piece and not piece[0][0]:  # no chunk starts or ends with a pause
                piece = piece[1:]
            while piece and not piece[-1][0]:
                piece = piece[:-1]
            phones = (SIL, *(p for _, ps in piece for p in ps), SIL)
            chunks.append(Chunk(" ".join(w for w, _ in piece if w), phones))
    return chunks


# ----------------------------------------------------------------------------- synthesis


@dataclass
class Synthesis:
    audio: Tensor  # (N,) in [-1, 1]
    mel: Tensor  # (n_mels, T): every chunk's mel, pauses filled with the log floor
    chunks: list[Chunk]
    attention: list  # per chunk: (T_out, L) tensor or None
    hit_max_length: bool  # an attention model never decided to stop in some chunk
    acoustic_seconds: float  # compute time of the acoustic model
    vocoder_seconds: float  # compute time of the vocoder
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Run the block with every RNG on `device` seeded, restoring the global state after."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class Synthesizer:
    """An acoustic model and a vocoder that agree on the feature contract."""

    def __init__(self, acoustic: Acoustic, vocoder: Vocoder, audio_cfg, text_cfg=None, *,
                 cfg: SynthConfig = SynthConfig(), device: torch.device | str = "cpu"):
        check_contract(audio_cfg, (acoustic.name, acoustic.cfg), (vocoder.name, vocoder.cfg))
        self.acoustic, self.vocoder, self.audio_cfg = acoustic, vocoder, audio_cfg
        self.text_cfg, self.cfg, self.device = text_cfg, cfg, torch.device(device)

    def _timed(self, fn, *args, **kwargs):
        with stopwatch() as elapsed:
            out = fn(*args, **kwargs)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        return out, elapsed()

    def speak_phonemes(self, phonemes, max_frames: int | None = None) -> dict:
        """One chunk: phonemes (symbols) -> {mel, audio, attention, hit_max_length,
        acoustic_seconds, vocoder_seconds}; seeded, so repeatable. `max_frames` caps
        attention models (default: the config's per-phoneme cap). `mel` is the acoustic
        model's; the vocoder hears it through the postfilter (`cfg.postfilter`)."""
        ids = torch.tensor([to_ids(list(phonemes))], device=self.device)  # (1, L)
        with seeded(self.cfg.seed, self.device), torch.no_grad():
            acoustic, t_acoustic = self._timed(self.acoustic, ids, max_frames)
            mel = spectral_contrast(acoustic["mel"], self.cfg.postfilter,
                                    self.cfg.postfilter_width)  # (n_mels, T)
            audio, t_vocoder = self._timed(self.vocoder, mel)
        return {**acoustic, "mel": acoustic["mel"].float().cpu(),
                "audio": audio.float().cpu(), "acoustic_seconds": t_acoustic,
                "vocoder_seconds": t_vocoder}

    def __call__(self, text: str) -> Synthesis:
        chunks = split_text(text, self.text_cfg, self.cfg.max_phonemes)
        pause_frames = round(self.cfg.sentence_pause * self.audio_cfg.sample_rate
                             / self.audio_cfg.hop_length)
        hop, floor = self.audio_cfg.hop_length, math.log(self.audio_cfg.log_floor)
        mels, audios, attention = [], [], []
        hit, t_acoustic, t_vocoder = False, 0.0, 0.0
        for i, chunk in enumerate(chunks):
            if i:  # the pause: silence in the audio, the log floor in the mel
                mels.append(torch.full((self.audio_cfg.n_mels, pause_frames), floor))
                audios.append(torch.zeros(pause_frames * hop))
            out = self.speak_phonemes(chunk.phonemes)
            mels.append(out["mel"]), audios.append(out["audio"])
            attention.append(out["attention"])
            hit |= out["hit_max_length"]
            t_acoustic += out["acoustic_seconds"]
            t_vocoder += out["vocoder_seconds"]
        return Synthesis(torch.cat(audios), torch.cat(mels, dim=-1), chunks, attention, hit,
                         t_acoustic, t_vocoder, self.audio_cfg.sample_rate)


def load_synthesizer(acoustic: str, vocoder: str, audio_cfg, text_cfg, *,
                     cfg: SynthConfig = SynthConfig(), root: Path = MODEL_ROOT,
                     iterations: int | None = None) -> Synthesizer:
    """Both models by name (names checked before anything is loaded)."""
    check_name(acoustic, "acoustic"), check_name(vocoder, "vocoder")
    device = resolve_device(cfg.device)
    return Synthesizer(load_acoustic(acoustic, root, cfg, device),
                       load_vocoder(vocoder, root, cfg, device, iterations=iterations),
                       audio_cfg, text_cfg, cfg=cfg, device=device)
