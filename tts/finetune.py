"""Fine-tuning: start a network's training from a finished model file of this pipeline.

`init_from` (in `model:` or in a network's own section) names a model file a training
stage wrote (`data/models/fastspeech2/model.pt` of another experiment, or a copy kept
anywhere), or a folder laid out like `data/models/`, where each network finds its own file
(`models.MODEL_FILES`): `model.init_from: /path/to/A/data/models` fine-tunes every network.

`prepare(...)`, called by the training stage before the loop is built:
- refuses what cannot work, naming the key, both values and what to do: a file of another
  network, another architecture size, another feature contract (`audio.*`), another
  symbol table or text front-end version (text networks);
- loads the base weights into the freshly built network (before step 0; the optimizer,
  LR schedule and resume state stay the loop's own and start fresh);
- freezes the named parts (`freeze:`; the parts come from the model: its direct children
  and its `PART_GROUPS`);
- returns what the run records: the base model's sha256 for the resume hash, provenance
  for every checkpoint, tags for MLflow.

Every finished model also records its feature contract and text front-end
(`contract_record`), which is what a later fine-tuning run checks against.

DVC sees the base file through stage `base_models` (`manifest`): it runs on every
`dvc repro` (always changed), hashes each network's `init_from` and writes
`data/base/<name>.json`; a training stage depends on its manifest, so a changed base model
re-runs fine-tuning and what follows, while an unchanged one (or none) changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import models
from models import MODEL_FILES, spec
from tts.checkpoint import config_fields, read
from tts.config import CONTRACT_FIELDS, AudioConfig, TrainConfig, get_path, load_params, to_dict
from tts.digest import sha256_file
from tts.text import FRONTEND_VERSION, SYMBOLS, SYMBOLS_VERSION

SCRATCH = '""'  # how to write "train from scratch" in a message


class FineTuneError(ValueError):
    """A base model that cannot be fine-tuned here; the message names the key and the fix."""


@dataclass
class BaseModel:
    key: str  # the params key that set init_from, e.g. "fastspeech2.init_from"
    path: Path  # the resolved model file
    sha256: str
    payload: dict  # the file's contents (tts.checkpoint.model_payload)


@dataclass
class FineTune:
    """What a run records about its start; empty for a run from scratch."""

    base: BaseModel | None = None
    frozen: list[str] = field(default_factory=list)  # part names
    hash_extra: dict = field(default_factory=dict)  # joins the resume hash
    payload_extra: dict = field(default_factory=dict)  # joins every checkpoint
    tags: dict = field(default_factory=dict)  # MLflow tags
    notes: list[str] = field(default_factory=list)  # said once before training


# ----------------------------------------------------------------------- keys and files


def key_of(raw: dict, name: str, field_name: str) -> str:
    """The params key a network's `field_name` came from: its own section or `model:`."""

    section = spec(name).section
    own = get_path(raw, section)
    return f"{section}.{field_name}" if isinstance(own, dict) and field_name in own \
        else f"model.{field_name}"


def resolve(value: str, name: str, key: str) -> Path | None:
    """The model file `init_from` = `value` names for network `name` (None: from scratch)."""

    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        inside = path / MODEL_FILES[name]
        if not inside.is_file():
            raise FineTuneError(
                f"params: `{key}` = {value} is a folder without {MODEL_FILES[name]}: point it "
                f"at the `data/models` folder of a finished experiment, at a {name} model "
                f"file, or set `{key}: {SCRATCH}` to train {name} from scratch")
        return inside
    if not path.is_file():
        raise FineTuneError(
            f"params: `{key}` = {value}: no such file or folder (relative paths start at the "
            f"repository root); point it at a finished model file such as "
            f"data/models/{MODEL_FILES[name]} of another experiment")
    return path


def manifest(raw: dict, train: TrainConfig, name: str) -> dict:
    """The DVC-tracked record of network `name`'s base model: which file, which bytes."""
    key = key_of(raw, name, "init_from")
    path = resolve(train.init_from, name, key)
    return {"network": name, "key": key, "init_from": str(path) if path else None,
            "sha256": sha256_file(path) if path else None}


def read_base(raw: dict, train: TrainConfig, name: str,
              manifest_path: Path | None = None) -> BaseModel | None:
    """The base model named by `init_from`, checked against the base_models manifest."""
    key = key_of(raw, name, "init_from")
    path = resolve(train.init_from, name, key)
    if path is None:
        return None
    sha = sha256_file(path)
    if manifest_path is not None:
        recorded = json.loads(Path(manifest_path).read_text())
        if (recorded.get("init_from"), recorded.get("sha256")) != (str(path), sha):
            raise FineTuneError(
                f"{manifest_path} (stage base_models) records init_from "
                f"{recorded.get('init_from')} with sha256 {recorded.get('sha256')}, but `{key}` "
                f"now gives {path} with sha256 {sha}: run `dvc repro` (base_models re-hashes "
                f"the base model before training)")
    return BaseModel(key, path, sha, read(path))


# ------------------------------------------------------------------------------ checks


def contract_record(audio: AudioConfig, text_cfg: Any = None) -> dict:
    """What every finished model records about its inputs, checked when fine-tuning it."""
    text = {"symbols_version": SYMBOLS_VERSION, "frontend_version": FRONTEND_VERSION,
            "symbols": list(SYMBOLS)}
    if text_cfg is not None:
        text["config"] = to_dict(text_cfg)
    return {"audio": dataclasses.asdict(audio), "text": text}


def _scratch_hint(base: BaseModel, name: str) -> str:
    return f"or train {name} from scratch with `{base.key}: {SCRATCH}`"


def check_network(base: BaseModel, name: str) -> None:

    held = base.payload.get("model_name")
    if held != name:
        raise FineTuneError(
            f"params: `{base.key}` = {base.path} holds a {held} model, but this stage trains "
            f"{name}: point it at a {name} model file (data/models/{MODEL_FILES[name]} of the "
            f"base experiment) {_scratch_hint(base, name)}")


def check_contract(base: BaseModel, name: str, audio: AudioConfig) -> None:
    """Every `audio.*` value must equal the base model's: its inputs or outputs are these
    features. Files written before the contract was recorded: the fields in their config."""
    recorded = base.payload.get("audio")
    if recorded is None:
        recorded = {k: v for k, v in base.payload.get("config", {}).items()
                    if k in CONTRACT_FIELDS and hasattr(audio, k)}
    for key, old in recorded.items():
        new = getattr(audio, key, None)
        if new != old:
            raise FineTuneError(
                f"params: `audio.{key}` is {new} here but {old} in the base model {base.path} "
                f"(`{base.key}`): a network fine-tunes only on the feature contract it was "
                f"trained on. Set `audio.{key}: {old}` (the features stage recomputes this "
                f"corpus's features) {_scratch_hint(base, name)}")


def check_text(base: BaseModel, name: str) -> list[str]:
    """Text networks: the symbol table and front-end version must be the base model's."""
    if spec(name).data != "text":
        return []
    recorded = base.payload.get("text")
    fix = (f"Fine-tune from a base model trained with this version of the code "
           f"{_scratch_hint(base, name)}")
    if recorded is None:  # written before the front-end was recorded: only the size is known
        old = base.payload.get("config", {}).get("n_symbols")
        if old != len(SYMBOLS):
            raise FineTuneError(
                f"params: `{base.key}` = {base.path} was trained on {old} symbols, but this "
                f"code's table (tts.text.SYMBOLS, {SYMBOLS_VERSION}) has {len(SYMBOLS)}: its "
                f"embedding rows mean other phones. {fix}")
        return [f"{base.path} records no symbol-table version (written before fine-tuning "
                f"support); its {old} symbols match the size of {SYMBOLS_VERSION}"]
    for what, constant, old, new in [
            ("symbol table", "tts.text.SYMBOLS_VERSION", recorded.get("symbols_version"),
             SYMBOLS_VERSION),
            ("text front-end version", "tts.text.FRONTEND_VERSION",
             recorded.get("frontend_version"), FRONTEND_VERSION)]:
        if old != new:
            raise FineTuneError(
                f"params: `{base.key}` = {base.path} was trained with {what} {old!r}, but this "
                f"code's is {new!r} ({constant}): the same text gives it other symbols. {fix}")
    if recorded.get("symbols") not in (None, list(SYMBOLS)):
        raise FineTuneError(
            f"params: `{base.key}` = {base.path} was trained with another symbol table of the "
            f"same version {SYMBOLS_VERSION!r} ({len(recorded['symbols'])} symbols, now "
            f"{len(SYMBOLS)}; SYMBOLS_VERSION should have been bumped): its embedding rows "
            f"mean other phones. {fix}")
    return []


def _show(value: Any) -> str:
    """A params value as it is written in params.yaml (lists as lists)."""
    value = to_dict(value)
    return json.dumps(value) if isinstance(value, (list, str, bool)) or value is None \
        else str(value)


def _layout(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _build_layout(name: str, cfg) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of network `name` with `cfg`, without allocating them."""

    try:
        with torch.device("meta"):
            return _layout(models.build_model(name, cfg))
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an op meta lacks
        return _layout(models.build_model(name, cfg))


def check_architecture(base: BaseModel, name: str, model, model_cfg, section: str) -> list[str]:
    """The network built from params must have the base model's parameters (names and
    shapes); the fields that change them are named. Fields that do not (dropout, loss
    weights, inference limits) may differ: they are listed as notes."""

    old_values = base.payload.get("config", {})
    differing = {f.name: (old_values.get(f.name), getattr(model_cfg, f.name))
                 for f in dataclasses.fields(model_cfg)
                 if f.init and f.name not in CONTRACT_FIELDS
                 and to_dict(old_values.get(f.name)) != to_dict(getattr(model_cfg, f.name))}
    base_layout = {k: tuple(v.shape) for k, v in base.payload["state_dict"].items()}
    if _layout(model) == base_layout:
        return [f"`{section}.{k}` is {_show(new)} here, {_show(old)} in the base model "
                f"(allowed: it does not change the parameters)" for k, (old, new) in differing.items()]
    try:
        base_cfg = spec(name).config_cls(**config_fields(spec(name).config_cls, old_values))
    except TypeError:
        base_cfg = None
    culprits = []
    for key, (_, new) in differing.items():
        if base_cfg is None:
            culprits.append(key)
            continue
        try:
            trial = dataclasses.replace(base_cfg, **{key: new})
            if _build_layout(name, trial) != base_layout:
                culprits.append(key)
        except Exception:  # an inconsistent mix of old and new values: name it anyway
            culprits.append(key)
    culprits = culprits or list(differing)
    if not culprits:
        raise FineTuneError(
            f"params: `{base.key}` = {base.path} has other parameters than {name} built from "
            f"this code (written by an incompatible version): retrain the base model "
            f"{_scratch_hint(base, name)}")
    listed = "; ".join(f"`{section}.{k}` is {_show(differing[k][1])} here but "
                       f"{_show(differing[k][0])} in the base model" for k in culprits)
    settings = ", ".join(f"`{section}.{k}: {_show(differing[k][0])}`" for k in culprits)
    raise FineTuneError(
        f"params: {listed} ({base.path}, `{base.key}`): fine-tuning keeps the base model's "
        f"architecture size. Set {settings} {_scratch_hint(base, name)}")


# ----------------------------------------------------------------------------- freezing


def freezable_parts(model) -> dict[str, tuple[str, ...]]:
    """Part name -> the model's children it covers: every direct child by its attribute
    name, plus the model's own `PART_GROUPS` (e.g. FastSpeech 2's `text_encoder`)."""
    parts = {name: (name,) for name, _ in model.named_children()}
    parts.update({k: tuple(v) for k, v in getattr(model, "PART_GROUPS", {}).items()})
    return parts


def freeze(model, names: tuple[str, ...] | list[str], key: str, network: str) -> list[str]:
    """Keep the named parts fixed: no gradients, BatchNorm statistics frozen too."""
    parts = freezable_parts(model)
    for part in names:
        if part not in parts:
            match = difflib.get_close_matches(part, list(parts), n=1, cutoff=0.5)
            hint = f"; did you mean `{match[0]}`?" if match else ""
            raise FineTuneError(
                f"params: `{key}` names `{part}`, which is not a part of {network}{hint} "
                f"Freezable parts: {', '.join(sorted(parts))}")
    for part in names:
        for child in parts[part]:
            module = getattr(model, child)
            module.requires_grad_(False)
            for m in module.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.momentum = 0.0  # running statistics stay the base model's
    if not any(p.requires_grad for p in model.parameters()):
        raise FineTuneError(f"params: `{key}` = {list(names)} freezes every parameter of "
                            f"{network}: leave at least one part trainable")
    return list(names)


# ------------------------------------------------------------------------------- entry


def prepare(name: str, model, model_cfg, train: TrainConfig, audio: AudioConfig,
            raw: dict | None = None, text_cfg: Any = None,
            manifest_path: Path | None = None, out: Path | None = None) -> FineTune:
    """Check and load the base model (if any) into `model` and freeze its named parts.

    `raw` is the params file as loaded (to name the key that set `init_from`); the
    returned FineTune carries the hash extra, checkpoint payload extra and MLflow tags.
    `out` is the file this run will write: a base model there is refused (each run would
    replace its own base, and DVC would re-run it forever).
    Call it after building `model` and before building the Trainer (whose optimizer only
    sees the parameters left trainable).
    """

    raw = raw or {}
    section = spec(name).section
    result = FineTune(payload_extra=contract_record(audio, text_cfg))
    base = read_base(raw, train, name, manifest_path)
    if base is None:
        return result
    if out is not None and Path(out).resolve() == base.path.resolve():
        raise FineTuneError(
            f"params: `{base.key}` = {base.path} is this stage's own output, which the run "
            f"replaces: copy the base model elsewhere first (e.g. `cp -r data/models "
            f"../voices/A`) and point `{base.key}` at the copy")
    check_network(base, name)
    check_contract(base, name, audio)
    result.notes += check_text(base, name)
    result.notes += check_architecture(base, name, model, model_cfg, section)
    model.load_state_dict(base.payload["state_dict"])
    result.base = base
    result.frozen = freeze(model, train.freeze, key_of(raw, name, "freeze"), name)
    source = {"path": str(base.path), "sha256": base.sha256,
              "model_name": base.payload.get("model_name"), "step": base.payload.get("step"),
              "config_hash": base.payload.get("config_hash"), "frozen": result.frozen,
              "parent": base.payload.get("init_from")}  # the base's own base, if any
    result.payload_extra["init_from"] = source
    result.hash_extra = {"init_from_sha256": base.sha256}
    result.tags = {"init_from": str(base.path), "init_from_sha256": base.sha256,
                   "init_from_step": str(base.payload.get("step")),
                   "frozen": ",".join(result.frozen) or "none"}
    result.notes.insert(0, f"[{name}] fine-tuning from {base.path} (step "
                           f"{base.payload.get('step')}, sha256 {base.sha256[:12]}); frozen: "
                           f"{', '.join(result.frozen) or 'nothing'}")
    return result


def main() -> None:
    """`python -m tts.finetune NAME...`: the parts `freeze:` accepts, per network."""

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"registry networks (default: all): {', '.join(models.REGISTRY)}")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    for name in args.names or models.REGISTRY:
        if name not in models.REGISTRY:
            parser.error(f"unknown network {name!r}; valid: {', '.join(models.REGISTRY)}")
        model = models.build_model(name, params.network(name)[1])
        parts = freezable_parts(model)
        listed = ", ".join(p if parts[p] == (p,) else f"{p} ({' + '.join(parts[p])})"
                           for p in sorted(parts))
        print(f"{name}: {listed}")


if __name__ == "__main__":
    main()
