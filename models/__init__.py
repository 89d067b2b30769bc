"""The model registry: every network this project trains, by the name users type.

Each family module exposes a config dataclass (one comment per field; contract fields
such as `n_mels` are filled from `audio:` and the symbol table, never from the network's
params section), an `nn.Module` built from that config alone, `loss(batch) -> dict` with
the total under "loss", and an inference entry point. Modules are imported lazily so a
registry lookup never pays for families it does not use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key, also the `train_<name>` stage suffix
    module: str  # python module holding the family
    config: str  # config dataclass name in that module
    model: str  # nn.Module class name in that module
    section: str  # dotted params section: overrides of `model:` + architecture fields
    data: Literal["text", "segments"]  # text batches (acoustic) or random audio segments
    role: Literal["acoustic", "vocoder", "part"]  # "part": half of a composite (DCTTS)
    teacher: str | None = None  # registry name of a frozen teacher bound into the loss
    needs_alignment: bool = False  # trains on aligner durations (stage needs --align)

    @property
    def config_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    @property
    def model_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.model)


REGISTRY: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("fastspeech2", "models.fastspeech2", "FastSpeech2Config", "FastSpeech2",
              "fastspeech2", "text", "acoustic", needs_alignment=True),
    ModelSpec("tacotron2", "models.tacotron2", "Tacotron2Config", "Tacotron2",
              "tacotron2", "text", "acoustic"),
    ModelSpec("dctts_text2mel", "models.dctts", "Text2MelConfig", "Text2Mel",
              "dctts.text2mel", "text", "part"),
    ModelSpec("dctts_ssrn", "models.dctts", "SSRNConfig", "SSRN",
              "dctts.ssrn", "segments", "part"),
    ModelSpec("wavenet", "models.wavenet", "WaveNetConfig", "WaveNet",
              "wavenet", "segments", "vocoder"),
    ModelSpec("parallel_wavenet", "models.parallel_wavenet", "ParallelWaveNetConfig",
              "ParallelWaveNet", "parallel_wavenet", "segments", "vocoder", teacher="wavenet"),
    ModelSpec("wavegrad", "models.wavegrad", "WaveGradConfig", "WaveGrad",
              "wavegrad", "segments", "vocoder"),
]}

# Where each network's finished model file lies under a models folder (`data/models/`);
# a folder given as `init_from` is read in this layout.
MODEL_FILES: dict[str, str] = {
    "fastspeech2": "fastspeech2/model.pt", "tacotron2": "tacotron2/model.pt",
    "dctts_text2mel": "dctts/text2mel.pt", "dctts_ssrn": "dctts/ssrn.pt",
    "wavenet": "wavenet/model.pt", "parallel_wavenet": "parallel_wavenet/model.pt",
    "wavegrad": "wavegrad/model.pt"}

# Names users type for whole acoustic models and vocoders (evaluation, `make synth`).
ACOUSTIC_MODELS = ("fastspeech2", "tacotron2", "dctts")
VOCODERS = ("griffin_lim", "wavenet", "parallel_wavenet", "wavegrad")


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(name: str, cfg):
    """Instantiate registry network `name` from its config dataclass."""
    return spec(name).model_cls(cfg)
