"""Memorization: does each neural vocoder learn one clip on CPU, and how fast?

    python -m benchmarks.memorize_vocoders [--clips lj builtin] [--vocoders wavegrad ...]
        [--minutes 30] [--eval-every 1000] [--max-steps 6000]
        [--set wavegrad.mel_channels=192 wavegrad.lr=3e-3 ...]
        [--keep DIR] [--teacher FILE]

Each vocoder trains through the one loop (`tts.train.Trainer`, via `tts.memorize`) on
one clip, at the size and recipe of params.yaml (the default model; only `steps` and the
validation cadence change, plus any `--set NETWORK.FIELD=VALUE`, a training or an
architecture field, which the rows record), on one thread. The run is `--max-steps` long,
so the learning rate warms up and decays (cosine, to `min_lr_ratio`) over those steps: at
a near-constant lr (cosine over 20,000 steps) WaveGrad heard the builtin clip word for
word at 4,000 steps and lost it at 5,000; decayed over 6,000 it passes at 5,000. Every
`--eval-every` steps it vocodes the whole clip (copy synthesis from the recording's mel)
and scores it: log-mel L1 to the recording, Whisper tiny.en WER against the transcript
and DistillMOS. A vocoder passes when WER <= 0.2 and its MOS is within 0.5 of
Griffin-Lim's (32 iterations) on the same clip; training stops at the first pass or
when `--minutes` of training (or `--max-steps`) are spent. The Parallel WaveNet student
distills from the WaveNet teacher trained just before it on the same clip, or from
`--teacher FILE` (a WaveNet model file, e.g. one `--keep DIR` wrote: DIR/CLIP_NAME.pt
holds each trained vocoder, so students can be compared against one teacher). Clips:
LJ001-0002 from ../shared/data/ljspeech-mini and the first utterance of a builtin corpus
synthesized with the default `data.builtin` params (engine included; 2 utterances, the
first is used).

Rows: one per vocoder and clip, with the steps and training minutes at the pass (or at
the end), the scores there, the recording's and Griffin-Lim's scores for reference, and
`curve`: the scores at every evaluation, so the results show how the copy improved, with
`rms_ratio`, the copy's loudness against the recording's (a student that whispers shows
here first), and `clip_loss`, the network's own loss terms on the whole clip (the
WaveNet's teacher-forced bits per sample tell "learned the clip" from "learned linear
prediction": an order-32 linear predictor fitted to LJ001-0002 needs 10.3 bits,
`tts.memorize.linear_prediction_bits`).
WaveNet and student rows add `density_by_level`: the (trained or given) teacher's
log-density of the recording at full, 0.3x and 0.1x level and of silence, what the
density distillation rewards a student for.
Minutes (`train_min`, and the `--minutes` budget) are the CPU time of training on one
torch thread, so other work on a shared machine does not inflate them; `wall_min` is the
wall time it took.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import models
from benchmarks.harness import print_table, write_results
from models.wavenet import log_density
from tts import checkpoint as ckpt
from tts.audio import griffin_lim
from tts.config import BuiltinCorpusConfig, build, load_params, to_dict
from tts.memorize import (clip_data, clip_features, clip_loss, copy_synthesis,
                          log_mel_distance, quick_train_config)
from tts.train import RunPaths, Trainer, seed_everything

NAME = "memorize_vocoders"
ROOT = Path(__file__).resolve().parents[1]
LJ_CORPUS = ROOT.parent / "shared" / "data" / "ljspeech-mini"
LJ_CLIP = "LJ001-0002"
BUILTIN_UTTERANCES = 2
VOCODERS = ("wavegrad", "wavenet", "parallel_wavenet")  # the student needs the teacher first
MAX_WER = 0.2
MAX_MOS_GAP = 0.5
GRIFFIN_LIM_ITERS = 32
CURVE_FIELDS = ("steps", "train_min", "log_mel_l1", "rms_ratio", "wer", "mos",
                "clip_loss")  # per evaluation
# gains of the recording whose teacher log-density `density_by_level` reports (0: silence)
DENSITY_LEVELS = (1.0, 0.3, 0.1, 0.0)


@torch.no_grad()
def density_by_level(teacher, audio, mel) -> dict[str, float]:
    """What the teacher rewards a student for: the mean continuous log-density (nats per
    sample, higher = likelier; the density distillation's cross-entropy is its negative)
    of the recording scaled by each of DENSITY_LEVELS, the teacher reading that signal as
    its past. A teacher under which a quieter copy is likelier than the recording invites
    a whispering student."""
    audio = torch.as_tensor(audio, dtype=torch.float32)[None]  # (1, N)
    mel = torch.as_tensor(mel, dtype=torch.float32)[None]  # (1, n_mels, T)
    return {f"x{gain:g}": float(log_density(*teacher.mixture(gain * audio, mel),
                                            gain * audio).mean())
            for gain in DENSITY_LEVELS}


def rms_ratio(audio, real) -> float:
    """Loudness of a copy against the recording: RMS(copy) / RMS(recording)."""
    audio, real = np.asarray(audio, dtype=np.float64), np.asarray(real, dtype=np.float64)
    return float(np.sqrt(np.mean(audio ** 2) / max(np.mean(real ** 2), np.finfo(float).tiny)))


def load_clips(names: list[str], workdir: Path, audio_cfg) -> list[dict]:
    clips = []
    for name in names:
        if name == "lj":
            if not (LJ_CORPUS / "metadata.csv").is_file():
                print(f"skipping the LJSpeech clip: {LJ_CORPUS} not found")
                continue
            corpus, uid = LJ_CORPUS, LJ_CLIP
        elif name == "builtin":
            from tts.builtin_corpus import synthesize_builtin

            corpus = workdir / "builtin"
            synthesize_builtin(BuiltinCorpusConfig(n_utterances=BUILTIN_UTTERANCES), corpus)
            uid = None
        else:
            raise SystemExit(f"unknown clip {name!r}: use lj or builtin")
        rows = [line.split("|") for line in
                (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines() if line]
        row = next(r for r in rows if uid is None or r[0] == uid)
        feats = clip_features(corpus / "wavs" / f"{row[0]}.wav", audio_cfg)
        clips.append({"clip": name, "id": row[0], "text": row[-1], "feats": feats})
    return clips


class Judge:
    """Whisper WER and DistillMOS of audio against a clip's transcript."""

    def __init__(self, sample_rate: int):
        from tts.mos import load_mos_predictor
        from tts.recognizer import load_recognizer

        self.rate = sample_rate
        self.recognizer = load_recognizer("whisper")
        self.mos = load_mos_predictor()

    def __call__(self, audio, text: str) -> dict:
        from tts.recognizer import error_rates

        wav = np.asarray(audio, dtype=np.float32)
        heard = self.recognizer.transcribe(wav, self.rate)
        return {"wer": error_rates(text, heard)["wer"], "mos": self.mos(wav, self.rate),
                "heard": heard}


def parse_settings(items: list[str]) -> dict[str, dict]:
    """["wavegrad.lr=3e-3", ...] -> {"wavegrad": {"lr": 0.003}} (values read as YAML)."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        network, dot, field = key.partition(".")
        if not sep or not dot or network not in VOCODERS:
            raise SystemExit(f"--set {item!r}: write NETWORK.FIELD=VALUE with NETWORK one of "
                             f"{', '.join(VOCODERS)}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 3e-3 (no dot) as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out.setdefault(network, {})[field] = tuple(parsed) if isinstance(parsed, list) \
            else parsed
    return out


def with_settings(name: str, train_cfg, model_cfg, settings: dict):
    """The network's configs with `--set` fields replaced (training or architecture)."""
    train_fields = {f.name for f in dataclasses.fields(train_cfg)}
    model_fields = {f.name for f in dataclasses.fields(model_cfg)}
    unknown = set(settings) - train_fields - model_fields
    if unknown:
        raise SystemExit(f"--set {name}.{sorted(unknown)[0]}: no such field of {name}")
    # rebuilt through the params loader: types, choices and ranges checked as in params.yaml
    return tuple(build(type(cfg), {**to_dict(cfg), **{k: v for k, v in settings.items()
                                                      if k in fields}}, name)
                 for cfg, fields in ((train_cfg, train_fields), (model_cfg, model_fields)))


def memorize(name: str, clip: dict, params, judge: Judge, reference_mos: float, args,
             workdir: Path, teacher=None) -> tuple[dict, torch.nn.Module]:
    """Train `name` on the clip until it passes or the budget ends; the result row."""
    audio_cfg = params.audio
    settings = args.settings.get(name, {})
    train_cfg, model_cfg = with_settings(name, *params.network(name), settings)
    train_cfg = quick_train_config(train_cfg, steps=args.max_steps,
                                   checkpoint_every=args.eval_every, val_every=args.max_steps)
    data = clip_data(clip["id"], clip["feats"], train_cfg, audio_cfg)
    seed_everything(train_cfg.seed)
    model = models.build_model(name, model_cfg)
    trainer = Trainer(name, model, model_cfg, train_cfg, data,
                      RunPaths(workdir / name / "checkpoints", workdir / name / "model.pt"),
                      teacher=teacher, quiet=True)
    trained, wall, row, curve = 0.0, 0.0, {}, []
    params_count = sum(p.numel() for p in model.parameters())
    sampling = {"temperature": args.temperature} if models.named(name).sampling else {}
    for stop in range(args.eval_every, args.max_steps + 1, args.eval_every):
        started, started_wall = time.process_time(), time.perf_counter()
        trainer.fit(stop_at=stop)
        trained += time.process_time() - started
        wall += time.perf_counter() - started_wall
        audio = copy_synthesis(trainer.model.eval(), clip["feats"]["mel"], seed=0,
                               **sampling)
        score = judge(audio, clip["text"])
        own_loss = clip_loss(trainer.model, clip["feats"]["audio"], clip["feats"]["mel"])
        row = {"vocoder": name, "clip": clip["clip"], "params_M": params_count / 1e6,
               "settings": settings, **sampling, "steps": stop, "train_min": trained / 60,
               "wall_min": wall / 60,
               "log_mel_l1": log_mel_distance(audio, clip["feats"]["audio"], audio_cfg),
               "rms_ratio": rms_ratio(audio, clip["feats"]["audio"]),
               "wer": score["wer"], "mos": score["mos"], "gl_mos": reference_mos,
               "passed": bool(score["wer"] <= MAX_WER
                              and score["mos"] >= reference_mos - MAX_MOS_GAP),
               "heard": score["heard"], "clip_loss": own_loss}
        curve.append({k: row[k] for k in CURVE_FIELDS})
        row["curve"] = curve
        print(f"  {name} on {clip['clip']}: step {stop}, {trained / 60:.1f} min, log-mel L1 "
              f"{row['log_mel_l1']:.3f}, loudness x{row['rms_ratio']:.2f}, WER {row['wer']:.2f}, "
              f"MOS {row['mos']:.2f} "
              f"(Griffin-Lim {reference_mos:.2f}), heard {score['heard']!r}, loss on the clip "
              f"{ {k: round(v, 3) for k, v in row['clip_loss'].items()} }", flush=True)
        if row["passed"] or trained > args.minutes * 60:
            break
    judged = trainer.model if name == "wavenet" else teacher  # the student's teacher
    if judged is not None:
        row["density_by_level"] = density_by_level(judged, clip["feats"]["audio"],
                                                   clip["feats"]["mel"])
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        ckpt.save_atomic(ckpt.model_payload(name, model_cfg, trainer.model, row["steps"], "",
                                            clip=clip["id"], settings=settings),
                         args.keep / f"{clip['clip']}_{name}.pt")
    return row, trainer.model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["lj", "builtin"])
    parser.add_argument("--vocoders", nargs="+", default=list(VOCODERS), choices=VOCODERS)
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="training budget per vocoder and clip (CPU minutes, one thread)")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--max-steps", type=int, default=6000,
                        help="the run's length: the lr schedule spans it")
    parser.add_argument("--set", nargs="*", default=[], dest="settings",
                        help="NETWORK.FIELD=VALUE: change a training or architecture field")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling vocoders' noise scale in copy synthesis (synth.temperature)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save each trained vocoder as DIR/CLIP_NAME.pt")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a trained WaveNet model file for the student to distill from "
                             "(instead of the wavenet trained in this run)")
    parser.add_argument("--results", default=NAME,
                        help="name of the results file (benchmarks/results/NAME.json)")
    args = parser.parse_args()
    args.settings = parse_settings(args.settings)
    given_teacher = None
    if args.teacher is not None:
        loaded = ckpt.load_model(args.teacher)
        if loaded.name != "wavenet":
            raise SystemExit(f"--teacher {args.teacher} holds a {loaded.name}, not a wavenet")
        given_teacher = loaded.model.requires_grad_(False)
    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    audio_cfg = params.audio
    judge = Judge(audio_cfg.sample_rate)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in load_clips(args.clips, tmp, audio_cfg):
            real = clip["feats"]["audio"]
            gl = griffin_lim(torch.from_numpy(clip["feats"]["mel"]), audio_cfg,
                             n_iter=GRIFFIN_LIM_ITERS)
            for system, audio in (("recording", real), ("griffin_lim", gl)):
                score = judge(audio, clip["text"])
                rows.append({"vocoder": system, "clip": clip["clip"],
                             "log_mel_l1": log_mel_distance(audio, real, audio_cfg),
                             "rms_ratio": rms_ratio(audio, real),
                             "wer": score["wer"], "mos": score["mos"], "heard": score["heard"]})
            gl_mos = rows[-1]["mos"]
            teacher = given_teacher
            for name in args.vocoders:
                if name == "parallel_wavenet" and teacher is None:
                    print("skipping parallel_wavenet: it distills from the wavenet trained "
                          "in this run (add wavenet to --vocoders) or from --teacher FILE")
                    continue
                row, model = memorize(name, clip, params, judge, gl_mos, args,
                                      tmp / clip["clip"], teacher if name ==
                                      "parallel_wavenet" else None)
                rows.append(row)
                if name == "wavenet":
                    teacher = model.requires_grad_(False)
    hidden = ("heard", "settings", "curve", "clip_loss", "density_by_level")
    print_table([{k: v for k, v in r.items() if k not in hidden} for r in rows])
    path = write_results(args.results, rows, minutes_budget=args.minutes,
                         eval_every=args.eval_every,
                         max_steps=args.max_steps, pass_rule=f"WER <= {MAX_WER} and MOS >= "
                         f"Griffin-Lim's - {MAX_MOS_GAP}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
