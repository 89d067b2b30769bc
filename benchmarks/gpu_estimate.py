"""Expected GPU wall time of presets/ljspeech-gpu.yaml's training stages: an ESTIMATE.

No GPU is needed (none was available when this was written). For each network at the
recipe's size, one real training step (loss, backward, AdamW) runs on CPU on a batch
from a prepared corpus; the step is measured three ways:

- FLOPs, counted by `torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions;
  element-wise work is not counted), scaled to the recipe's batch size and, for text
  batches, to LJSpeech's mean utterance length (6.6 s) from the batch's own;
- kernel launches: the aten operators dispatched in the step, scaled by utterance length
  for Tacotron 2 (its decoder loops over frames) and not by batch size;
- CPU seconds of that step (measured, one thread), for scale.

The GPU step estimate is max(FLOPs / (peak * MFU), launches * LAUNCH_S): a compute bound at
an assumed sustained fraction of an H100's dense bf16 peak, and a launch-latency bound for
small or sequential networks. Times are then per stage: step * the recipe's steps. The
assumptions are constants below; read the output as an order of magnitude, labelled as
an estimate everywhere it is quoted.

    python -m benchmarks.gpu_estimate --data DIR   # DIR holds split/, features/, align/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.harness import RESULTS_DIR, print_table, write_results

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "presets" / "ljspeech-gpu.yaml"
GPU = "H100 SXM"
PEAK_FLOPS = 989e12  # dense bf16 tensor-core peak of an H100 SXM (NVIDIA datasheet)
MFU = 0.15  # assumed sustained fraction of peak for these small conv / attention networks
LAUNCH_S = 20e-6  # assumed seconds per operator: eager PyTorch dispatch + launch, no CUDA graphs
LJSPEECH_MEAN_S = 6.57  # mean clip length of LJSpeech 1.1 (24 h / 13,100 clips)
CPU_BATCH = 2  # utterances or segments per measured CPU step
SEQUENTIAL = {"tacotron2"}  # decoders that loop over frames: launches scale with length
NETWORKS = ("fastspeech2", "tacotron2", "dctts_text2mel", "dctts_ssrn", "wavenet",
            "parallel_wavenet", "wavegrad")


class _OpCounter(TorchDispatchMode):
    """Counts aten operators dispatched (about one GPU kernel each)."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def recipe_params():
    from tts.config import parse_params
    from tts.presets import merge

    raw = merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                yaml.safe_load(RECIPE.read_text()))
    return parse_params(raw)


def _batch(name: str, params, data: Path, train_cfg) -> dict:
    import dataclasses

    from models import spec
    from tts.data import BatchPlan, build_train_data

    s = spec(name)
    small = dataclasses.replace(train_cfg, batch_size=CPU_BATCH)
    align = data / "align" if s.needs_alignment else None
    td = build_train_data(s.data, small, params.audio, data / "split", data / "features", align)
    lengths = [td.dataset.length(i) for i in range(len(td.dataset))]
    plan = BatchPlan(lengths, CPU_BATCH, train_cfg.seed)
    return td.collate([td.dataset[k] for k in plan.batch(0)])


def measure(name: str, params, data: Path) -> dict:
    import models

    torch.manual_seed(0)
    train_cfg, model_cfg = params.network(name)
    model = models.build_model(name, model_cfg)
    if models.spec(name).teacher:
        _, teacher_cfg = params.network(models.spec(name).teacher)
        model.bind_teacher(models.build_model(models.spec(name).teacher, teacher_cfg)
                           .eval().requires_grad_(False))
    batch = _batch(name, params, data, train_cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch)["loss"].backward()
        optimizer.step()

    flops, ops = FlopCounterMode(display=False), _OpCounter()
    with flops, ops:  # also the warm-up (allocations, lazy init) of the timed step
        step()
    start = time.perf_counter()
    step()
    cpu_s = time.perf_counter() - start
    scale_batch = train_cfg.batch_size / CPU_BATCH
    if models.spec(name).data == "text":
        seconds = float(batch["mel_lengths"].float().mean()) * params.audio.frame_seconds
        scale_length = LJSPEECH_MEAN_S / seconds
    else:
        seconds, scale_length = None, 1.0
    step_flops = flops.get_total_flops() * scale_batch * scale_length
    launches = ops.ops * (scale_length if name in SEQUENTIAL else 1.0)
    compute_s, launch_s = step_flops / (PEAK_FLOPS * MFU), launches * LAUNCH_S
    gpu_step = max(compute_s, launch_s)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"network": name, "params_M": n_params / 1e6, "batch": train_cfg.batch_size,
            "steps": train_cfg.steps, "cpu_step_s(b=2)": cpu_s,
            "cpu_gflops_s": flops.get_total_flops() / cpu_s / 1e9,
            "tflop_per_step": step_flops / 1e12, "launches": int(launches),
            "bound": "compute" if compute_s >= launch_s else "launch",
            "gpu_step_ms": gpu_step * 1e3, "gpu_hours_est": gpu_step * train_cfg.steps / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = recipe_params()
    rows = []
    previous = RESULTS_DIR / "gpu_estimate.json"
    if set(args.networks) != set(NETWORKS) and previous.is_file():  # refresh some rows only
        rows = [r for r in json.loads(previous.read_text())["rows"]
                if r["network"] not in args.networks]
    for name in args.networks:
        rows.append(measure(name, params, args.data))
        print(rows[-1], flush=True)
    print(f"\nESTIMATE for one {GPU}: compute at {MFU:.0%} of {PEAK_FLOPS / 1e12:.0f} TFLOP/s "
          f"bf16, or {LAUNCH_S * 1e6:.0f} us per kernel launch, whichever is slower")
    rows.sort(key=lambda r: NETWORKS.index(r["network"]))
    print_table(rows)
    path = write_results("gpu_estimate", rows, estimate=True, gpu=GPU, peak_flops=PEAK_FLOPS,
                         mfu=MFU, launch_s=LAUNCH_S, recipe=str(RECIPE.relative_to(REPO)))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
