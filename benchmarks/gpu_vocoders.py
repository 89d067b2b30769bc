"""First GPU evidence: WaveGrad and the WaveNet teacher trained on the builtin corpus for a
fixed wall-clock budget on one GPU, then copy synthesis of held-out test utterances,
scored next to Griffin-Lim's copies of the same utterances.

On a GPU machine with the project set up and the DAG's features (`dvc repro features`),
`python -m benchmarks.gpu_vocoders` does it all (both vocoders one after the other,
`--minutes` each, then the scores); without a GPU (`make bench` here) it says so and
skips. Where the GPU machine has PyTorch but not the judges (Whisper, DistillMOS), the
steps run apart:

    python -m benchmarks.gpu_vocoders pack --data data --out PACK   # here: mel + 16-bit audio
    python -m benchmarks.gpu_vocoders train wavegrad --data PACK --minutes 6.5 --out OUT
    python -m benchmarks.gpu_vocoders train wavenet --data PACK --minutes 4.5 \
        --generate-minutes 0 --keep-model --out OUT                 # on the GPU machine
    python -m benchmarks.gpu_vocoders vocode --model OUT/wavenet.pt --data PACK   # here
    python -m benchmarks.gpu_vocoders score --data PACK --runs OUT  # here

A pack (the split plus mel and 16-bit PCM audio, 44 MB for the builtin corpus) unpacks into
the same float32 feature store, exactly: the features' audio is the wavs' PCM / 32768.
Training goes through the one loop (`tts.train.Trainer`) at params.yaml's recipe with the
`GPU_SETTINGS` below (sizes between the CPU defaults and the paper presets, bf16
autocast), changed by `--set`. The number of steps is what fits the budget: a probe of
`PROBE_STEPS` measures the step time, then the run is that many steps long, so warmup and
cosine decay span it. Copy synthesis vocodes the first `--utterances` of test.tsv, shortest
first (the evaluate stage's order). The WaveNet samples one step at a time, which is
launch-bound on a GPU (about 4 ms per step on an H200, against 2.2 ms for a batch of 8 on
two CPU threads), so it vocodes, in one batch, only the utterances that fit
`--generate-minutes`; `--keep-model` and `vocode` move that work to a CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import models
from benchmarks.harness import print_table, write_results
from benchmarks.memorize_vocoders import parse_settings, with_settings
from tts.config import load_params
from tts.data import build_train_data
from tts.evaluation import test_utterances
from tts.featstore import STATS_FILE, FeatureStore, write_store
from tts.memorize import log_mel_distance, quick_train_config
from tts.train import RunPaths, Trainer, seed_everything

NAME = "gpu_vocoders"
ROOT = Path(__file__).resolve().parents[1]
PROBE_STEPS = 40  # steps timed to size the run (after PROBE_WARMUP untimed ones)
PROBE_WARMUP = 10  # CUDA context, cuDNN autotuning, allocator growth
SAFETY = 0.95  # fraction of the measured budget the run is sized to
PROBE_FRAMES = 16  # mel frames generated to time the WaveNet's sampler
LOG_CHUNKS = 10  # progress lines per run
PCM_SCALE = 32768.0  # the features' audio is 16-bit PCM / 32768, exactly
PACK_FILE = "features.npz"
GPU_SETTINGS = {
    # ~4M parameters (half the paper's widths), batch 64 x 7,680 samples
    "wavegrad": ["precision=bf16", "batch_size=64", "segment_frames=30", "lr=1e-3",
                 "warmup_steps=500", "mel_channels=384",
                 "upsample_channels=[256, 256, 128, 64, 64]",
                 "downsample_channels=[16, 64, 64, 128, 256]"],
    # 20 layers (2 cycles), filter 3, 128 residual channels; batch 16 x 8,192 samples
    "wavenet": ["precision=bf16", "batch_size=16", "segment_frames=32", "lr=1e-3",
                "warmup_steps=500", "layers=20", "kernel_size=3", "residual_channels=128",
                "gate_channels=256", "skip_channels=128", "head_channels=128",
                "input_noise=0.01"],
}


def pack(args) -> None:
    """DIR/split + DIR/features (mel, audio) -> OUT/split + OUT/features.npz (audio int16)."""
    data, out = Path(args.data), Path(args.out)
    store = FeatureStore(data / "features")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(data / "split", out / "split", dirs_exist_ok=True)
    arrays = {"ids": np.array(store.ids), "stats": np.array(json.dumps(store.stats))}
    for uid in store.ids:
        pcm = np.asarray(store[uid]["audio"], np.float64) * PCM_SCALE
        if not np.array_equal(pcm, np.round(pcm)):
            raise SystemExit(f"{uid}: features' audio is not 16-bit PCM; pack cannot keep it")
        arrays[f"mel/{uid}"] = np.asarray(store[uid]["mel"], np.float32)
        arrays[f"audio/{uid}"] = pcm.astype(np.int16)
    np.savez_compressed(out / PACK_FILE, **arrays)
    print(f"packed {len(store.ids)} utterances into {out}")


def unpacked(data: Path, work: Path) -> Path:
    """`data` itself when it holds features/, else its pack unpacked under `work`."""
    if (data / "features").is_dir():
        return data
    packed = np.load(data / PACK_FILE)
    items = ((str(uid), {"mel": packed[f"mel/{uid}"],
                         "audio": packed[f"audio/{uid}"].astype(np.float32) / PCM_SCALE})
             for uid in packed["ids"])
    write_store(work / "features", items, shard_size=len(packed["ids"]))
    (work / "features" / STATS_FILE).write_text(str(packed["stats"]))
    (work / "split").symlink_to((data / "split").resolve())
    return work


def sized_run(name: str, params, train_cfg, model_cfg, data_dir: Path, work: Path,
              minutes: float) -> tuple[Trainer, dict]:
    """A Trainer whose `steps` fill `minutes` of wall time at the probed step time."""
    started = time.perf_counter()
    data = build_train_data("segments", train_cfg, params.audio, data_dir / "split",
                            data_dir / "features")
    probe_cfg = quick_train_config(train_cfg, steps=PROBE_WARMUP + PROBE_STEPS)
    seed_everything(train_cfg.seed)
    probe = Trainer(name, models.build_model(name, model_cfg), model_cfg, probe_cfg, data,
                    RunPaths(work / "probe", work / "probe.pt"), quiet=True)
    probe.fit(stop_at=PROBE_WARMUP)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    timed = time.perf_counter()
    probe.fit(stop_at=PROBE_WARMUP + PROBE_STEPS)
    sync()
    step_s = (time.perf_counter() - timed) / PROBE_STEPS
    left = minutes * 60 - (time.perf_counter() - started)
    steps = max(int(SAFETY * left / step_s), PROBE_STEPS)
    run_cfg = quick_train_config(train_cfg, steps=steps, log_every=max(steps // 50, 1))
    seed_everything(train_cfg.seed)
    model = models.build_model(name, model_cfg)
    trainer = Trainer(name, model, model_cfg, run_cfg, data,
                      RunPaths(work / "checkpoints", work / f"{name}.pt"), quiet=True)
    return trainer, {"steps": steps, "probe_step_ms": 1000 * step_s,
                     "params_M": sum(p.numel() for p in model.parameters()) / 1e6}


@torch.no_grad()
def vocode(name: str, model: torch.nn.Module, items: list[dict], hop: int, seconds: float,
           device: torch.device, temperature: float = 1.0
           ) -> tuple[dict[str, np.ndarray], dict]:
    """Copy synthesis of `items`; the WaveNet only of the shortest that fit `seconds`."""
    model = model.eval().to(device)
    options = {"temperature": temperature} if models.named(name).sampling else {}
    out, started = {}, time.perf_counter()
    if not models.named(name).slow:
        for u in items:
            torch.manual_seed(0)
            out[u.id] = model.generate(torch.from_numpy(u.mel)[None].to(device), **options)[0]
    elif seconds > 0:
        torch.manual_seed(0)
        t0 = time.perf_counter()  # time the sampler on a short batch, then size the real one
        model.generate(torch.from_numpy(items[0].mel[:, :PROBE_FRAMES])[None].to(device))
        per_frame = (time.perf_counter() - t0) / PROBE_FRAMES
        longest = seconds / per_frame  # frames that fit
        chosen = [u for u in items if u.mel.shape[-1] <= longest]
        if chosen:
            frames = max(u.mel.shape[-1] for u in chosen)
            pad = float(min(u.mel.min() for u in chosen))
            mel = torch.full((len(chosen), chosen[0].mel.shape[0], frames), pad)
            for i, u in enumerate(chosen):
                mel[i, :, :u.mel.shape[-1]] = torch.from_numpy(u.mel)
            torch.manual_seed(0)
            audio = model.generate(mel.to(device), **options)  # causal: padding is harmless
            for i, u in enumerate(chosen):
                out[u.id] = audio[i, :u.mel.shape[-1] * hop]
    info = {"generate_s": time.perf_counter() - started, "vocoded": list(out), **options}
    return {k: v.float().cpu().numpy() for k, v in out.items()}, info


def train(args) -> None:
    """Train one vocoder for `--minutes` of wall time, vocode the test utterances, save
    OUT/NAME.json (recipe, steps, curve) and OUT/NAME.npz (audio by utterance id)."""
    params = load_params(ROOT / "params.yaml")
    items = [f"{args.vocoder}.{s}" for s in GPU_SETTINGS[args.vocoder]] + args.settings
    settings = parse_settings(items)[args.vocoder]
    train_cfg, model_cfg = with_settings(args.vocoder, *params.network(args.vocoder),
                                         settings)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        data = unpacked(Path(args.data), Path(work) / "data")
        trainer, info = sized_run(args.vocoder, params, train_cfg, model_cfg, data,
                                  Path(work), args.minutes)
        started = time.perf_counter()
        steps = trainer.train.steps
        for k in range(1, LOG_CHUNKS + 1):
            trainer.fit(stop_at=steps * k // LOG_CHUNKS)
            last = trainer.history[-1] if trainer.history else {}
            print(f"{args.vocoder}: step {trainer.step}/{steps}, "
                  f"{(time.perf_counter() - started) / 60:.1f} min, "
                  f"{ {k: round(v, 4) for k, v in last.items() if k != 'step'} }", flush=True)
        info |= {"train_min": (time.perf_counter() - started) / 60,
                 "history": trainer.history}
        trainer.fit()  # at the last step already: writes the model file (stop_at did not)
        if args.keep_model:  # to vocode elsewhere (the WaveNet's sampler is launch-bound)
            shutil.copy(Path(work) / f"{args.vocoder}.pt", out / f"{args.vocoder}.pt")
        items = test_utterances(data / "split", data / "features", args.utterances)
        audio, gen = vocode(args.vocoder, trainer.model, items, params.audio.hop_length,
                            args.generate_minutes * 60, device)
    info |= gen | {"vocoder": args.vocoder, "settings": settings, "device":
                   torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                   "minutes_budget": args.minutes}
    np.savez_compressed(out / f"{args.vocoder}.npz", **audio)
    (out / f"{args.vocoder}.json").write_text(json.dumps(info, indent=1, default=str))
    print(f"{args.vocoder}: {info['steps']} steps ({info['probe_step_ms']:.1f} ms/step "
          f"probed), {info['train_min']:.1f} min; vocoded {len(audio)} utterances in "
          f"{gen['generate_s']:.0f} s", flush=True)


def vocode_here(args) -> None:
    """Copy synthesis with a model file `train --keep-model` brought back, on this machine."""
    from tts import checkpoint as ckpt

    params = load_params(ROOT / "params.yaml")
    loaded = ckpt.load_model(args.model)
    run_file = Path(args.model).with_suffix(".json")
    with tempfile.TemporaryDirectory() as work:
        data = unpacked(Path(args.data), Path(work))
        items = test_utterances(data / "split", data / "features", args.utterances)
    audio, gen = vocode(loaded.name, loaded.model, items, params.audio.hop_length,
                        float("inf"), torch.device("cpu"), args.temperature)
    info = json.loads(run_file.read_text()) | gen | {"vocoded_on": "cpu"}
    if args.out:  # a variant of the run (another temperature), scored as its own system
        info["label"] = f"{loaded.name}_t{args.temperature:g}"
        run_file = Path(args.out) / f"{info['label']}.json"
        run_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(run_file.with_suffix(".npz"), **audio)
    run_file.write_text(json.dumps(info, indent=1, default=str))
    print(f"{loaded.name}: vocoded {len(audio)} utterances in {gen['generate_s']:.0f} s")


def label(run: dict) -> str:
    """A run's name in the scores: the vocoder, or a variant's label (`vocode --out`)."""
    return run.get("label", run["vocoder"])


def score(args) -> None:
    from benchmarks.memorize_vocoders import GRIFFIN_LIM_ITERS, Judge
    from tts.audio import griffin_lim

    params = load_params(ROOT / "params.yaml")
    audio_cfg = params.audio
    judge = Judge(audio_cfg.sample_rate)
    runs, audio = [], {}
    for run_file in (f for d in args.runs for f in sorted(Path(d).glob("*.json"))):
        runs.append(json.loads(run_file.read_text()))
        if run_file.with_suffix(".npz").is_file():
            audio[label(runs[-1])] = dict(np.load(run_file.with_suffix(".npz")))
    with tempfile.TemporaryDirectory() as work:
        data = unpacked(Path(args.data), Path(work))
        items = test_utterances(data / "split", data / "features", args.utterances)
    rows = []
    for u in items:
        systems = {"recording": u.audio,
                   "griffin_lim": griffin_lim(torch.from_numpy(u.mel), audio_cfg,
                                              n_iter=GRIFFIN_LIM_ITERS).numpy()}
        systems |= {name: clips[u.id] for name, clips in audio.items() if u.id in clips}
        for system, wav in systems.items():
            s = judge(wav, u.normalized)
            rows.append({"system": system, "id": u.id, "seconds": u.seconds,
                         "log_mel_l1": log_mel_distance(wav, u.audio, audio_cfg),
                         "wer": s["wer"], "mos": s["mos"], "heard": s["heard"]})
            print(f"  {system} {u.id}: WER {s['wer']:.2f} MOS {s['mos']:.2f} "
                  f"heard {s['heard']!r}", flush=True)
    table = []
    for run in [{"vocoder": "recording"}, {"vocoder": "griffin_lim"}] + runs:
        mine = [r for r in rows if r["system"] == label(run)]
        ids = {r["id"] for r in mine}
        table.append({"system": label(run), "n": len(mine),
                      **{k: float(np.mean([r[k] for r in mine])) for k in
                         ("log_mel_l1", "wer", "mos")},
                      "gl_mos_same_utts": float(np.mean(
                          [r["mos"] for r in rows if r["system"] == "griffin_lim"
                           and r["id"] in ids])),
                      **{k: run[k] for k in ("params_M", "steps", "train_min",
                                              "probe_step_ms", "generate_s") if k in run}})
    print_table(table)
    path = write_results(args.results, table, runs=runs, utterances=rows)
    print(f"wrote {path}")


def everything(args) -> None:
    """No command: on a machine with a GPU and the DAG's features, both runs one after the
    other, then the scores (`make bench` elsewhere: skipped)."""
    if not torch.cuda.is_available():
        print(f"{NAME}: no GPU here, skipped; benchmarks/results/{NAME}.json holds the last "
              f"device run")
        return
    with tempfile.TemporaryDirectory() as out:
        for vocoder in GPU_SETTINGS:
            train(argparse.Namespace(vocoder=vocoder, data=args.data, minutes=args.minutes,
                                     generate_minutes=args.generate_minutes,
                                     utterances=args.utterances, keep_model=False,
                                     settings=[], out=out))
        score(argparse.Namespace(data=args.data, runs=[out], utterances=args.utterances,
                                 results=NAME))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.set_defaults(data="data", minutes=5.0, generate_minutes=10.0,
                        utterances=8)
    sub = parser.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train one vocoder for --minutes, vocode the test set")
    t.add_argument("vocoder", choices=sorted(GPU_SETTINGS))
    t.add_argument("--data", required=True, help="folder with split/ and features/")
    t.add_argument("--minutes", type=float, default=7.0, help="training wall time")
    t.add_argument("--generate-minutes", type=float, default=2.0,
                   help="the WaveNet's sampling budget (it vocodes what fits)")
    t.add_argument("--utterances", type=int, default=8)
    t.add_argument("--keep-model", action="store_true", help="copy the model file to --out")
    t.add_argument("--set", nargs="*", default=[], dest="settings",
                   help="NETWORK.FIELD=VALUE on top of GPU_SETTINGS")
    t.add_argument("--out", required=True)
    p = sub.add_parser("pack", help="split + mel + 16-bit audio in one small folder")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    v = sub.add_parser("vocode", help="vocode the test set with a kept model file, here")
    v.add_argument("--model", required=True, help="NAME.pt from `train --keep-model`")
    v.add_argument("--data", required=True)
    v.add_argument("--utterances", type=int, default=8)
    v.add_argument("--temperature", type=float, default=1.0, help="sampling noise scale")
    v.add_argument("--out", help="write a variant here (default: next to the model)")
    s = sub.add_parser("score", help="score trained runs' audio (Whisper, DistillMOS)")
    s.add_argument("--data", required=True)
    s.add_argument("--runs", nargs="+", required=True, help="folders of `train` outputs")
    s.add_argument("--utterances", type=int, default=8)
    s.add_argument("--results", default=NAME)
    args = parser.parse_args()
    args.command = args.command or "all"
    if args.command == "train":
        args.settings = [f"{args.vocoder}.{s}" if not s.startswith(f"{args.vocoder}.")
                         else s for s in args.settings]
        train(args)
    else:
        {"pack": pack, "vocode": vocode_here, "score": score,
         "all": everything}[args.command](args)


if __name__ == "__main__":
    main()
