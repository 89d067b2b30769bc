"""The one training loop: resume, config-hash refusal, NaN guard, checkpoints, DDP, LR."""

from __future__ import annotations

import dataclasses
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from models.fastspeech2 import FastSpeech2, FastSpeech2Config
from tts import checkpoint as ckpt
from tts.config import TrainConfig
from tts.data import TrainData, collate_text
from tts.text import symbol_table_id
from tts.train import NonFiniteLossError, RunPaths, Trainer, lr_lambda, seed_everything

N_MELS, N_SYMBOLS, N_ITEMS = 8, 20, 6
MEL_PAD = -11.5


class SyntheticText(torch.utils.data.Dataset):
    """Deterministic text batches with consistent durations (sum == mel frames)."""

    def __init__(self, n_items: int = N_ITEMS):
        gen = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n_items):
            n_phones = 4 + i % 3
            durations = torch.randint(1, 4, (n_phones,), generator=gen)
            frames = int(durations.sum())
            self.items.append({
                "id": f"utt{i}", "phonemes": torch.randint(1, N_SYMBOLS, (n_phones,), generator=gen),
                "durations": durations, "mel": torch.randn(N_MELS, frames, generator=gen),
                "phone_pitch": torch.randn(n_phones, generator=gen),
                "phone_energy": torch.randn(n_phones, generator=gen),
                "pitch": torch.randn(frames, generator=gen),
                "energy": torch.randn(frames, generator=gen)})

    def __len__(self):
        return len(self.items)

    def length(self, index):
        return self.items[index]["mel"].shape[1]

    def __getitem__(self, key):
        return self.items[key[0] if isinstance(key, tuple) else key]


def collate(items):
    return collate_text(items, MEL_PAD)


def tiny_cfg() -> FastSpeech2Config:
    return FastSpeech2Config(n_symbols=N_SYMBOLS, n_mels=N_MELS, hidden=16, encoder_layers=1,
                             decoder_layers=1, heads=2, conv_filter=16, conv_kernel=3,
                             predictor_filter=8, n_bins=8, postnet_layers=1,
                             postnet_channels=8)


def train_cfg(**overrides) -> TrainConfig:
    base = dict(lr=3e-3, batch_size=3, steps=6, warmup_steps=2, log_every=1, val_every=3,
                checkpoint_every=3, seed=7)
    return TrainConfig(**{**base, **overrides})


def trainer(tmp_path, train=None, model_cls=FastSpeech2, fingerprint="data") -> Trainer:
    dataset = SyntheticText()
    data = TrainData(dataset, collate, [collate([dataset[0], dataset[1]])], fingerprint)
    paths = RunPaths(tmp_path / "ckpt", tmp_path / "model.pt", tmp_path / "m.json",
                     tmp_path / "p.tsv")
    cfg = tiny_cfg()
    train = train or train_cfg()
    seed_everything(train.seed)  # as the stage does: initial weights from the run's seed
    return Trainer("fastspeech2", model_cls(cfg), cfg, train, data, paths,
                   quiet=True)


def test_resumed_run_matches_uninterrupted(tmp_path):
    whole = trainer(tmp_path / "a")
    whole.fit()
    first = trainer(tmp_path / "b")
    assert first.fit(stop_at=3)["interrupted"]
    second = trainer(tmp_path / "b")
    assert second.resume() and second.step == 3
    second.step = 0  # fit() resumes again by itself
    second.fit()
    for (key, a), b in zip(whole.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), f"{key} differs after resume"
    assert second.step == whole.step == 6


def test_changed_config_refuses_to_resume(tmp_path, capsys):
    trainer(tmp_path).fit(stop_at=3)
    changed = trainer(tmp_path, train_cfg(lr=1e-4))
    changed.quiet = False
    assert not changed.resume()
    assert changed.step == 0
    said = capsys.readouterr()
    assert "starting fresh" in said.out + said.err
    assert not ckpt.list_checkpoints(tmp_path / "ckpt")  # moved aside, not mixed in
    assert list((tmp_path / "ckpt" / "stale").rglob("step-*.pt"))
    other_data = trainer(tmp_path, fingerprint="other corpus")
    assert not other_data.resume()


def test_observation_fields_do_not_block_resume(tmp_path):
    trainer(tmp_path).fit(stop_at=3)
    assert trainer(tmp_path, train_cfg(log_every=5, val_every=6)).resume()


class NaNAtStep(FastSpeech2):
    poison_call = 4

    def loss(self, batch):
        losses = super().loss(batch)
        self.calls = getattr(self, "calls", 0) + 1
        if self.training and self.calls == self.poison_call:
            losses["pitch"] = losses["pitch"] * float("nan")
            losses["loss"] = sum(v for k, v in losses.items() if k != "loss")
        return losses


def test_nan_guard_names_step_and_term_and_keeps_checkpoint(tmp_path):
    run = trainer(tmp_path, train_cfg(checkpoint_every=2, val_every=100), model_cls=NaNAtStep)
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss term 'pitch'"):
        run.fit()
    kept = ckpt.list_checkpoints(tmp_path / "ckpt")
    assert [p.name for p in kept] == ["step-00000002.pt"]
    payload = ckpt.read(kept[0])
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values())


def test_finished_model_rebuilds_without_params(tmp_path):
    run = trainer(tmp_path)
    metrics = run.fit()
    name, model, cfg = ckpt.load_model(tmp_path / "model.pt")
    assert name == "fastspeech2" and cfg == run.model_cfg
    phonemes = torch.tensor([[1, 2, 3, 4]])
    run.model.eval()
    assert torch.equal(model.synthesize(phonemes)["mel"], run.model.synthesize(phonemes)["mel"])
    assert metrics["step"] == 6 and "val_loss" in metrics
    assert (tmp_path / "p.tsv").read_text().startswith("step\t")


def test_lr_warmup_then_cosine_to_floor():
    cfg = train_cfg(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factor = lr_lambda(cfg)
    assert factor(0) < factor(5) < factor(9) <= 1.0
    assert factor(10) == pytest.approx(1.0)
    assert factor(100) == pytest.approx(0.1)
    assert all(factor(s) >= factor(s + 1) for s in range(10, 100))


def _ddp_worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    run = trainer(__import__("pathlib").Path(tmp) / "shared", train_cfg(steps=2, batch_size=4))
    run.fit()
    torch.save(run.model.state_dict(), os.path.join(tmp, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(7)  # the initial weights: the step really moved them
    start = FastSpeech2(tiny_cfg()).state_dict()
    assert any(not torch.equal(start[k], a[k]) for k in a)


def test_train_config_rejects_impossible_values():
    from tts.config import ConfigError, build

    with pytest.raises(ConfigError, match="model.lr"):
        build(TrainConfig, {"lr": -1.0}, "model")
    assert dataclasses.asdict(build(TrainConfig, {}, "model")) == dataclasses.asdict(TrainConfig())


class NaNOnRankOne(NaNAtStep):
    """Poisons the loss at step 3 on rank 1 only: rank 0 sees a finite loss."""

    def loss(self, batch):
        if os.environ.get("RANK") != "1":
            return FastSpeech2.loss(self, batch)
        return super().loss(batch)


DDP_NAN_BOUND_S = 120  # both ranks must be gone by then (a hang waits 30 min for gloo)


def _ddp_nan_worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    run = trainer(__import__("pathlib").Path(tmp) / "shared",
                  train_cfg(batch_size=4, checkpoint_every=2, val_every=100),
                  model_cls=NaNOnRankOne)
    try:
        run.fit()
        message = "finished"
    except NonFiniteLossError as exc:
        message = str(exc)
    open(os.path.join(tmp, f"rank{rank}.txt"), "w").write(message)
    torch.distributed.destroy_process_group()


def test_ddp_nan_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_ddp_nan_worker, args=(r, 2, port, str(tmp_path)))
             for r in range(2)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + DDP_NAN_BOUND_S
    for p in procs:
        p.join(max(deadline - time.monotonic(), 0))
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert not hung, f"rank(s) {hung} still running {DDP_NAN_BOUND_S} s after one saw NaN"
    messages = [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]
    assert messages[0] == messages[1]
    assert "step 3: loss term 'pitch' is not finite on 1 of 2 ranks" in messages[0]
    assert "step-00000002.pt" in messages[0]
    kept = ckpt.list_checkpoints(tmp_path / "shared" / "ckpt")
    assert [p.name for p in kept] == ["step-00000002.pt"]
    assert all(torch.isfinite(v).all() for v in ckpt.read(kept[0])["state_dict"].values())


def test_text_model_with_another_symbol_table_is_refused(tmp_path):
    from tts.inference import SynthesisError, _load

    cfg = tiny_cfg()
    payload = ckpt.model_payload("fastspeech2", cfg, FastSpeech2(cfg), 1, "h")
    assert payload["symbol_table"] == symbol_table_id()
    ckpt.build_from_payload(payload)  # the current table: accepted
    for stored in ("arpabet-stress-0:0123456789ab", None):
        old = dict(payload, symbol_table=stored)
        ckpt.save_atomic(old, tmp_path / "model.pt")
        with pytest.raises(SynthesisError, match="symbol table.*re-train"):
            _load(tmp_path / "model.pt", "fastspeech2")


def test_torchrun_rendezvous_comes_from_the_environment(monkeypatch):
    from tts.launch import torchrun_command
    from tts.tracking import Tracker

    single = torchrun_command(4, "stages.train", ["fastspeech2"], {})
    assert "--standalone" in single and "--nproc_per_node=4" in single
    multi = torchrun_command(8, "stages.train", ["fastspeech2"],
                             {"PET_NNODES": "2", "PET_RDZV_ENDPOINT": "node0:29500"})
    assert "--standalone" not in multi and "--nproc_per_node=8" in multi
    monkeypatch.setenv("TTS_TRACKING", "on")
    monkeypatch.setenv("RANK", "1")
    assert not Tracker("train_fastspeech2").enabled  # only rank 0 opens an MLflow run
