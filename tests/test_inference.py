"""Inference: loading by name with clear errors, long-text splitting, synthesis on tiny
models, and the `make synth` entry point (stages.synth) producing a wav and a PNG."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.tiny_models import FRAMES_PER_PHONE, build_model_root, tiny_params
from tts import inference as infer
from tts.text import SIL, SP, TextConfig

ROOT = Path(__file__).resolve().parents[1]
TEXT_CFG = TextConfig()
LONG_SENTENCE = ("the first clause runs on for a while, the second clause follows it closely, "
                 "and the third clause ends the sentence")


@pytest.fixture(scope="module")
def params():
    return tiny_params({"synth": {"max_frames_per_phoneme": 3}, "griffin_lim": {"n_iter": 4}})


@pytest.fixture(scope="module")
def model_root(tmp_path_factory, params):
    torch.set_num_threads(1)
    return build_model_root(tmp_path_factory.mktemp("models"), params)


# ------------------------------------------------------------------------------ errors


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(infer.SynthesisError, match="valid acoustic models: fastspeech2, tacotron2, "
                                               "dctts") as err:
        infer.check_name("fastspeach2", "acoustic")
    assert "did you mean 'fastspeech2'" in str(err.value)
    with pytest.raises(infer.SynthesisError, match="is a vocoder"):
        infer.check_name("wavegrad", "acoustic")
    with pytest.raises(infer.SynthesisError, match="griffin_lim, wavenet, parallel_wavenet, wavegrad"):
        infer.check_name("hifigan", "vocoder")


def test_untrained_models_name_the_dvc_stage(tmp_path, params):
    with pytest.raises(infer.SynthesisError, match=r"dvc repro train_dctts_text2mel train_dctts_ssrn"):
        infer.load_acoustic("dctts", tmp_path)
    with pytest.raises(infer.SynthesisError, match=r"`dvc repro griffin_lim`"):
        infer.load_vocoder("griffin_lim", tmp_path)
    # WaveGrad trained but its noise schedules not searched yet
    build_model_root(tmp_path, params, skip=("fastspeech2", "tacotron2", "dctts", "wavenet",
                                             "parallel_wavenet", "griffin_lim"))
    for schedule in (tmp_path / "wavegrad" / "schedules").iterdir():
        schedule.unlink()
    (tmp_path / "wavegrad" / "schedules").rmdir()
    with pytest.raises(infer.SynthesisError, match=r"`dvc repro search_noise_schedule`"):
        infer.load_vocoder("wavegrad", tmp_path)


def test_empty_and_unspeakable_text_are_refused():
    for text in ("", "   \n"):
        with pytest.raises(infer.SynthesisError, match="empty"):
            infer.split_text(text, TEXT_CFG, 150)
    with pytest.raises(infer.SynthesisError, match="nothing to speak"):
        infer.split_text("... !!! ???", TEXT_CFG, 150)


def test_contract_mismatch_is_an_error(model_root, params):
    import dataclasses

    other = dataclasses.replace(params.audio, n_mels=40)
    with pytest.raises(infer.SynthesisError, match="n_mels"):
        infer.load_synthesizer("fastspeech2", "griffin_lim", other, TEXT_CFG,
                               cfg=params.section("synth"), root=model_root)


# ---------------------------------------------------------------------------- splitting


def test_text_is_split_at_sentence_ends():
    chunks = infer.split_text("Hello there. How are you? Fine!", TEXT_CFG, 150)
    assert [c.text for c in chunks] == ["hello there", "how are you", "fine"]
    for c in chunks:
        assert c.phonemes[0] == SIL and c.phonemes[-1] == SIL
        assert SIL not in c.phonemes[1:-1]


def test_a_long_sentence_is_split_at_its_pauses_then_between_words():
    whole = infer.split_text(LONG_SENTENCE, TEXT_CFG, 150)
    assert len(whole) == 1 and SP in whole[0].phonemes  # fits: kept with its pauses
    size = len(whole[0].phonemes)
    parts = infer.split_text(LONG_SENTENCE, TEXT_CFG, size // 2)
    assert [c.text for c in parts] == ["the first clause runs on for a while",
                                       "the second clause follows it closely",
                                       "and the third clause ends the sentence"]
    assert all(len(c.phonemes) <= size // 2 for c in parts)
    words = infer.split_text("one two three four five six seven eight nine ten", TEXT_CFG, 12)
    assert " ".join(c.text for c in words) == "one two three four five six seven eight nine ten"
    assert len(words) > 1 and all(len(c.phonemes) <= 12 for c in words)


# ---------------------------------------------------------------------------- synthesis


def test_sentences_are_joined_with_a_pause_and_synthesis_is_repeatable(model_root, params):
    cfg = params.section("synth")
    synth = infer.load_synthesizer("fastspeech2", "griffin_lim", params.audio, TEXT_CFG, cfg=cfg,
                                   root=model_root)
    result = synth("Good morning. See you soon.")
    hop, rate = params.audio.hop_length, params.audio.sample_rate
    assert len(result.chunks) == 2
    frames = [len(c.phonemes) * FRAMES_PER_PHONE for c in result.chunks]
    pause = round(cfg.sentence_pause * rate / hop)
    assert result.mel.shape == (params.audio.n_mels, sum(frames) + pause)
    assert len(result.audio) == (sum(frames) + pause) * hop
    gap = result.audio[frames[0] * hop:(frames[0] + pause) * hop]
    assert torch.count_nonzero(gap) == 0 and result.audio.abs().max() > 0.01
    assert torch.equal(synth("Good morning. See you soon.").audio, result.audio)


# ------------------------------------------------------------------------- postfilter


def _smooth_across_bins(log_mel: torch.Tensor, width: float) -> torch.Tensor:
    """What an L1-trained acoustic model does to a spectrum: a Gaussian blur over bins."""
    return infer.spectral_contrast(log_mel, -1.0, width)  # log_mel - (log_mel - envelope)


def test_postfilter_restores_the_peaks_a_smoothed_real_spectrum_lost(mini_corpus):
    from tts.audio import load_wav, mel_spectrogram
    from tts.contract import AudioConfig

    cfg = AudioConfig()
    wav = load_wav(sorted((mini_corpus / "wavs").glob("*.wav"))[0], cfg.sample_rate)
    mel = mel_spectrogram(torch.from_numpy(wav), cfg)  # (n_mels, T)
    speech = mel[:, mel.mean(0) > mel.mean()]  # the louder frames: speech, not silence
    smooth = _smooth_across_bins(speech, 3.0)
    restored = infer.spectral_contrast(smooth, 1.0, 4.0)

    def contrast(m):  # mean distance of each bin from its frame's mean
        return (m - m.mean(0, keepdim=True)).abs().mean()

    assert contrast(smooth) < 0.9 * contrast(speech)  # the smoothing flattened it
    assert contrast(restored) > 1.1 * contrast(smooth)  # the postfilter sharpens it again
    assert (restored - speech).abs().mean() < 0.9 * (smooth - speech).abs().mean()


def test_postfilter_off_is_identity_and_leaves_flat_frames_alone():
    mel = torch.randn(2, 80, 30)
    assert infer.spectral_contrast(mel, 0.0, 4.0) is mel
    floor = torch.full((80, 12), -11.5)  # silence at the log floor
    assert torch.allclose(infer.spectral_contrast(floor, 1.0, 4.0), floor, atol=1e-4)
    batched = infer.spectral_contrast(mel, 1.0, 4.0)
    assert torch.allclose(batched[1], infer.spectral_contrast(mel[1], 1.0, 4.0), atol=1e-6)


def test_postfilter_reaches_the_vocoder_not_the_returned_mel(model_root, params):
    base = params.section("synth")
    off = infer.load_synthesizer("fastspeech2", "griffin_lim", params.audio, TEXT_CFG,
                                 cfg=dataclasses.replace(base, postfilter=0.0), root=model_root)
    on = infer.load_synthesizer("fastspeech2", "griffin_lim", params.audio, TEXT_CFG,
                                cfg=dataclasses.replace(base, postfilter=1.0), root=model_root)
    phonemes = infer.split_text("Hello there.", TEXT_CFG, 150)[0].phonemes
    a, b = off.speak_phonemes(phonemes), on.speak_phonemes(phonemes)
    assert torch.equal(a["mel"], b["mel"]) and not torch.equal(a["audio"], b["audio"])


@pytest.mark.parametrize("key, value", [("postfilter", -0.5), ("postfilter_width", 0.0)])
def test_postfilter_settings_are_checked(key, value):
    from tts.contract import ConfigError

    with pytest.raises(ConfigError, match=f"synth.{key}"):
        dataclasses.replace(infer.SynthConfig(), **{key: value}).validate("synth")


def test_wavegrad_schedule_choice(model_root, params):
    cfg = params.section("synth")
    assert infer.load_vocoder("wavegrad", model_root, cfg).label == "wavegrad_3it"  # best score
    two = infer.load_vocoder("wavegrad", model_root, cfg, iterations=2)
    assert two.options["betas"] == pytest.approx([1e-3, 0.5])
    with pytest.raises(infer.SynthesisError, match=r"have \[2, 3\]"):
        infer.load_vocoder("wavegrad", model_root, cfg, iterations=5)


@pytest.mark.parametrize("name", ["wavenet", "parallel_wavenet", "wavegrad", "griffin_lim"])
def test_every_vocoder_generates_hop_samples_per_frame(model_root, params, name):
    vocoder = infer.load_vocoder(name, model_root, params.section("synth"))
    mel = torch.full((params.audio.n_mels, 4), -3.0)
    audio = vocoder(mel)
    assert audio.shape == (4 * params.audio.hop_length,) and torch.isfinite(audio).all()


@pytest.mark.parametrize("name", ["tacotron2", "dctts"])
def test_attention_models_stop_at_the_cap(model_root, params, name):
    acoustic = infer.load_acoustic(name, model_root, params.section("synth"))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    out = acoustic(ids, max_frames=24)
    assert out["mel"].shape[-1] <= 24 and out["attention"].shape[-1] == 5
    assert isinstance(out["hit_max_length"], bool)


# ------------------------------------------------------------------------- make synth


def test_synth_entry_writes_wav_and_png(model_root, params, tmp_path):
    from stages import synth

    out = tmp_path / "synth.wav"
    info = synth.run(params, "Speech synthesis is fun. It works.", out, acoustic="fastspeech2",
                     vocoder="wavegrad", models=model_root, metrics=tmp_path / "no-metrics.json")
    wav, rate = sf.read(out)
    assert rate == params.audio.sample_rate and np.abs(wav).max() > 0.01
    phonemes = sum(len(c.phonemes) for c in infer.split_text("Speech synthesis is fun. It works.",
                                                         TEXT_CFG, 150))
    assert 0.03 * phonemes < len(wav) / rate < 0.3 * phonemes  # speech-like length
    assert out.with_suffix(".png").stat().st_size > 1000
    assert info["sentences"] == 2 and info["vocoder"] == "wavegrad_3it"
    # it listened to what it wrote: a transcript (noise from tiny models: few words right)
    # and a predicted MOS in range
    assert isinstance(info["heard"], str) and 0 <= info["wer"]
    assert 1 <= info["predicted_mos"] <= 5


def test_synth_picks_the_best_evaluated_pair(tmp_path, params):
    from stages.synth import choose_pair

    cfg = params.section("synth")
    metrics = tmp_path / "evaluate.json"
    assert choose_pair("", "", metrics, cfg)[:2] == (cfg.acoustic, cfg.vocoder)  # no evaluation
    metrics.write_text(json.dumps({"pairs": {"tacotron2-wavegrad": {"rank": 2},
                                             "dctts-griffin_lim": {"rank": 1},
                                             "tacotron2-griffin_lim": {"rank": 3}}}))
    assert choose_pair("", "", metrics, cfg)[:2] == ("dctts", "griffin_lim")
    assert choose_pair("tacotron2", "", metrics, cfg)[:2] == ("tacotron2", "wavegrad")
    assert choose_pair("", "wavenet", metrics, cfg)[:2] == (cfg.acoustic, "wavenet")
    with pytest.raises(infer.SynthesisError, match="valid vocoder models"):
        choose_pair("", "melgan", metrics, cfg)


def test_synth_command_line_reports_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "stages.synth", "--text", "Hello.",
                           "--acoustic", "tacotron", "--models", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "unknown acoustic model 'tacotron'" in done.stderr and "tacotron2" in done.stderr
