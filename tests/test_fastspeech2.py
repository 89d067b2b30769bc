"""FastSpeech2: learning, lengths, masking, control, config validation (the rebuild from a
model file is tests/test_networks.py's, for every network)."""

import dataclasses
import math

import pytest
import torch

from models.fastspeech2 import LOG_DURATION_OFFSET, FastSpeech2, FastSpeech2Config
from tests.overfit import overfit
from tts.config import ConfigError

N_SYMBOLS, N_MELS = 20, 12
TINY = FastSpeech2Config(n_symbols=N_SYMBOLS, n_mels=N_MELS, hidden=32, encoder_layers=1,
                         decoder_layers=1, heads=2, conv_filter=64, conv_kernel=3,
                         predictor_filter=32, n_bins=16, postnet_layers=2,
                         postnet_channels=32, dropout=0.0, predictor_dropout=0.0,
                         postnet_dropout=0.0,
                         variance_level="phoneme")  # make_batch's pitch/energy are per phone
LOG_FLOOR = math.log(1e-5)  # the collate pads mel with log(log_floor)


def make_batch(phone_lengths: list[int], seed: int = 0) -> dict:
    """A text batch as tts/data.py collates it: 0-padded phonemes, durations summing to the
    mel lengths, mel padded with log(log_floor), frame- and phone-level z-scored variances."""
    g = torch.Generator().manual_seed(seed)
    durations = [torch.randint(0, 6, (n,), generator=g) for n in phone_lengths]
    for d in durations:
        d[0] = d[-1] = 4  # `sil` at both ends is never empty
    mel_lengths = torch.stack([d.sum() for d in durations])
    B, L, T = len(phone_lengths), max(phone_lengths), int(mel_lengths.max())
    batch = dict(phonemes=torch.zeros(B, L, dtype=torch.long),
                 phoneme_lengths=torch.tensor(phone_lengths), durations=torch.zeros(B, L).long(),
                 mel=torch.full((B, N_MELS, T), LOG_FLOOR), mel_lengths=mel_lengths,
                 pitch=torch.zeros(B, T), energy=torch.zeros(B, T),
                 phone_pitch=torch.zeros(B, L), phone_energy=torch.zeros(B, L))
    for b, (n, d) in enumerate(zip(phone_lengths, durations)):
        t = int(d.sum())
        batch["phonemes"][b, :n] = torch.randint(1, N_SYMBOLS, (n,), generator=g)
        batch["durations"][b, :n] = d
        batch["mel"][b, :, :t] = torch.randn(N_MELS, t, generator=g)
        batch["pitch"][b, :t] = torch.randn(t, generator=g)
        batch["energy"][b, :t] = torch.randn(t, generator=g)
        batch["phone_pitch"][b, :n] = torch.randn(n, generator=g)
        batch["phone_energy"][b, :n] = torch.randn(n, generator=g)
    return batch


def item(batch: dict, b: int) -> dict:
    """Batch item b alone, trimmed to its own lengths (no padding)."""
    n, t = int(batch["phoneme_lengths"][b]), int(batch["mel_lengths"][b])
    out = {}
    for key, value in batch.items():
        v = value[b:b + 1]
        if key in ("phonemes", "durations", "phone_pitch", "phone_energy"):
            v = v[:, :n]
        elif key in ("pitch", "energy", "mel"):
            v = v[..., :t]
        out[key] = v
    return out


def teacher_forced(model: FastSpeech2, batch: dict) -> dict:
    phone = model.cfg.variance_level == "phoneme"
    return model(batch["phonemes"], batch["phoneme_lengths"], batch["durations"],
                 batch["phone_pitch" if phone else "pitch"],
                 batch["phone_energy" if phone else "energy"], n_frames=batch["mel"].size(-1))


@pytest.mark.parametrize("level", ["phoneme", "frame"])
def test_overfits_one_batch(level):
    torch.manual_seed(0)
    model = FastSpeech2(dataclasses.replace(TINY, variance_level=level))
    batch = make_batch([9, 7, 12, 5])
    history = overfit(model, batch, 80, lr=1e-2)
    first, last = history[0], history[-1]
    assert set(last) == {"loss", "mel", "postnet_mel", "duration", "pitch", "energy"}
    assert last["loss"] <= 0.2 * first["loss"], (first, last)
    # the variance terms fall fastest; the mel itself must be fitted too, not just biases
    assert last["mel"] <= 0.6 * first["mel"] and last["postnet_mel"] <= 0.2 * first["postnet_mel"]


def test_every_parameter_gets_a_gradient():
    """DDP without find_unused_parameters needs every parameter in the graph."""
    for level in ("phoneme", "frame"):
        model = FastSpeech2(dataclasses.replace(TINY, variance_level=level))
        model.loss(make_batch([6, 4]))["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing


def test_output_length_is_sum_of_durations():
    torch.manual_seed(0)
    model = FastSpeech2(TINY).eval()
    batch = make_batch([8, 5, 11])
    out = model(batch["phonemes"], batch["phoneme_lengths"], batch["durations"],
                batch["phone_pitch"], batch["phone_energy"])
    assert out["mel"].shape == (3, N_MELS, int(batch["durations"].sum(1).max()))
    assert out["frame_lengths"].tolist() == batch["durations"].sum(1).tolist()
    result = model.synthesize(batch["phonemes"][:1, :8])
    assert result["durations"].shape == (1, 8)
    assert result["durations"].min() >= 1
    assert result["mel"].shape == (1, N_MELS, int(result["durations"].sum()))


@pytest.mark.parametrize("level", ["phoneme", "frame"])
def test_padding_does_not_change_outputs(level):
    torch.manual_seed(0)
    model = FastSpeech2(dataclasses.replace(TINY, variance_level=level))
    model.loss(make_batch([7, 10], seed=1))["loss"].backward()  # non-trivial BatchNorm stats
    for p in model.parameters():
        p.data += 0.1 * torch.randn_like(p)
    model.eval()
    batch = make_batch([6, 13, 9, 4], seed=2)
    with torch.no_grad():
        together = teacher_forced(model, batch)
        predicted = model(batch["phonemes"], batch["phoneme_lengths"])
        for b in range(4):
            n, t = int(batch["phoneme_lengths"][b]), int(batch["mel_lengths"][b])
            alone = teacher_forced(model, item(batch, b))
            for key in ("mel", "mel_postnet"):
                torch.testing.assert_close(together[key][b:b + 1, :, :t], alone[key])
                assert not together[key][b, :, t:].any()  # padding is zeroed
            torch.testing.assert_close(together["log_duration"][b:b + 1, :n], alone["log_duration"])
            span = n if level == "phoneme" else t
            for key in ("pitch", "energy"):
                torch.testing.assert_close(together[key][b:b + 1, :span], alone[key])
            # inference path: predicted durations agree too
            single = model.synthesize(batch["phonemes"][b:b + 1, :n])
            assert predicted["durations"][b, :n].tolist() == single["durations"][0].tolist()
            t_pred = int(single["durations"].sum())
            torch.testing.assert_close(predicted["mel_postnet"][b:b + 1, :, :t_pred], single["mel"])


def set_durations(model: FastSpeech2, frames: float, keep_weights: bool = False) -> None:
    proj = model.duration_predictor.proj
    with torch.no_grad():
        if not keep_weights:
            proj.weight.zero_()
        proj.bias.fill_(math.log(frames + LOG_DURATION_OFFSET))


def test_duration_pitch_energy_control():
    torch.manual_seed(0)
    model = FastSpeech2(TINY).eval()
    phonemes = torch.randint(1, N_SYMBOLS, (1, 15))
    set_durations(model, 5)
    assert model.synthesize(phonemes)["durations"].tolist() == [[5] * 15]
    assert model.synthesize(phonemes, duration_scale=2.0)["durations"].tolist() == [[10] * 15]
    set_durations(model, 6, keep_weights=True)  # varied per-phone predictions
    base = model.synthesize(phonemes)["mel"].size(-1)
    slow = model.synthesize(phonemes, duration_scale=2.0)["mel"].size(-1)
    assert 1.8 <= slow / base <= 2.2, (base, slow)
    set_durations(model, -0.99)  # predicts ~0 frames: still one frame per phone
    assert model.synthesize(phonemes, duration_scale=0.5)["durations"].tolist() == [[1] * 15]
    set_durations(model, 5)
    mel = model.synthesize(phonemes)["mel"]
    for control in ("pitch_shift", "energy_shift"):
        shifted = model.synthesize(phonemes, **{control: 2.0})["mel"]
        assert shifted.shape == mel.shape and not torch.allclose(shifted, mel), control


def test_sample_is_first_item_mel():
    model = FastSpeech2(TINY).eval()
    set_durations(model, 3)
    media = model.sample(make_batch([7, 9]))
    assert media["mel"].shape == (N_MELS, 7 * 3)


@pytest.mark.parametrize("change, key", [
    (dict(hidden=30, heads=4), "fastspeech2.heads"),
    (dict(conv_kernel=4), "fastspeech2.conv_kernel"),
    (dict(predictor_dropout=1.0), "fastspeech2.predictor_dropout"),
    (dict(pitch_min=2.0, pitch_max=1.0), "fastspeech2.pitch_min"),
    (dict(n_bins=1), "fastspeech2.n_bins"),
    (dict(postnet_layers=1), "fastspeech2.postnet_layers"),
    (dict(encoder_layers=0), "fastspeech2.encoder_layers"),
])
def test_config_validation_names_the_key(change, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        dataclasses.replace(TINY, **change).validate("fastspeech2")


def test_params_section_is_validated():
    """Through tts.config: wrong values, typos and contract fields name the key."""
    pytest.importorskip("tts.text", reason="tts.text (symbol table) not written yet")
    from tts.config import parse_params

    train, cfg = parse_params({"fastspeech2": {"hidden": 64, "lr": 5e-4}}).network("fastspeech2")
    assert (cfg.hidden, train.lr) == (64, 5e-4)
    for section, key in [({"heads": 3}, "fastspeech2.heads"),
                         ({"hiden": 64}, "fastspeech2.hiden"),
                         ({"variance_level": "word"}, "fastspeech2.variance_level"),
                         ({"n_mels": 40}, "fastspeech2.n_mels")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_params({"fastspeech2": section})
