"""WaveNet teacher vs Parallel WaveNet student on CPU, at the default (params.yaml) size.

    python -m benchmarks.vocoders_wavenet

Generation: real-time factor (seconds of compute per second of audio, lower is faster) of
the teacher's Fast WaveNet generation (the baseline), of the naive teacher that re-runs
the stack over its receptive field for every sample, and of the student's one parallel
pass; speed is a ratio to the baseline measured in the same run. Training: steps/s at the
default batch (the student's step includes the frozen teacher's forward and backward).
One torch thread; the machine is shared, so the ratios mean more than the seconds.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.harness import print_table, timed, write_results
from models.parallel_wavenet import ParallelWaveNet
from models.wavenet import WaveNet, sample_mixture, split_mixture
from tts.config import load_params

NAME = "vocoders_wavenet"
MEL_MEAN = -5.0  # a plausible log-mel level for random conditioning
SEED = 0


def random_mel(n_mels: int, frames: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, n_mels, frames) + MEL_MEAN


@torch.inference_mode()
def naive_generate(teacher: WaveNet, mel: torch.Tensor, samples: int) -> torch.Tensor:
    """The slow way: every sample re-runs the whole stack over its receptive field."""
    c = teacher.condition(mel)  # (1, n_mels, N)
    field = teacher.cfg.receptive_field
    audio = c.new_zeros(1, samples + 1)  # a leading sample so the window can end at t
    for t in range(samples):
        lo = max(0, t + 1 - field)
        out = teacher.stack(audio[:, lo + 1:t + 2], c[:, :, lo:t + 1])[..., -1]  # (1, 3K)
        logits, means, log_scales = split_mixture(out, teacher.cfg.log_scale_min, dim=-1)
        audio[:, t + 1] = sample_mixture(logits, means, log_scales)
    return audio[:, 1:]


def train_rate(model, batch: dict, steps: int) -> float:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])

    def step():
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    return 1.0 / timed(step, repeat=steps, reduce="median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--frames", type=int, default=8, help="mel frames generated")
    parser.add_argument("--long-frames", type=int, default=430, help="~5 s for the student")
    parser.add_argument("--naive-samples", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    params = load_params(args.params)
    t_train, t_cfg = params.network("wavenet")
    s_train, s_cfg = params.network("parallel_wavenet")
    teacher, student = WaveNet(t_cfg).eval(), ParallelWaveNet(s_cfg).eval()
    rate, hop = t_cfg.sample_rate, t_cfg.hop_length
    mel = random_mel(t_cfg.n_mels, args.frames)
    n = args.frames * hop

    fast = timed(lambda: teacher.generate(mel), repeat=args.repeat)
    naive = timed(lambda: naive_generate(teacher, mel, args.naive_samples), repeat=args.repeat)
    naive = naive * n / args.naive_samples  # same audio length as the others
    parallel = timed(lambda: student.generate(mel), repeat=args.repeat)
    long_mel = random_mel(s_cfg.n_mels, args.long_frames)
    parallel_long = timed(lambda: student.generate(long_mel), repeat=args.repeat)
    seconds = n / rate
    rows = [
        {"run": "teacher: Fast WaveNet queues (baseline)", "audio_s": seconds,
         "rtf": fast / seconds, "speed": 1.0},
        {"run": "teacher: naive, stack over receptive field per sample",
         "audio_s": seconds, "rtf": naive / seconds, "speed": fast / naive},
        {"run": "student: one parallel pass", "audio_s": seconds,
         "rtf": parallel / seconds, "speed": fast / parallel},
        {"run": "student: one parallel pass, long", "audio_s": args.long_frames * hop / rate,
         "rtf": parallel_long / (args.long_frames * hop / rate),
         "speed": (fast / seconds) / (parallel_long / (args.long_frames * hop / rate))},
    ]
    batch = {"audio": torch.rand(t_train.batch_size, t_train.segment_frames * hop) - 0.5,
             "mel": random_mel(t_cfg.n_mels, t_train.segment_frames, t_train.batch_size)}
    teacher_rate = train_rate(teacher.train(), batch, args.train_steps)
    teacher.eval().requires_grad_(False)
    student.bind_teacher(teacher)
    s_batch = {"audio": torch.rand(s_train.batch_size, s_train.segment_frames * hop) - 0.5,
               "mel": random_mel(s_cfg.n_mels, s_train.segment_frames, s_train.batch_size)}
    student_rate = train_rate(student.train(), s_batch, args.train_steps)
    train_rows = [
        {"run": "train step: teacher (baseline)", "batch": f"{t_train.batch_size}x"
         f"{t_train.segment_frames * hop}", "steps_per_s": teacher_rate, "speed": 1.0},
        {"run": "train step: student (+ frozen teacher)", "batch": f"{s_train.batch_size}x"
         f"{s_train.segment_frames * hop}", "steps_per_s": student_rate,
         "speed": student_rate / teacher_rate},
    ]
    parameters = {"teacher": sum(p.numel() for p in teacher.parameters()),
                  "student": sum(p.numel() for p in student.parameters())}
    path = write_results(NAME, rows + train_rows, parameters=parameters,
                         student_over_teacher_speed=fast / parallel)
    print_table(rows)
    print()
    print_table(train_rows)
    print(f"\nparameters: {parameters}; student / teacher generation speed: "
          f"{fast / parallel:.0f}x (one torch thread, shared machine); wrote {path}")


if __name__ == "__main__":
    main()
