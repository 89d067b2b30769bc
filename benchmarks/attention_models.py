"""Attention models' speed: training steps/s and inference real-time factor on CPU.

Tacotron 2, DCTTS Text2Mel, DCTTS SSRN and the Text2Mel + SSRN composite at their
params.yaml size and batch size, against FastSpeech 2 (non-autoregressive, its own
params.yaml size) as the baseline, all in the same run on the same synthetic batch
(lengths like the embedded builtin corpus: ~35 phones, ~7 frames per phone, ~3 s).
Training throughput is compared as mel frames per second (batch frames x steps/s),
since batch sizes differ. Inference generates about `--frames` mel frames per model from
one `--phones`-phone input: the untrained stop token is disabled (Tacotron 2), the end
rule postponed (DCTTS) and the duration head set to frames / phones (FastSpeech 2), so
every model does the full-length work.
RTF = compute seconds / audio seconds (frames x hop / sample_rate); below 1 is faster
than real time.

    python -m benchmarks.attention_models [--steps 2] [--repeat 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import torch

from benchmarks.harness import print_table, timed, write_results
from models import build_model
from models.dctts import DCTTS
from tts.config import load_params

PHONES_MEAN, PHONES_SPREAD = 35, 15  # builtin corpus: ~9 words per prompt
FRAMES_PER_PHONE = 7  # ~12 phones/s at 86 frames/s


def text_batch(batch_size: int, n_symbols: int, n_mels: int, log_floor: float,
               seed: int = 0) -> dict:
    """A collated text batch (tts/data.py layout) with durations and variances."""
    g = torch.Generator().manual_seed(seed)
    phones = torch.randint(PHONES_MEAN - PHONES_SPREAD, PHONES_MEAN + PHONES_SPREAD + 1,
                           (batch_size,), generator=g)
    n_in = int(phones.max())
    phone_valid = torch.arange(n_in)[None] < phones[:, None]  # (B, L)
    durations = torch.randint(1, 2 * FRAMES_PER_PHONE, (batch_size, n_in), generator=g)
    durations = durations * phone_valid
    mel_lengths = durations.sum(1)
    t = int(mel_lengths.max())
    frame_valid = (torch.arange(t)[None] < mel_lengths[:, None])[:, None]  # (B, 1, T)
    mel = (torch.rand(batch_size, n_mels, t, generator=g) * 8 - 8).where(
        frame_valid, torch.tensor(math.log(log_floor)))
    return dict(ids=[f"bench-{i}" for i in range(batch_size)],
                phonemes=torch.randint(1, n_symbols, (batch_size, n_in), generator=g)
                * phone_valid, phoneme_lengths=phones, durations=durations, mel=mel,
                mel_lengths=mel_lengths, pitch=torch.randn(batch_size, t, generator=g),
                energy=torch.randn(batch_size, t, generator=g),
                phone_pitch=torch.randn(batch_size, n_in, generator=g),
                phone_energy=torch.randn(batch_size, n_in, generator=g))


def segment_batch(batch_size: int, frames: int, cfg) -> dict:
    from tts.audio import mel_spectrogram

    g = torch.Generator().manual_seed(0)
    audio = (0.1 * torch.randn(batch_size, frames * cfg.hop_length, generator=g)).clamp(-1, 1)
    return dict(ids=[f"bench-{i}" for i in range(batch_size)], audio=audio,
                mel=mel_spectrogram(audio, cfg)[..., :frames])


def train_rate(model: torch.nn.Module, batch: dict, steps: int, repeat: int) -> float:
    """Training steps per second (forward, backward, Adam)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def run():
        for _ in range(steps):
            loss = model.loss(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    run()  # warm-up
    return steps / timed(run, repeat=repeat)


def full_length(name: str, model: torch.nn.Module, frames: int, phones: int) -> torch.nn.Module:
    """Make an untrained model generate `frames` frames instead of stopping at random."""
    if name == "fastspeech2":  # the duration head's bias: log(frames per phone + offset)
        from models.fastspeech2 import LOG_DURATION_OFFSET

        with torch.no_grad():
            model.duration_predictor.proj.weight.zero_()
            model.duration_predictor.proj.bias.fill_(math.log(frames / phones
                                                              + LOG_DURATION_OFFSET))
    if name == "tacotron2":
        with torch.no_grad():
            model.decoder.stop.weight.zero_()
            model.decoder.stop.bias.fill_(-1e4)
    if name == "dctts":
        model.text2mel.cfg = dataclasses.replace(model.text2mel.cfg, end_frames=10**9)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="training steps per timing")
    parser.add_argument("--repeat", type=int, default=2, help="timings; the best is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--frames", type=int, default=258, help="frames generated (~3 s)")
    parser.add_argument("--phones", type=int, default=PHONES_MEAN)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    audio = params.audio
    audio_s = args.frames * audio.hop_length / audio.sample_rate

    models, rows = {}, []
    for name in ("fastspeech2", "tacotron2", "dctts_text2mel", "dctts_ssrn"):
        train, cfg = params.network(name)
        torch.manual_seed(0)
        model = models[name] = build_model(name, cfg)
        if name == "dctts_ssrn":
            batch = segment_batch(train.batch_size, train.segment_frames, cfg)
            frames = batch["mel"].numel() // cfg.n_mels
        else:
            batch = text_batch(train.batch_size, cfg.n_symbols, cfg.n_mels, audio.log_floor)
            frames = int(batch["mel_lengths"].sum())
        rate = train_rate(model, batch, args.steps, args.repeat)
        rows.append(dict(model=name, params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                         batch=train.batch_size, batch_frames=frames, steps_per_s=rate,
                         train_frames_per_s=rate * frames))

    phonemes = torch.randint(1, params.network("tacotron2")[1].n_symbols, (1, args.phones))
    models["dctts"] = DCTTS(models.pop("dctts_text2mel"), models.pop("dctts_ssrn"))
    synth = {
        "fastspeech2": lambda: models["fastspeech2"].synthesize(phonemes),
        "tacotron2": lambda: models["tacotron2"].synthesize(phonemes, max_frames=args.frames),
        "dctts": lambda: models["dctts"].synthesize(phonemes, max_frames=args.frames),
    }
    for name, fn in synth.items():
        full_length(name, models[name], args.frames, args.phones)
        with torch.no_grad():
            produced = fn()["mel"].shape[-1]
            seconds = timed(fn, repeat=args.repeat)
        row = next((r for r in rows if r["model"] == name), None)
        if row is None:
            row = dict(model=name)
            rows.append(row)
        row.update(infer_frames=produced, rtf=seconds / (produced * audio.hop_length
                                                         / audio.sample_rate))

    base = rows[0]
    for row in rows:
        if "train_frames_per_s" in row:
            row["train_ratio"] = row["train_frames_per_s"] / base["train_frames_per_s"]
        if "rtf" in row:
            row["infer_ratio"] = base["rtf"] / row["rtf"]  # speed relative to the baseline
    path = write_results("attention_models", rows, baseline="fastspeech2 (params.yaml size), "
                         "same run", steps=args.steps, repeat=args.repeat,
                         threads=args.threads, infer_seconds=audio_s)
    print_table(rows)
    print(f"RTF = compute s / audio s (hop {audio.hop_length} @ {audio.sample_rate} Hz); "
          f"ratios vs FastSpeech 2 in the same run; under shared-machine load "
          f"(see machine.load_avg_1min); written {path}")


if __name__ == "__main__":
    main()
