"""Typed, validated params.

`load_params("params.yaml")` turns the YAML file into frozen dataclasses. Every section is
checked strictly: an unknown or misspelled key, a wrong type or an impossible value raises
`ConfigError` naming the dotted key (and the nearest valid key for a typo).

Network sections (`fastspeech2`, `dctts.text2mel`, ...) hold two kinds of keys: overrides
of the shared training defaults in `model:` (any `TrainConfig` field), and the fields of
the network's own config dataclass (declared in its `models/` module). Fields that belong
to the feature contract (`n_mels`, `hop_length`, ...) or to the symbol table
(`n_symbols`) are filled in here and may not be set in a network's section.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from models import REGISTRY, spec
from tts.contract import (CONTRACT_FIELDS, CONTRACT_FROM_AUDIO, AudioConfig, ConfigError,
                          check)
from tts.digest import to_dict
from tts.text import SYMBOLS

__all__ = ["AudioConfig", "ConfigError", "CONTRACT_FIELDS", "to_dict"]  # re-exported


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class BuiltinCorpusConfig:
    n_utterances: int = 240  # prompts synthesized
    engine: Literal["piper", "espeak"] = "piper"  # Piper's VITS voice | eSpeak NG formants
    length_scale: float = 1.0  # piper: phoneme length factor (> 1 slower)
    length_jitter: float = 0.08  # piper: uniform +- per utterance
    noise_scale: float = 0.667  # piper: VITS prior noise (seeded per utterance)
    noise_w_scale: float = 0.8  # piper: VITS duration noise (seeded per utterance)
    workers: int = 0  # piper: synthesis processes; 0 = all cores
    voice: str = "en-us"  # eSpeak NG voice
    rate_wpm: int = 160  # mean speaking rate
    rate_jitter_wpm: int = 12  # uniform +- per utterance
    pitch: int = 50  # eSpeak pitch, 0..99
    pitch_jitter: int = 6  # uniform +- per utterance
    seed: int = 1234
    sample_rate: int = 22050  # Hz of the written wavs (LJSpeech's); eSpeak output is resampled

    def validate(self, key: str) -> None:
        check(self.n_utterances >= 1, f"{key}.n_utterances", "must be at least 1")
        check(self.sample_rate > 0, f"{key}.sample_rate", "must be positive")
        check(0 <= self.length_jitter < self.length_scale, f"{key}.length_jitter",
              "must be >= 0 and below length_scale")
        check(self.noise_scale >= 0 and self.noise_w_scale >= 0, f"{key}.noise_scale",
              "noise_scale and noise_w_scale must be >= 0")
        check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")
        check(80 <= self.rate_wpm - self.rate_jitter_wpm, f"{key}.rate_wpm",
              "rate_wpm - rate_jitter_wpm must be at least 80 (eSpeak's minimum)")
        check(0 <= self.pitch - self.pitch_jitter and self.pitch + self.pitch_jitter <= 99,
              f"{key}.pitch", "pitch +- pitch_jitter must stay within 0..99")


@dataclass(frozen=True)
class LJSpeechConfig:
    url: str = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
    size: int = 2748572632
    sha256: str = "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"
    download_dir: str = "data/downloads"


@dataclass(frozen=True)
class DataConfig:
    corpus: str = "builtin"  # builtin | ljspeech | a folder in LJSpeech layout
    builtin: BuiltinCorpusConfig = field(default_factory=BuiltinCorpusConfig)
    ljspeech: LJSpeechConfig = field(default_factory=LJSpeechConfig)


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 1234
    val_count: int = 8
    test_count: int = 24
    min_duration: float = 0.5
    max_duration: float = 12.0
    max_phonemes: int = 200
    transcript_recognizer: str = "whisper"  # whisper | none: confirm transcripts by ear
    max_transcript_cer: float = 0.5  # drop an utterance whose recognizer CER is above this
    workers: int = 0  # processes for the transcript check; 0 = all cores

    def validate(self, key: str) -> None:
        check(self.transcript_recognizer in ("whisper", "none"),
              f"{key}.transcript_recognizer", "must be whisper or none")
        check(self.max_transcript_cer > 0, f"{key}.max_transcript_cer", "must be positive")
        check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")
        check(self.val_count >= 1, f"{key}.val_count", "must be at least 1")
        check(self.test_count >= 1, f"{key}.test_count", "must be at least 1")
        check(0 <= self.min_duration < self.max_duration, f"{key}.min_duration",
              "must be >= 0 and below split.max_duration")


@dataclass(frozen=True)
class FeaturesConfig:
    workers: int = 0  # 0 = all cores
    shard_size: int = 1000  # utterances per shard

    def validate(self, key: str) -> None:
        check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")
        check(self.shard_size >= 1, f"{key}.shard_size", "must be at least 1")


@dataclass(frozen=True)
class TrainConfig:
    """The `model:` section: training defaults every network inherits."""

    lr: float = 1e-3
    batch_size: int = 8
    steps: int = 500
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    precision: Literal["fp32", "bf16"] = "fp32"
    devices: int = 1  # > 1: torchrun + DDP
    seed: int = 1234
    log_every: int = 10
    val_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    val_utterances: int = 4
    segment_frames: int = 32  # mel frames per random training segment (segment-trained networks)
    cpu_threads: int = 1  # torch threads when training on CPU; 0 = torch's default
    init_from: str = ""  # fine-tune from this finished model file (or models folder); "" = scratch
    freeze: tuple[str, ...] = ()  # fine-tuning: named parts of the network kept fixed
    deterministic: bool = False  # torch.use_deterministic_algorithms (matters on GPU)
    val_listen_clips: int = 2  # validation clips scored by ear (predicted MOS, recognizer
    # CER) at every validation (tts.quality); 0 = off
    val_listen_seconds: float = 2.0  # segment-trained networks: clips cut to this length


    def validate(self, key: str) -> None:
        check(self.lr > 0, f"{key}.lr", "must be positive")
        check(self.batch_size >= 1, f"{key}.batch_size", "must be at least 1")
        check(self.steps >= 1, f"{key}.steps", "must be at least 1")
        check(0 <= self.warmup_steps, f"{key}.warmup_steps", "must be >= 0")
        check(0 <= self.min_lr_ratio <= 1, f"{key}.min_lr_ratio", "must be in [0, 1]")
        check(self.grad_clip >= 0, f"{key}.grad_clip", "must be >= 0 (0 disables)")
        check(self.devices >= 1, f"{key}.devices", "must be at least 1")
        for name in ("log_every", "val_every", "checkpoint_every", "keep_checkpoints",
                     "val_utterances", "segment_frames"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        check(self.cpu_threads >= 0, f"{key}.cpu_threads", "must be >= 0 (0 = torch default)")
        check(not self.freeze or bool(self.init_from), f"{key}.freeze",
              "freezes parts of a base model: set `init_from` too (or `freeze: []`)")
        check(self.val_listen_clips >= 0, f"{key}.val_listen_clips", "must be >= 0 (0 = off)")
        check(self.val_listen_seconds > 0, f"{key}.val_listen_seconds", "must be positive")


# Sections owned by later stages declare their dataclass in the module that uses it and
# register it here by name; the loader validates them the same way.
EXTRA_SECTIONS: dict[str, str] = {
    "text": "tts.text:TextConfig",
    "align": "tts.alignment:AlignConfig",
    "noise_schedule": "tts.noise_schedule:NoiseScheduleConfig",
    "evaluate": "tts.evaluation:EvaluateConfig",
    "synth": "tts.inference:SynthConfig",
    "griffin_lim": "models.griffin_lim:GriffinLimConfig",
}


# ------------------------------------------------------------------ strict dataclass build

def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(c in letters for c in short)


def _nearest(key: str, valid: typing.Iterable[str]) -> str:
    """' did you mean ...' for a typo (difflib) or a spelled-out abbreviation
    (`learning_rate` -> `lr`: the valid key's letters appear in order in the typed one)."""
    valid = list(valid)
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not match:
        match = sorted((v for v in valid if v[:1] == key[:1] and _is_subsequence(v, key)),
                       key=len, reverse=True)[:1]
    return f"; did you mean `{match[0]}`?" if match else ""


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"params: `{key}` must be a mapping of {tp.__name__} fields")
        return build(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"params: `{key}` is {value!r}; expected one of {list(allowed)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"params: `{key}` = {value!r} matches none of {tp}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"params: `{key}` must be a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"params: `{key}` must be a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"params: `{key}` must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"params: `{key}` must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"params: `{key}` must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params: `{key}` must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def build(cls: type, values: dict, key: str, extra_valid: typing.Iterable[str] = ()):
    """Construct dataclass `cls` from `values`, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"params: unknown key `{key}.{name}`"
                              f"{_nearest(name, list(fields) + list(extra_valid))}")
        kwargs[name] = _coerce(value, hints[name], f"{key}.{name}")
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"params: section `{key}`: {exc}") from exc
    if hasattr(obj, "validate"):
        obj.validate(key)
    return obj


def _import(path: str):
    """A section's dataclass by "module:Name": EXTRA_SECTIONS names its owners instead of
    importing them, so a section's module may itself import this one."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------------ params


@dataclass(frozen=True)
class Params:
    data: DataConfig
    split: SplitConfig
    audio: AudioConfig
    features: FeaturesConfig
    model: TrainConfig
    raw: dict  # the whole validated YAML, for sections resolved lazily
    extra: dict  # section name -> validated dataclass of EXTRA_SECTIONS present in the file

    def section(self, name: str):
        """A validated EXTRA_SECTIONS config (its defaults when the file omits it)."""
        if name in self.extra:
            return self.extra[name]
        return build(_import(EXTRA_SECTIONS[name]), {}, name)

    def network(self, name: str) -> tuple[TrainConfig, Any]:
        """(training config, model config) for a registry network, e.g. 'fastspeech2'."""
        return network_config(self, name)


_CORE = {"data": DataConfig, "split": SplitConfig, "audio": AudioConfig,
         "features": FeaturesConfig, "model": TrainConfig}


def get_path(raw: dict, dotted: str) -> Any:
    """The value at a dotted key of raw params (`dctts.text2mel`), or None where absent."""
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def network_config(params: Params, name: str) -> tuple[TrainConfig, Any]:
    s = spec(name)
    section = get_path(params.raw, s.section) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"params: `{s.section}` must be a mapping")
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    model_fields = {f.name for f in dataclasses.fields(s.config_cls) if f.init}
    overrides, arch = {}, {}
    for key, value in section.items():
        if key in CONTRACT_FIELDS:
            source = "audio" if key in CONTRACT_FROM_AUDIO else "the text symbol table"
            raise ConfigError(f"params: `{s.section}.{key}` comes from {source}; "
                              f"remove it here" + (f" and set `audio.{key}`"
                                                   if source == "audio" else ""))
        if key in train_keys:
            overrides[key] = value
        elif key in model_fields:
            arch[key] = value
        else:
            raise ConfigError(f"params: unknown key `{s.section}.{key}`"
                              f"{_nearest(key, sorted(train_keys | model_fields))}")
    base = dataclasses.asdict(params.model)
    train = build(TrainConfig, {**base, **overrides}, s.section)
    contract = {k: getattr(params.audio, k) for k in CONTRACT_FROM_AUDIO if k in model_fields}
    if "n_symbols" in model_fields:
        contract["n_symbols"] = len(SYMBOLS)
    # contract values go in before `validate` runs (e.g. upsampling product == hop_length)
    cfg = build(s.config_cls, {**arch, **contract}, s.section)
    return train, cfg


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} not found; run from the repository root")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark, opened = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = getattr(exc, "context", None)
        if context and opened is not None and (mark is None or opened.line != mark.line):
            context = f"{context} (line {opened.line + 1})"
        problem = " ".join(str(p) for p in (context, getattr(exc, "problem", None)) if p)
        raise ConfigError(f"{where}: params file is not valid YAML: {problem or exc}; fix "
                          f"line {mark.line + 1 if mark else '?'}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: params file must be a mapping of sections")
    return parse_params(raw)


def parse_params(raw: dict) -> Params:
    network_roots = {spec(n).section.split(".")[0] for n in REGISTRY}
    valid = set(_CORE) | set(EXTRA_SECTIONS) | network_roots
    for key in raw:
        if key not in valid:
            raise ConfigError(f"params: unknown section `{key}`{_nearest(key, sorted(valid))}")
    core = {name: build(cls, raw.get(name) or {}, name) for name, cls in _CORE.items()}
    extra = {name: build(_import(EXTRA_SECTIONS[name]), raw[name] or {}, name)
             for name in EXTRA_SECTIONS if name in raw}
    params = Params(**core, raw=raw, extra=extra)
    for name in REGISTRY:  # validate every network section eagerly
        if get_path(raw, spec(name).section) is not None:
            network_config(params, name)
    check_paired_networks(params)
    return params


# Fields two networks must agree on because one consumes the other's output, checked when
# params load (not after both have trained): (network, network, fields).
PAIRED_NETWORKS = (("dctts_text2mel", "dctts_ssrn", ("reduction", "mel_max")),)


def check_paired_networks(params: Params) -> None:
    for first, second, fields in PAIRED_NETWORKS:
        if first not in REGISTRY or second not in REGISTRY:
            continue
        (_, a), (_, b) = network_config(params, first), network_config(params, second)
        for name in fields:
            if getattr(a, name) != getattr(b, name):
                raise ConfigError(
                    f"params: `{spec(first).section}.{name}` = {getattr(a, name)!r} and "
                    f"`{spec(second).section}.{name}` = {getattr(b, name)!r} must be equal "
                    f"({second} consumes {first}'s output); set both to the same value")
