"""Tiny untrained models of every family, saved as the pipeline saves finished models.

`build_model_root(root)` writes `root/<name>/...` exactly like `data/models/` (model
payloads of `tts.checkpoint`, the Griffin-Lim config of `stages.griffin_lim`, WaveGrad
schedule records of `tts.noise_schedule`), with the default feature contract, so
inference and evaluation tests run the real loading code in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from models import MODEL_FILES

ROOT = Path(__file__).resolve().parents[1]

TINY_NETWORKS = {
    "fastspeech2": dict(hidden=16, encoder_layers=1, decoder_layers=1, heads=2, conv_filter=32,
                        conv_kernel=3, predictor_filter=16, n_bins=8, postnet_layers=0),
    "tacotron2": dict(embed_dim=16, encoder_dim=16, encoder_convs=1, attention_dim=8,
                      location_filters=4, location_kernel=5, prenet_dim=16, decoder_dim=16,
                      postnet_dim=16, postnet_layers=2),
    "dctts": {"text2mel": dict(embed_dim=16, hidden_dim=16, dilations=[1, 3]),
              "ssrn": dict(channels=16)},
    "wavenet": dict(residual_channels=4, gate_channels=4, skip_channels=4, head_channels=4,
                    layers=2, n_mixtures=1),
    "parallel_wavenet": dict(layers_per_flow=[1], residual_channels=4, gate_channels=4,
                             skip_channels=4, head_channels=4),
    "wavegrad": dict(mel_channels=8, upsample_channels=[8, 8, 8, 8, 8],
                     downsample_channels=[4, 4, 4, 4, 8]),
}
FILES = MODEL_FILES  # where build_model_root writes each network, as the pipeline does
SCHEDULE_BETAS = {2: [1e-3, 0.5], 3: [1e-4, 0.05, 0.5]}  # WaveGrad "searched" schedules
# FastSpeech 2's untrained duration predictor gives ~1 frame per phone; a bias of
# log(FRAMES_PER_PHONE) makes its output speech-length, like a trained model's.
FRAMES_PER_PHONE = 7


def tiny_params(extra: dict | None = None):
    """The repository's params.yaml with the tiny network sections (and `extra` sections)."""
    from tts.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(TINY_NETWORKS)
    for section, values in (extra or {}).items():
        raw[section] = {**(raw.get(section) or {}), **values}
    return parse_params(raw)


def _speech_length_durations(model) -> None:
    import torch

    from models.fastspeech2 import LOG_DURATION_OFFSET

    head = model.duration_predictor.proj  # log(d + offset) per phone
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(math.log(FRAMES_PER_PHONE + LOG_DURATION_OFFSET))


def build_model_root(root: Path, params=None, skip: tuple[str, ...] = ()) -> Path:
    """Every finished model (tiny, untrained) under `root`; names in `skip` left out."""
    import torch

    import models
    from stages.griffin_lim import run as write_griffin_lim
    from tts.checkpoint import model_payload, save_atomic
    from tts.noise_schedule import final_noise_level, write_results

    params = params or tiny_params()
    for name, file in FILES.items():
        if name in skip or name.split("_")[0] in skip:
            continue
        _, cfg = params.network(name)
        torch.manual_seed(0)
        model = models.build_model(name, cfg)
        if name == "fastspeech2":
            _speech_length_durations(model)
        save_atomic(model_payload(name, cfg, model, 0, "tiny"), root / file)
    if "wavegrad" not in skip:
        tables = {n: [{"candidate": 0, "kind": "linear", "score": 1.0 / n, "mel_l1": 0.5,
                       "stft": 0.5, "final_noise_level": final_noise_level(b), "betas": b}]
                  for n, b in SCHEDULE_BETAS.items()}
        write_results(tables, root / "wavegrad" / "schedules", ["tiny"])
    if "griffin_lim" not in skip:
        write_griffin_lim(params.section("griffin_lim"), params.audio,
                          root / "griffin_lim" / "config.json")
    return root
