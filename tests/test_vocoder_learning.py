"""Vocoders learn: after a short run on one real clip, copy synthesis is no longer noise.

A loss that goes down is not enough (the vocoders' losses went down while their audio
stayed noise, issue 13): these tests vocode the very clip trained on and compare THE
log-mel of the result with the recording's (`tts.memorize.log_mel_distance`). The
threshold sits between what a short run reaches and what noise scores, calibrated on
LJ001-0002 (1.9 s, one thread; log-mel L1 in nats):

    recording 0 | Griffin-Lim (32 iterations) 0.14
    WaveGrad at the default size, 200 steps at a constant lr 3e-3 (params.yaml): 1.75
    (1.72 at lr 1e-3); 400 steps: 1.48; 2,000 steps: 0.94 (benchmark)
    noise at the recording's loudness 2.70 | untrained WaveGrad ~3.6-4.8 | silence 4.3

What 200 steps learn is the clip's average spectrum, not yet its time course: the copy
made from the clip's mel reversed in time scores 1.78 against the recording (1.75 from
the true mel), and 1.66 vs 1.48 at 400 steps. A "follows the mel" check needs more steps
than a fast test affords; the benchmark's Whisper WER is that check.

Each test also checks that the threshold fails the untrained model and the noise, so it
keeps separating "learned" from "noise".

The WaveNet teacher's free-running copy does not get below 2.0 within a test's budget
(2.2 at 300 steps, 2.4 at 600; benchmarks/memorize_vocoders.py measures how long it
needs), so its test asks what a test's budget does teach it, teacher-forced, in bits per
sample on the clip (its NLL on the 16-bit grid). References fitted to the clip itself
(`tts.memorize.linear_prediction_bits`): its mean 13.4 bits, the best one-tap linear
predictor 11.2, order 32 10.3. Measured at the default size: untrained 13.9; after 200
steps 11.6 (the mel held at its floor: 12.3); after 400 steps 10.7 (floor mel 11.3, the
mel reversed in time 10.9). So 400 steps beat the one-tap predictor, which needs the
causal input path, and the recorded mel is worth half a bit over a silent one, which
needs the conditioning path. The Parallel WaveNet student's learning is checked with a
tiny teacher in tests/test_parallel_wavenet.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tts.audio import griffin_lim
from tts.config import load_params
from tts.memorize import (clip_features, clip_loss, copy_synthesis, linear_prediction_bits,
                          log_mel_distance, quick_train_config, train_on_clip)
import models

ROOT = Path(__file__).resolve().parents[1]
CLIP = "LJ001-0002"
LEARNED_BELOW = 2.2  # log-mel L1 (nats): learned below, noise above
MARGIN = 0.3  # noise and untrained models must score at least this far above it
STEPS = 200  # WaveGrad training steps (default size and recipe, ~1 min on one thread)
WAVENET_STEPS = 400  # WaveNet teacher steps (default size, lr decayed over them; ~1 min)
MEL_WORTH_BITS = 0.3  # the recorded mel must save at least this much over a silent one


@pytest.fixture(scope="module")
def clip(mini_corpus):
    params = load_params(ROOT / "params.yaml")
    feats = clip_features(mini_corpus / "wavs" / f"{CLIP}.wav", params.audio)
    return params, feats


def noise_distance(feats, audio_cfg) -> float:
    real = torch.from_numpy(feats["audio"])
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0)) * real.std()
    return log_mel_distance(noise, real, audio_cfg)


def test_the_threshold_separates_a_copy_from_noise(clip):
    params, feats = clip
    gl = griffin_lim(torch.from_numpy(feats["mel"]), params.audio)
    assert log_mel_distance(feats["audio"], feats["audio"], params.audio) == 0
    assert log_mel_distance(gl, feats["audio"], params.audio) < LEARNED_BELOW / 4
    assert noise_distance(feats, params.audio) > LEARNED_BELOW + MARGIN


def test_wavegrad_learns_one_clip(clip, tmp_path):
    params, feats = clip
    train_cfg, model_cfg = params.network("wavegrad")
    torch.manual_seed(0)
    untrained = models.build_model("wavegrad", model_cfg).eval()
    before = log_mel_distance(copy_synthesis(untrained, feats["mel"]), feats["audio"],
                              params.audio)
    assert before > LEARNED_BELOW + MARGIN
    short_run = quick_train_config(train_cfg, steps=STEPS, min_lr_ratio=1.0)  # no decay
    run = train_on_clip("wavegrad", model_cfg, short_run, feats, params.audio, tmp_path)
    after = log_mel_distance(copy_synthesis(run.model, feats["mel"]), feats["audio"],
                             params.audio)
    assert after < LEARNED_BELOW, f"WaveGrad copy synthesis after {STEPS} steps: " \
        f"log-mel L1 {after:.2f} (noise: > {LEARNED_BELOW})"


def teacher_forced_bits(model, audio, mel) -> float:
    """The WaveNet's NLL of the clip given its true past, in bits per sample."""
    return clip_loss(model, audio, mel)["bits_per_sample"]


def test_wavenet_learns_to_predict_the_clip_from_its_past_and_its_mel(clip, tmp_path):
    params, feats = clip
    train_cfg, model_cfg = params.network("wavenet")
    audio, mel = feats["audio"], feats["mel"]
    silent = np.full_like(mel, mel.min())
    mean_only, one_tap = (linear_prediction_bits(audio, order) for order in (0, 1))
    torch.manual_seed(0)
    untrained = models.build_model("wavenet", model_cfg).eval()
    assert teacher_forced_bits(untrained, audio, mel) > mean_only
    run = train_on_clip("wavenet", model_cfg, quick_train_config(train_cfg, steps=WAVENET_STEPS),
                        feats, params.audio, tmp_path)
    learned = teacher_forced_bits(run.model, audio, mel)
    assert learned < one_tap, f"WaveNet after {WAVENET_STEPS} steps: {learned:.2f} bits per " \
        f"sample, no better than the one-tap linear predictor's {one_tap:.2f}"
    without_mel = teacher_forced_bits(run.model, audio, silent)
    assert without_mel > learned + MEL_WORTH_BITS, f"the mel saves only " \
        f"{without_mel - learned:.2f} bits per sample: is the conditioning reaching the network?"
