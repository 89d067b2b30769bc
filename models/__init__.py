"""The model registry: every name users type, and what it stands for.

Two tables, read by training, inference, evaluation, the report, the stages and the tests
(tests/test_registry.py checks them against dvc.yaml):

- `REGISTRY`: the *networks* this project trains (one `train_<name>` stage each, or the
  spec's `stage`), by family module, config class, params section and batch kind.
- `MODELS`: the *acoustic models and vocoders* a user picks for evaluation and `make synth`.
  Each is a folder under the models root (`data/models/<name>/`) of parts (a network's
  finished model file, a settings file, a search output), each written by one DVC stage,
  plus its traits (attention, sampling noise, slow generation, searched variants) and the
  hooks that join its parts into one inference module.

Each family module exposes a config dataclass (one comment per field; contract fields
such as `n_mels` are filled from `audio:` and the symbol table, never from the network's
params section), an `nn.Module` built from that config alone, `loss(batch) -> dict` with
the total under "loss", and an inference entry point. Modules are imported lazily so a
registry lookup never pays for families it does not use; nothing here reads files.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal


def _attribute(path: str) -> Any:
    """`module:name` -> the object (imported on first use)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------------ networks


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key
    module: str  # python module holding the family
    config: str  # config dataclass name in that module
    model: str  # nn.Module class name in that module
    section: str  # dotted params section: overrides of `model:` + architecture fields
    data: Literal["text", "segments"]  # text batches (acoustic) or random audio segments
    teacher: str | None = None  # registry name of a frozen teacher bound into the loss
    needs_alignment: bool = False  # trains on aligner durations (stage needs --align)
    stage: str = ""  # the DVC stage that trains it ("" = `train_<name>`)

    @property
    def config_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    @property
    def model_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.model)

    @property
    def stage_name(self) -> str:
        return self.stage or f"train_{self.name}"

    @property
    def steps_key(self) -> str:
        """The params key of its step budget."""
        return f"{self.section}.steps"


REGISTRY: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("fastspeech2", "models.fastspeech2", "FastSpeech2Config", "FastSpeech2",
              "fastspeech2", "text", needs_alignment=True),
    ModelSpec("tacotron2", "models.tacotron2", "Tacotron2Config", "Tacotron2",
              "tacotron2", "text"),
    ModelSpec("dctts_text2mel", "models.dctts", "Text2MelConfig", "Text2Mel",
              "dctts.text2mel", "text"),
    ModelSpec("dctts_ssrn", "models.dctts", "SSRNConfig", "SSRN",
              "dctts.ssrn", "segments"),
    ModelSpec("wavenet", "models.wavenet", "WaveNetConfig", "WaveNet",
              "wavenet", "segments"),
    ModelSpec("parallel_wavenet", "models.parallel_wavenet", "ParallelWaveNetConfig",
              "ParallelWaveNet", "parallel_wavenet", "segments", teacher="wavenet",
              stage="distill_parallel_wavenet"),
    ModelSpec("wavegrad", "models.wavegrad", "WaveGradConfig", "WaveGrad",
              "wavegrad", "segments"),
]}


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(name: str, cfg):
    """Instantiate registry network `name` from its config dataclass."""
    return spec(name).model_cls(cfg)


# ------------------------------------------------------------ acoustic models and vocoders


@dataclass(frozen=True)
class Part:
    file: str  # path inside the model's folder (a file, or a folder of search output)
    stage: str  # the DVC stage that writes it (`dvc repro <stage>` when it is missing)
    network: str | None = None  # registry network whose finished model file it is


@dataclass(frozen=True)
class NamedModel:
    """An acoustic model or vocoder as users name it: a folder of parts plus traits."""

    name: str  # what users type; also its folder under the models root
    kind: Literal["acoustic", "vocoder"]
    parts: tuple[Part, ...]
    # "module:callable" joining the loaded networks (in part order) into one inference
    # module; None: the single network is the module
    assemble: str | None = None
    # "module:callable" building the module from its settings file's dict (nothing
    # trained); None: the parts are finished model files
    from_settings: str | None = None
    attention: bool = False  # acoustic: synthesize takes max_frames, returns attention
    sampling: bool = False  # vocoder: generate takes a noise `temperature`
    slow: bool = False  # generates one sample at a time: evaluated on the shortest few only
    schedules: str | None = None  # part holding searched noise schedules (`best_<n>.json`):
    # one variant per schedule, generate takes its `betas`

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(p.network for p in self.parts if p.network)

    @property
    def settings_file(self) -> str:
        return self.parts[0].file

    def assembler(self) -> Callable | None:
        return _attribute(self.assemble) if self.assemble else None

    def settings_builder(self) -> Callable | None:
        return _attribute(self.from_settings) if self.from_settings else None

    def variant_label(self, iterations: int) -> str:
        """Name plus the searched schedule a variant samples with."""
        return f"{self.name}_{iterations}it"


def _trained(name: str, kind, **traits) -> NamedModel:
    """A name backed by one trained network of the same name."""
    s = spec(name)
    return NamedModel(name, kind, (Part("model.pt", s.stage_name, name),), **traits)


MODELS: dict[str, NamedModel] = {m.name: m for m in [
    _trained("fastspeech2", "acoustic"),
    _trained("tacotron2", "acoustic", attention=True),
    NamedModel("dctts", "acoustic",
               (Part("text2mel.pt", spec("dctts_text2mel").stage_name, "dctts_text2mel"),
                Part("ssrn.pt", spec("dctts_ssrn").stage_name, "dctts_ssrn")),
               assemble="models.dctts:DCTTS", attention=True),
    NamedModel("griffin_lim", "vocoder", (Part("config.json", "griffin_lim"),),
               from_settings="models.griffin_lim:from_settings"),
    _trained("wavenet", "vocoder", sampling=True, slow=True),
    _trained("parallel_wavenet", "vocoder", sampling=True),
    NamedModel("wavegrad", "vocoder",
               (Part("model.pt", spec("wavegrad").stage_name, "wavegrad"),
                Part("schedules", "search_noise_schedule")),
               schedules="schedules"),
]}

# Names users type for whole acoustic models and vocoders (evaluation, `make synth`),
# in the order of dvc.yaml's `vars` and the report's tables.
ACOUSTIC_MODELS = tuple(n for n, m in MODELS.items() if m.kind == "acoustic")
VOCODERS = tuple(n for n, m in MODELS.items() if m.kind == "vocoder")

# Where each network's finished model file lies under a models folder (`data/models/`);
# a folder given as `init_from` is read in this layout.
MODEL_FILES: dict[str, str] = {p.network: f"{m.name}/{p.file}" for m in MODELS.values()
                               for p in m.parts if p.network}


def named(name: str) -> NamedModel:
    """The acoustic model or vocoder `name` (KeyError listing the valid names)."""
    if name not in MODELS:
        raise KeyError(f"unknown acoustic model or vocoder {name!r}; valid: "
                       f"{', '.join(MODELS)}")
    return MODELS[name]
