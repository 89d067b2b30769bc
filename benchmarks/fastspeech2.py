"""FastSpeech2 speed: training steps/s and inference real-time factor, default vs paper size.

Both sizes run in the same process on the same batch, so the paper size is reported as a
ratio to the default size (the baseline): params.yaml's `fastspeech2:` section against
the same with presets/fastspeech2-paper.yaml merged in. Batches are synthetic with LJSpeech-like
lengths (phones per utterance and frames per phone drawn around the corpus means);
inference forces the duration predictor to the mean frames per phone, since an untrained
one predicts about one frame per phone. RTF = compute seconds / seconds of audio
generated (T frames * hop / sample_rate); below 1 is faster than real time.

    python -m benchmarks.fastspeech2 [--steps 2] [--repeat 2] [--batch-size 16] [--threads 1]
    python -m benchmarks.fastspeech2 --device cuda --precision bf16 --steps 300
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch
import yaml

from benchmarks.harness import print_table, timed, write_results
from models.fastspeech2 import LOG_DURATION_OFFSET, FastSpeech2, FastSpeech2Config
from tts.config import AudioConfig, parse_params
from tts.presets import merge

PAPER_PRESET = Path(__file__).resolve().parents[1] / "presets" / "fastspeech2-paper.yaml"
PHONES_MEAN, PHONES_SPREAD = 80, 40  # phones per utterance: uniform mean +- spread (~6.5 s)
FRAMES_PER_PHONE = 7  # LJSpeech: ~12 phones/s at 86 frames/s
INFERENCE_PHONES = 100  # one ~8 s utterance


def sizes(params_path: Path) -> tuple[AudioConfig, int, dict[str, FastSpeech2Config]]:
    """(audio, n_symbols, {"default": params.yaml's config, "paper": with the preset})."""
    raw = yaml.safe_load(params_path.read_text())
    default = parse_params(raw)
    paper = parse_params(merge(raw, yaml.safe_load(PAPER_PRESET.read_text())))
    cfg = default.network("fastspeech2")[1]
    return default.audio, cfg.n_symbols, dict(default=cfg, paper=paper.network("fastspeech2")[1])


def realistic_batch(batch_size: int, n_symbols: int, n_mels: int, seed: int = 0) -> dict:
    """A phone-level text batch with LJSpeech-like lengths (padding included)."""
    g = torch.Generator().manual_seed(seed)
    phones = torch.randint(PHONES_MEAN - PHONES_SPREAD, PHONES_MEAN + PHONES_SPREAD + 1,
                           (batch_size,), generator=g)
    L = int(phones.max())
    durations = torch.randint(1, 2 * FRAMES_PER_PHONE, (batch_size, L), generator=g)
    durations *= torch.arange(L)[None, :] < phones[:, None]
    mel_lengths = durations.sum(1)
    T = int(mel_lengths.max())
    frame_valid = torch.arange(T)[None, :] < mel_lengths[:, None]
    return dict(phonemes=torch.randint(1, n_symbols, (batch_size, L), generator=g)
                * (durations > 0), phoneme_lengths=phones, durations=durations,
                mel=torch.randn(batch_size, n_mels, T, generator=g) * frame_valid[:, None],
                mel_lengths=mel_lengths, pitch=torch.randn(batch_size, T, generator=g),
                energy=torch.randn(batch_size, T, generator=g),
                phone_pitch=torch.randn(batch_size, L, generator=g),
                phone_energy=torch.randn(batch_size, L, generator=g))


def measure(cfg: FastSpeech2Config, batch: dict, audio: AudioConfig, args) -> dict:
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = FastSpeech2(cfg).to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16,
                    enabled=args.precision == "bf16")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_steps():
        for _ in range(args.steps):
            with torch.autocast(**autocast):
                loss = model.loss(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync()

    train_steps()  # warm-up (allocator, kernels)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_s = timed(train_steps, repeat=args.repeat) / args.steps
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None

    model.eval()
    with torch.no_grad():  # every phone FRAMES_PER_PHONE frames, for both sizes alike
        model.duration_predictor.proj.weight.zero_()
        model.duration_predictor.proj.bias.fill_(math.log(FRAMES_PER_PHONE + LOG_DURATION_OFFSET))
    phonemes = torch.randint(1, cfg.n_symbols, (1, INFERENCE_PHONES), device=device)
    frames = INFERENCE_PHONES * FRAMES_PER_PHONE
    assert int(model.synthesize(phonemes)["durations"].sum()) == frames

    def infer():
        with torch.autocast(**autocast):
            model.synthesize(phonemes)
        sync()

    infer()
    infer_s = timed(infer, repeat=args.repeat)
    audio_s = frames * audio.hop_length / audio.sample_rate
    return dict(params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                batch_frames=int(batch["mel_lengths"].sum()), steps_per_s=1 / step_s,
                infer_frames=frames, rtf=infer_s / audio_s, gpu_mem_gib=memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="training steps per timing")
    parser.add_argument("--repeat", type=int, default=2, help="timings; the best is kept")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    audio, n_symbols, configs = sizes(args.params)
    batch = realistic_batch(args.batch_size, n_symbols, audio.n_mels)
    rows = []
    for name, cfg in configs.items():
        row = dict(size=name, device=args.device, precision=args.precision,
                   **measure(cfg, batch, audio, args))
        baseline = rows[0] if rows else row
        row["train_ratio"] = row["steps_per_s"] / baseline["steps_per_s"]
        row["infer_ratio"] = baseline["rtf"] / row["rtf"]  # speed relative to the baseline
        rows.append({k: v for k, v in row.items() if v is not None})
    suffix = "" if args.device == "cpu" else f"_{torch.device(args.device).type}"
    path = write_results(f"fastspeech2{suffix}", rows, baseline="default size, same run",
                         batch_size=args.batch_size, steps=args.steps,
                         configs={k: dataclasses.asdict(v) for k, v in configs.items()})
    print_table(rows)
    print(f"RTF = compute s / audio s (hop {audio.hop_length} @ {audio.sample_rate} Hz); "
          f"ratios vs the default size; written {path}")


if __name__ == "__main__":
    main()
