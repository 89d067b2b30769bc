"""Validation by ear (tts.quality) on real LJSpeech clips: a network that reproduces the
recording scores like the recording, one that outputs noise scores far worse."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.tiny_models import tiny_params
from tts.quality import ValidationListener


@pytest.fixture(scope="module")
def real_split(mini_corpus, tmp_path_factory):
    from stages import features as features_stage
    from stages import split as split_stage

    tmp = tmp_path_factory.mktemp("quality")
    params = tiny_params({"split": {"val_count": 3, "test_count": 1},
                          "features": {"workers": 1}})
    split, feats = tmp / "split", tmp / "features"
    split_stage.run(params.split, params.audio.sample_rate, params.section("text"),
                    corpus_dir=mini_corpus, out=split)
    features_stage.run(params.audio, params.features, corpus_dir=mini_corpus, split_dir=split,
                       out=feats)
    return params, split, feats


class CopyVocoder(torch.nn.Module):
    """A perfect vocoder: gives back the recording (the listener passes it in the batch)."""

    def sample(self, batch):
        return {"audio": batch["audio"][0]}


class NoiseVocoder(torch.nn.Module):
    def sample(self, batch):
        n = batch["mel"].shape[-1] * 256
        return {"audio": 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(0))}


class TargetMel(torch.nn.Module):
    """A perfect acoustic model: the target mel (then Griffin-Lim)."""

    def sample(self, batch):
        return {"mel": batch["mel"][0, :, :int(batch["mel_lengths"][0])]}


def test_copy_synthesis_of_the_recording_scores_like_the_recording(real_split):
    params, split, feats = real_split
    listener = ValidationListener("segments", params.audio, split, feats, clips=1,
                                  max_seconds=2.0)
    perfect = listener(CopyVocoder(), [])
    noise = listener(NoiseVocoder(), [])
    assert perfect["cer"] == 0.0 and perfect["mos"] > 3.5
    assert noise["cer"] > 0.5 and noise["mos"] < perfect["mos"] - 1.0


def test_acoustic_model_mel_through_griffin_lim_is_heard(real_split):
    from tts.data import build_train_data

    params, split, feats = real_split
    train_cfg = dataclasses.replace(params.network("tacotron2")[0], val_utterances=1)
    data = build_train_data("text", train_cfg, params.audio, split, feats)
    listener = ValidationListener("text", params.audio, split, feats, clips=1, max_seconds=2.0)
    scores = listener(TargetMel(), data.val_batches)
    assert scores["cer"] < 0.35  # Griffin-Lim of the real mel stays intelligible
    assert 1.0 <= scores["mos"] <= 5.0
    off = ValidationListener("text", params.audio, split, feats, clips=0, max_seconds=2.0)
    assert off(TargetMel(), data.val_batches) == {}
    assert np.isfinite(list(scores.values())).all()
