"""Fine-tuning (`init_from`): starts from the base model's loss, refuses what cannot work,
freezes named parts, and feeds distillation and the noise-schedule search."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from models.fastspeech2 import FastSpeech2
from tests.test_train import N_MELS, SyntheticText, collate, tiny_cfg, train_cfg
from tests.tiny_models import TINY_NETWORKS, tiny_params
from tts import checkpoint as ckpt
from tts import finetune
from tts.config import AudioConfig, ConfigError, TrainConfig
from tts.digest import sha256_file
from tts.finetune import FineTuneError
from tts.data import TrainData
from tts.digest import sha256_file
from tts.train import RunPaths, Trainer, seed_everything

AUDIO = AudioConfig(n_mels=N_MELS)  # the synthetic text data's contract
MINI_CLIPS = 10  # real clips for the stage-level tests: 6 train, 2 val, 2 test


# ------------------------------------------------------- synthetic text: loss and resume


def synthetic_run(root: Path, train: TrainConfig, raw: dict | None = None,
                  cfg=None) -> tuple[Trainer, finetune.FineTune]:
    """What stages.train.run does, on the synthetic FastSpeech 2 data of test_train."""
    dataset = SyntheticText()
    data = TrainData(dataset, collate, [collate([dataset[0], dataset[1]])], "data")
    cfg = cfg or tiny_cfg()
    seed_everything(train.seed)
    model = FastSpeech2(cfg)
    tune = finetune.prepare("fastspeech2", model, cfg, train, AUDIO, raw)
    paths = RunPaths(root / "ckpt", root / "model.pt")
    return Trainer("fastspeech2", model, cfg, train, data, paths, hash_extra=tune.hash_extra,
                   payload_extra=tune.payload_extra, quiet=True), tune


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A FastSpeech 2 trained for 30 steps: its file and final losses."""
    root = tmp_path_factory.mktemp("base")
    run, _ = synthetic_run(root, train_cfg(steps=30, val_every=30, checkpoint_every=30))
    metrics = run.fit()
    return {"path": root / "model.pt", "metrics": metrics, "history": run.history}


def test_fine_tuning_starts_from_the_base_models_loss(base, tmp_path):
    ft_train = train_cfg(init_from=str(base["path"]), lr=1e-3)
    scratch, _ = synthetic_run(tmp_path / "scratch", train_cfg(lr=1e-3))
    tuned, tune = synthetic_run(tmp_path / "tuned", ft_train)
    # before step 0: exactly the base model's validation loss, far below a fresh network's
    start = tuned.validate()["val_loss"]
    assert start == pytest.approx(base["metrics"]["val_loss"], rel=1e-5)
    fresh = scratch.validate()["val_loss"]
    assert start < 0.5 * fresh
    # the optimizer and LR schedule start fresh (warmup from step 0), not the base's
    assert tuned.step == 0 and not tuned.optimizer.state
    assert tuned.scheduler.get_last_lr()[0] < ft_train.lr
    tuned.fit()
    scratch.fit()
    first_tuned, first_scratch = tuned.history[0]["loss"], scratch.history[0]["loss"]
    base_last = base["history"][-1]["loss"]
    assert abs(first_tuned - base_last) < abs(first_scratch - base_last)
    base_first = base["history"][0]["loss"]
    assert first_scratch - first_tuned > 0.8 * (base_first - base_last)  # what the base learned
    # where the weights came from: in the finished model file and in the MLflow tags
    payload = ckpt.read(tmp_path / "tuned" / "model.pt")
    assert payload["init_from"]["path"] == str(base["path"])
    assert payload["init_from"]["sha256"] == sha256_file(base["path"])
    assert payload["init_from"]["step"] == 30
    assert tune.tags["init_from_sha256"] == sha256_file(base["path"])
    assert payload["audio"]["n_mels"] == N_MELS and payload["text"]["symbols_version"]


def test_resume_hash_includes_the_base_models_bytes(base, tmp_path):
    copy = tmp_path / "copy.pt"
    copy.write_bytes(base["path"].read_bytes())
    run, _ = synthetic_run(tmp_path / "run", train_cfg(init_from=str(copy)))
    assert run.fit(stop_at=3)["interrupted"]
    moved = tmp_path / "moved.pt"  # the same bytes elsewhere: resumes
    moved.write_bytes(copy.read_bytes())
    again, _ = synthetic_run(tmp_path / "run", train_cfg(init_from=str(moved)))
    assert again.resume() and again.step == 3
    payload = ckpt.read(copy)  # other bytes at the same path: starts fresh
    payload["step"] += 1
    ckpt.save_atomic(payload, copy)
    changed, _ = synthetic_run(tmp_path / "run", train_cfg(init_from=str(copy)))
    assert changed.hash != again.hash and not changed.resume()
    scratch, _ = synthetic_run(tmp_path / "other", train_cfg())
    assert scratch.hash not in (changed.hash, again.hash)


def test_freezing_named_parts_keeps_them_fixed(base, tmp_path):
    run, tune = synthetic_run(tmp_path, train_cfg(init_from=str(base["path"]),
                                                  freeze=("text_encoder", "postnet")))
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.fit()
    after = run.model.state_dict()
    for key in (k for k in before if not k.endswith("num_batches_tracked")):
        moved = not torch.equal(before[key], after[key])
        frozen = key.split(".")[0] in ("embedding", "encoder", "postnet")
        if frozen:
            assert not moved, f"{key} changed although frozen"
    assert not torch.equal(before["decoder.blocks.0.attn.qkv.weight"],
                           after["decoder.blocks.0.attn.qkv.weight"])
    assert tune.frozen == ["text_encoder", "postnet"]
    parts = finetune.freezable_parts(run.model)
    assert {"text_encoder", "variance_adaptor", "encoder", "decoder", "postnet"} <= set(parts)


# ------------------------------------------------------------------------------ refusals


def save_base(path: Path, name: str, params, audio: AudioConfig | None = None,
              text_edits: dict | None = None, **arch) -> Path:
    """An (untrained) finished model file of network `name`, as a training stage writes it."""
    import models

    _, cfg = params.network(name)
    cfg = dataclasses.replace(cfg, **arch)
    torch.manual_seed(0)
    model = models.build_model(name, cfg)
    record = finetune.contract_record(audio or params.audio, params.section("text"))
    record["text"].update(text_edits or {})
    return ckpt.save_atomic(ckpt.model_payload(name, cfg, model, 5, "base", **record), path)


def prepare_with(name: str, params):
    """finetune.prepare for `name` as the stage calls it: (FineTune, the loaded network)."""
    import models

    train, cfg = params.network(name)
    model = models.build_model(name, cfg)
    return finetune.prepare(name, model, cfg, train, params.audio, params.raw,
                            params.section("text")), model


@pytest.fixture(scope="module")
def tiny():
    return tiny_params()


def tuned_params(section: str, values: dict, **extra):
    return tiny_params({section: values, **extra})


def test_refuses_a_model_of_another_network(tiny, tmp_path):
    wavegrad = save_base(tmp_path / "wavegrad.pt", "wavegrad", tiny)
    params = tuned_params("fastspeech2", {"init_from": str(wavegrad)})
    with pytest.raises(FineTuneError, match=r"`fastspeech2.init_from` = .*wavegrad.pt holds a "
                                            r"wavegrad model, but this stage trains fastspeech2"):
        prepare_with("fastspeech2", params)


def test_refuses_another_architecture_size_naming_the_field(tiny, tmp_path):
    base = save_base(tmp_path / "fs2.pt", "fastspeech2", tiny)  # hidden 16
    params = tuned_params("fastspeech2", {"init_from": str(base), "hidden": 32})
    with pytest.raises(FineTuneError, match=r"`fastspeech2.hidden` is 32 here but 16 in the "
                                            r"base model.*Set `fastspeech2.hidden: 16`"):
        prepare_with("fastspeech2", params)
    # the same under `model.init_from`, and for a list-valued field of a vocoder
    wavegrad = save_base(tmp_path / "wg.pt", "wavegrad", tiny)
    wide = TINY_NETWORKS["wavegrad"] | {"init_from": str(wavegrad),
                                        "upsample_channels": [8, 8, 8, 8, 16]}
    with pytest.raises(FineTuneError, match=r"`wavegrad.upsample_channels` is \[8, 8, 8, 8, 16\]"
                                            r" here but \[8, 8, 8, 8, 8\]"):
        prepare_with("wavegrad", tiny_params({"wavegrad": wide}))


def test_allows_settings_that_do_not_change_the_parameters(tiny, tmp_path):
    base = save_base(tmp_path / "fs2.pt", "fastspeech2", tiny)
    params = tuned_params("fastspeech2", {"init_from": str(base), "dropout": 0.1})
    tune, model = prepare_with("fastspeech2", params)
    assert any("`fastspeech2.dropout` is 0.1 here, 0.2 in the base model" in n for n in tune.notes)
    saved = ckpt.read(base)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_refuses_another_feature_contract(tiny, tmp_path):
    base = save_base(tmp_path / "wg.pt", "wavegrad", tiny,
                     audio=dataclasses.replace(tiny.audio, fmax=7600.0))
    params = tiny_params({"model": {"init_from": str(base)}})
    with pytest.raises(FineTuneError, match=r"`audio.fmax` is 8000.0 here but 7600.0 in the "
                                            r"base model .*`model.init_from`.*Set "
                                            r"`audio.fmax: 7600.0`"):
        prepare_with("wavegrad", params)


@pytest.mark.parametrize("edit, constant", [
    ({"symbols_version": "ipa-0"}, "SYMBOLS_VERSION"),
    ({"frontend_version": "0"}, "FRONTEND_VERSION"),
    ({"symbols": ["<pad>", "AA0"]}, "another symbol table")])
def test_refuses_another_symbol_table_or_front_end(tiny, tmp_path, edit, constant):
    base = save_base(tmp_path / "t2.pt", "tacotron2", tiny, text_edits=edit)
    params = tuned_params("tacotron2", {"init_from": str(base)})
    with pytest.raises(FineTuneError, match=rf"`tacotron2.init_from`.*{constant}"):
        prepare_with("tacotron2", params)
    # a vocoder does not read text: the same record does not matter to it
    vocoder = save_base(tmp_path / "wn.pt", "wavenet", tiny, text_edits=edit)
    prepare_with("wavenet", tuned_params("wavenet", {"init_from": str(vocoder)}))


def test_refuses_misspelled_or_pointless_freezing(tiny, tmp_path):
    base = save_base(tmp_path / "fs2.pt", "fastspeech2", tiny)
    params = tuned_params("fastspeech2", {"init_from": str(base), "freeze": ["text_encodr"]})
    with pytest.raises(FineTuneError, match=r"`fastspeech2.freeze` names `text_encodr`.*did you "
                                            r"mean `text_encoder`.*Freezable parts: "):
        prepare_with("fastspeech2", params)
    with pytest.raises(ConfigError, match=r"`fastspeech2.freeze`.*set `init_from`"):
        tuned_params("fastspeech2", {"freeze": ["encoder"]})


def test_init_from_a_models_folder_and_missing_files(tiny, tmp_path):
    from models import MODEL_FILES

    save_base(tmp_path / "A" / MODEL_FILES["dctts_ssrn"], "dctts_ssrn", tiny)
    params = tiny_params({"model": {"init_from": str(tmp_path / "A")}})
    tune, _ = prepare_with("dctts_ssrn", params)
    assert tune.base.path == tmp_path / "A" / "dctts" / "ssrn.pt"
    with pytest.raises(FineTuneError, match=r"`model.init_from` = .* is a folder without "
                                            r"wavegrad/model.pt"):
        prepare_with("wavegrad", params)
    own = tiny_params({"model": {"init_from": str(tmp_path / "A")}})
    train, cfg = own.network("dctts_ssrn")
    import models

    with pytest.raises(FineTuneError, match=r"is this stage's own output"):
        finetune.prepare("dctts_ssrn", models.build_model("dctts_ssrn", cfg), cfg, train,
                         own.audio, own.raw, out=tmp_path / "A" / "dctts" / "ssrn.pt")
    missing = tuned_params("wavegrad", {"init_from": str(tmp_path / "nope.pt")})
    with pytest.raises(FineTuneError, match=r"`wavegrad.init_from` = .*nope.pt: no such file"):
        prepare_with("wavegrad", missing)


def test_base_models_manifest_tracks_the_bytes(tiny, tmp_path):
    from stages import base_models

    base = save_base(tmp_path / "wg.pt", "wavegrad", tiny)
    params = tuned_params("wavegrad", {"init_from": str(base)})
    records = base_models.run(params, tmp_path / "base")
    assert records["fastspeech2"] == {"network": "fastspeech2", "key": "model.init_from",
                                      "init_from": None, "sha256": None}
    manifest = tmp_path / "base" / "wavegrad.json"
    assert json.loads(manifest.read_text())["sha256"] == sha256_file(base)
    train, cfg = params.network("wavegrad")
    import models

    finetune.prepare("wavegrad", models.build_model("wavegrad", cfg), cfg, train, params.audio,
                     params.raw, manifest_path=manifest)
    payload = ckpt.read(base)  # other bytes at the same path
    payload["step"] += 1
    ckpt.save_atomic(payload, base)
    with pytest.raises(FineTuneError, match=r"wavegrad.json \(stage base_models\).*run `dvc "
                                            r"repro`"):
        finetune.prepare("wavegrad", models.build_model("wavegrad", cfg), cfg, train,
                         params.audio, params.raw, manifest_path=manifest)


# -------------------------------------------------- the stages on real recordings (vocoders)


@pytest.fixture(scope="module")
def mini_features(mini_corpus, tmp_path_factory):
    """Split + features of MINI_CLIPS real LJSpeech clips."""
    from stages import features as features_stage
    from stages import split as split_stage

    tmp = tmp_path_factory.mktemp("mini")
    corpus = tmp / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    lines = (mini_corpus / "metadata.csv").read_text().splitlines()[:MINI_CLIPS]
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n")
    for line in lines:
        name = line.split("|")[0] + ".wav"
        (corpus / "wavs" / name).symlink_to(mini_corpus / "wavs" / name)
    params = tiny_params({"split": {"val_count": 2, "test_count": 2}})
    split_stage.run(params.split, params.audio.sample_rate, params.section("text"),
                    corpus_dir=corpus, out=tmp / "split")
    features_stage.run(params.audio, dataclasses.replace(params.features, workers=1),
                       corpus_dir=corpus, split_dir=tmp / "split", out=tmp / "features")
    return tmp


def stage_train(name: str, root: Path, out: Path, params, teacher: Path | None = None,
                base: Path | None = None) -> dict:
    from stages import train as train_stage

    paths = RunPaths(root / "ckpt" / name / out.stem, out)
    return train_stage.run(name, params, paths, split=root / "split",
                           features=root / "features", teacher=teacher, quiet=True, base=base)


SHORT = {"steps": 2, "batch_size": 2, "val_every": 2, "checkpoint_every": 2,
         "val_utterances": 1, "segment_frames": 16}


def test_student_distills_from_a_fine_tuned_teacher(mini_features, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_TRACKING", "off")
    root = mini_features
    base = tmp_path / "A" / "wavenet" / "model.pt"
    stage_train("wavenet", root, base, tiny_params({"model": SHORT}))
    tuned = tmp_path / "B" / "wavenet" / "model.pt"
    params = tiny_params({"model": {**SHORT, "init_from": str(tmp_path / "A")},
                          "parallel_wavenet": {"init_from": ""}})
    stage_train("wavenet", root, tuned, params)
    assert ckpt.read(tuned)["init_from"]["sha256"] == sha256_file(base)
    student = tmp_path / "B" / "parallel_wavenet" / "model.pt"
    stage_train("parallel_wavenet", root, student, params, teacher=tuned)
    assert ckpt.read(student)["step"] == SHORT["steps"]


def test_noise_schedule_search_runs_on_a_fine_tuned_wavegrad(mini_features, tmp_path,
                                                            monkeypatch):
    from stages import base_models
    from stages import search_noise_schedule as search

    monkeypatch.setenv("TTS_TRACKING", "off")
    root = mini_features
    base = tmp_path / "base.pt"
    stage_train("wavegrad", root, base, tiny_params({"model": SHORT}))
    params = tiny_params({"model": SHORT, "wavegrad": {"init_from": str(base),
                                                       "freeze": ["upsampling"]}})
    base_models.run(params, tmp_path / "manifests")
    tuned = tmp_path / "wavegrad" / "model.pt"
    stage_train("wavegrad", root, tuned, params, base=tmp_path / "manifests" / "wavegrad.json")
    source = ckpt.read(tuned)["init_from"]
    assert source["frozen"] == ["upsampling"] and source["sha256"] == sha256_file(base)
    a, b = ckpt.read(base)["state_dict"], ckpt.read(tuned)["state_dict"]
    assert torch.equal(a["mel_conv.weight"], b["mel_conv.weight"])
    assert not torch.equal(a["out_conv.weight"], b["out_conv.weight"])
    cfg = dataclasses.replace(tiny_params().section("noise_schedule"), iterations=(2,),
                              grid_size=2, seed_beta_ends=(0.5,), clips=1, clip_frames=8,
                              workers=1)
    metrics = search.run(cfg, params.audio, model_path=tuned, split=root / "split",
                         features=root / "features", out=tmp_path / "schedules",
                         metrics_path=tmp_path / "ns.json")
    assert (tmp_path / "schedules" / "best_2.json").is_file() and metrics
