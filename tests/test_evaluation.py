"""Evaluation: pair / copy-synthesis / ground-truth stages on tiny models and a tiny real
corpus, ranking, and the report (valid HTML, best values marked, DVC metrics)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from models import ACOUSTIC_MODELS, VOCODERS
from tests.tiny_models import build_model_root, tiny_params
from tts import evaluation as E
from tts import report as R
from tts.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
N_TEST = 2
EXTRA = {
    "split": {"val_count": 1, "test_count": N_TEST, "min_duration": 0.1},
    "features": {"workers": 1},
    "griffin_lim": {"n_iter": 4},
    "evaluate": {"utterances": N_TEST, "report_utterances": 1, "figure_utterances": 1,
                 "wavenet_utterances": 0},
}


@pytest.fixture(scope="module")
def evaluated(tiny_builtin_corpus, tmp_path_factory):
    """Split + features of the tiny corpus, tiny models, every evaluation stage run."""
    from stages import evaluate, evaluate_ground_truth, evaluate_pair, evaluate_vocoder
    from stages import features as features_stage
    from stages import split as split_stage

    tmp = tmp_path_factory.mktemp("evaluation")
    params = tiny_params(EXTRA)
    split, feats = tmp / "split", tmp / "features"
    split_stage.run(params.split, params.audio.sample_rate, params.section("text"),
                    corpus_dir=tiny_builtin_corpus, out=split)
    features_stage.run(params.audio, params.features, corpus_dir=tiny_builtin_corpus,
                       split_dir=split, out=feats)
    models = build_model_root(tmp / "models", params)
    out = {"params": params, "split": split, "features": feats, "tmp": tmp}
    # the recognizer (slow on noise-like output of untrained models) and figures only where
    # a test looks at them
    quiet = tiny_params({**EXTRA, "evaluate": {**EXTRA["evaluate"], "recognizer": "none",
                                               "mos": False}})
    lean = tiny_params({**EXTRA, "evaluate": {**EXTRA["evaluate"], "recognizer": "none",
                                              "mos": False, "figure_utterances": 0}})
    out["pairs"] = {
        (a, v): evaluate_pair.run(p, a, v, models=models, split=split, features=feats,
                                  out=tmp / "pairs" / f"{a}-{v}")
        for p, a, v in [(params, "fastspeech2", "griffin_lim"), (quiet, "tacotron2", "wavegrad"),
                        (lean, "fastspeech2", "wavenet")]}
    out["copies"] = {v: evaluate_vocoder.run(lean, v, models=models, split=split, features=feats,
                                             out=tmp / "vocoders" / v)
                     for v in ("griffin_lim", "wavegrad")}
    out["truth"] = evaluate_ground_truth.run(params, split, feats, tmp / "ground_truth")
    paths = {k: tmp / name for k, name in [("report", "reports/index.html"),
                                           ("summary", "reports/summary.md"),
                                           ("metrics", "metrics/evaluate.json"),
                                           ("utterances", "eval/utterances.csv")]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TTS_TRACKING", "off")  # no MLflow store in the test's working directory
        out["metrics"] = evaluate.run(params, pairs=tmp / "pairs", vocoders=tmp / "vocoders",
                                      ground_truth=tmp / "ground_truth", **paths)
    out.update(paths)
    return out


def test_pair_writes_non_silent_wavs_of_plausible_length(evaluated):
    summary = evaluated["pairs"][("fastspeech2", "griffin_lim")]
    folder = evaluated["tmp"] / "pairs" / "fastspeech2-griffin_lim"
    assert summary["n"] == N_TEST
    for row in summary["rows"]:
        wav, rate = sf.read(folder / "wavs" / "fastspeech2-griffin_lim" / f"{row['id']}.wav")
        assert rate == evaluated["params"].audio.sample_rate
        assert np.abs(wav).max() > 0.01, "silent output"
        # the tiny FastSpeech 2 speaks tests.tiny_models.FRAMES_PER_PHONE frames per phone
        assert 0.3 < row["duration_ratio"] < 3.0, row
        assert row["synth_seconds"] == pytest.approx(len(wav) / rate)
        assert np.isfinite(row["mcd"]) and row["mcd"] > 0
        assert 0 <= row["wer"] and 0 <= row["cer"], "the recognizer ran"
        assert 1 <= row["mos"] <= 5, "the MOS predictor ran"
        assert row["rtf"] == pytest.approx(row["rtf_acoustic"] + row["rtf_vocoder"])
    figures = summary["figures"][summary["rows"][0]["id"]]
    assert set(figures) == {"mel", "pitch"}  # FastSpeech 2 has no attention
    assert all((folder / p).stat().st_size > 1000 for p in figures.values())
    lines = E.read_utterances(folder / E.UTTERANCES_FILE)
    assert [r["id"] for r in lines] == [r["id"] for r in summary["rows"]]


def test_attention_pair_scores_alignment_and_failures(evaluated):
    summary = evaluated["pairs"][("tacotron2", "wavegrad")]
    m = summary["metrics"]
    assert 0 <= m["diagonal_mass"] <= 1 and 0 <= m["failure_rate"] <= 1
    for row in summary["rows"]:
        # an untrained decoder never stops: capped at max_length_ratio x the recording
        assert row["hit_max_length"] and row["failed"] == 1.0
        cap = evaluated["params"].section("evaluate").max_length_ratio
        assert row["duration_ratio"] <= cap + 0.05
    assert "attention" in next(iter(summary["figures"].values()))
    assert summary["label"] == "tacotron2 + wavegrad_3it"  # the best-scoring schedule


def test_wavenet_subset_and_test_order(evaluated):
    assert evaluated["pairs"][("fastspeech2", "wavenet")]["n"] == 0  # wavenet_utterances: 0
    seconds = [r["seconds"] for r in evaluated["pairs"][("fastspeech2", "griffin_lim")]["rows"]]
    assert seconds == sorted(seconds), "utterances are evaluated shortest first"


def test_copy_synthesis_and_ground_truth(evaluated):
    gl = evaluated["copies"]["griffin_lim"][0]["metrics"]
    assert gl["mcd"] > 0 and 1.0 <= gl["pesq"] <= 4.65 and -1 <= gl["stoi"] <= 1
    schedules = [s["key"] for s in evaluated["copies"]["wavegrad"]]
    assert schedules == ["wavegrad_2it", "wavegrad_3it"]  # one row per searched schedule
    truth = evaluated["truth"]["metrics"]
    assert truth["mcd"] == pytest.approx(0, abs=1e-6)
    assert truth["stoi"] == pytest.approx(1, abs=1e-3) and truth["pesq"] > 4.4
    assert truth["wer"] is not None and truth["wer"] <= 1.0
    assert truth["mos"] is not None and 1 <= truth["mos"] <= 5
    assert truth["mcd_band_floor"] >= 0
    assert evaluated["truth"]["counts"]["wer"] == N_TEST
    lo, hi = evaluated["truth"]["intervals"]["mos"]
    assert lo <= truth["mos"] <= hi


def test_evaluate_stage_writes_metrics_report_and_csv(evaluated):
    metrics = json.loads(evaluated["metrics"].read_text())
    # fastspeech2-wavenet ran on 0 sentences (wavenet_utterances: 0): shown, never ranked
    assert sorted(p["rank"] for p in metrics["pairs"].values()) == [1, 2]
    assert set(metrics["unranked"]) == {"fastspeech2-wavenet"}
    assert set(metrics["copy_synthesis"]) == {"griffin_lim", "wavegrad_2it", "wavegrad_3it"}
    assert "wer" in metrics["ground_truth"] and "mos" in metrics["ground_truth"]
    assert "ci95" in metrics["ground_truth"]
    page = evaluated["report"].read_text()
    check_html(page)
    assert "evaluate_pair@dctts-wavegrad" in page  # not evaluated: listed, not an error
    assert page.count("data:audio/wav;base64,") >= 4 and "data:image/png;base64," in page
    md = evaluated["summary"].read_text()
    assert "| rank | system | n |" in md and "**" in md
    assert md.index("Floor (recordings") < md.index("## Text to speech")
    lines = E.read_utterances(evaluated["utterances"])
    assert {r["key"] for r in lines} >= {"fastspeech2-griffin_lim", "ground_truth", "griffin_lim"}


def test_best_pair_reads_the_ranking(evaluated):
    metrics = json.loads(evaluated["metrics"].read_text())
    best = min(metrics["pairs"], key=lambda k: metrics["pairs"][k]["rank"])
    assert "-".join(E.best_pair(evaluated["metrics"])) == best
    assert E.best_pair(evaluated["metrics"], vocoder="wavegrad") == ("tacotron2", "wavegrad")
    assert E.best_pair(evaluated["metrics"], acoustic="dctts") is None
    assert E.best_pair(evaluated["tmp"] / "nothing.json") is None


# --------------------------------------------------------------------- ranking, report


def fake_row(key: str, rank_metrics: dict, kind: str = "pair", audio=None, figures=None) -> dict:
    acoustic, vocoder = key.split("-") if kind == "pair" else (None, key)
    return {"key": key, "kind": kind, "acoustic": acoustic, "vocoder": vocoder,
            "label": key, "n": 3, "metrics": rank_metrics, "audio": audio or [],
            "figures": figures or {}}


def test_rank_pairs_mean_rank_with_missing_values_last():
    pairs = [fake_row("a-x", {"wer": 0.5, "mcd": 8.0}),
             fake_row("b-x", {"wer": 0.2, "mcd": 9.0}),
             fake_row("c-x", {"wer": 0.2, "mcd": 7.0}),
             fake_row("d-x", {"wer": None, "mcd": None})]
    ranked = E.rank_pairs(pairs, ["wer", "mcd"])
    assert [p["key"] for p in ranked] == ["c-x", "b-x", "a-x", "d-x"]
    assert [p["rank"] for p in ranked] == [1, 2, 3, 4]
    assert ranked[0]["quality"] == 1.0  # best in both columns (shared first place in WER)


class Checker(HTMLParser):
    """Fails on unbalanced non-void tags; collects the text of cells marked best."""

    VOID = {"meta", "img", "br", "hr", "input", "link", "source"}

    def __init__(self):
        super().__init__()
        self.stack, self.best, self.errors = [], [], []
        self._in_best = False

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "td" and ("class", "best") in attrs:
            self._in_best = True
            self.best.append("")

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        if tag == "td":
            self._in_best = False

    def handle_data(self, data):
        if self._in_best:
            self.best[-1] += data


def check_html(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert page.startswith("<!DOCTYPE html>")
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    return checker


def test_report_from_fake_summaries_marks_the_best_values(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(100, np.float32), 22050)
    png = tmp_path / "m.png"
    import matplotlib.pyplot as plt

    plt.figure(figsize=(1, 1)).savefig(png)
    audio = [{"id": "T1", "text": "A <test> & sentence.", "wav": str(wav)}]
    pairs = E.rank_pairs([
        fake_row("fastspeech2-wavegrad",
                 {"mcd": 6.0, "wer": 0.3, "rtf": 0.9, "duration_ratio": 1.3},
                 audio=audio, figures={"T1": {"mel": str(png)}}),
        fake_row("tacotron2-griffin_lim", {"mcd": 7.5, "wer": 0.4, "rtf": 0.2,
                                           "duration_ratio": 0.95, "diagonal_mass": 0.8}),
    ], ["wer", "mcd"])
    copies = [fake_row("griffin_lim", {"mcd": 4.0, "pesq": 1.5}, "copy"),
              fake_row("wavegrad_6it", {"mcd": 3.0, "pesq": 2.5}, "copy")]
    truth = fake_row("ground_truth", {"mcd": 0.0, "wer": 0.1}, "ground_truth", audio=audio)
    truth["label"] = "recordings"
    facts = R.verdict(pairs, copies, truth, ["wer", "mcd"])
    assert facts["best_pair"]["key"] == "fastspeech2-wavegrad"
    assert facts["fastest_pair"]["key"] == "tacotron2-griffin_lim"
    assert facts["best_vocoder"]["key"] == "wavegrad_6it"
    page = R.render_html(pairs, copies, truth, facts, missing=["evaluate_pair@dctts-wavenet"],
                         title="T", subtitle="sub", acoustic_names=ACOUSTIC_MODELS,
                         vocoder_names=VOCODERS)
    checker = check_html(page)
    best = [b.replace(R.BEST_MARK, "").strip() for b in checker.best]
    # pairs: MCD 6.00, duration ratio 0.95 (closest to 1), WER 0.300, RTF 0.200 (the align
    # score, one value only, compares with nothing); copy synthesis: MCD 3.00, PESQ 2.50;
    # the ground-truth row (MCD 0) is never marked
    assert sorted(best) == sorted(["6.00", "0.95", "0.300", "0.200", "3.00", "2.50"])
    assert "A &lt;test&gt; &amp; sentence." in page and "<test>" not in page
    assert "evaluate_pair@dctts-wavenet" in page
    md = R.render_markdown(pairs, copies, truth, facts, missing=[], title="T", subtitle="sub")
    assert "**6.00**" in md and "**0.95**" in md and "*recordings*" in md
    metrics = R.dvc_metrics(pairs, copies, truth)
    assert metrics["pairs"]["fastspeech2-wavegrad"]["rank"] == 1
    assert json.loads(json.dumps(metrics)) == metrics  # plain JSON, no NaN


def test_config_rejects_unknown_rank_column():
    with pytest.raises(ConfigError, match="rank_by"):
        tiny_params({"evaluate": {"rank_by": ["wer", "pesq"]}})  # copy synthesis only
    with pytest.raises(ConfigError, match="recognizer"):
        tiny_params({"evaluate": {"recognizer": "kaldi"}})
    with pytest.raises(ConfigError, match="max_length_ratio"):
        tiny_params({"evaluate": {"max_length_ratio": 0.5}})


def test_dvc_matrix_matches_the_registry():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    names = stages["vars"][0]
    assert tuple(names["acoustic_models"]) == ACOUSTIC_MODELS
    assert tuple(names["vocoders"]) == VOCODERS
    pair = stages["stages"]["evaluate_pair"]
    assert pair["matrix"] == {"acoustic": "${acoustic_models}", "vocoder": "${vocoders}"}


def test_a_column_where_every_row_ties_is_not_marked():
    rows = [fake_row("a-x", {"wer": 1.0, "mcd": 9.0}), fake_row("b-x", {"wer": 1.0, "mcd": 8.0})]
    assert R.best_values(rows, ["wer", "mcd"]) == {"mcd": 8.0}


def test_every_evaluate_param_is_a_dependency_of_some_evaluation_stage():
    import dataclasses

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    listed = {p for name, stage in stages.items() if name.startswith("evaluate")
              for p in stage.get("params", [])}
    missing = [f.name for f in dataclasses.fields(E.EvaluateConfig)
               if f"evaluate.{f.name}" not in listed and "evaluate" not in listed]
    assert not missing, f"evaluate.{missing} changes nothing in dvc.yaml's evaluation stages"


# ------------------------------------------------------------ comparable numbers


def utterance_row(key: str, values: dict[str, list[float]], kind: str = "pair") -> dict:
    """A summary row with per-utterance lines u0, u1, ... (as read back from CSV)."""
    n = len(next(iter(values.values())))
    lines = [{"id": f"u{i}", "key": key, **{k: f"{v[i]:.6g}" for k, v in values.items()}}
             for i in range(n)]
    row = fake_row(key, {}, kind)
    row.update(rows=lines, n=n)
    return row


def test_bootstrap_interval_is_deterministic_and_covers_the_mean():
    values = np.random.default_rng(0).uniform(0, 1, 24)
    lo, hi = E.bootstrap_interval(values, 1000, 0.95)
    assert lo < values.mean() < hi
    assert (lo, hi) == E.bootstrap_interval(values, 1000, 0.95)
    # roughly the normal-theory width 2 * 1.96 * sd / sqrt(n)
    assert hi - lo == pytest.approx(2 * 1.96 * values.std(ddof=1) / np.sqrt(24), rel=0.25)
    assert E.bootstrap_interval(values[:1], 1000, 0.95) is None


def test_compare_ranks_only_over_shared_utterances_and_sets_wavenet_aside():
    cfg = E.EvaluateConfig(rank_by=["wer"], bootstrap=200)
    truth = utterance_row("ground_truth", {"wer": [0.0, 0.0, 0.0, 0.5], "mos": [4, 4, 4, 4]},
                          "ground_truth")
    good = utterance_row("a-x", {"wer": [0.1, 0.1, 0.1, 0.5], "mos": [3, 3, 3, 3]})
    bad = utterance_row("b-x", {"wer": [0.3, 0.3, 0.3, 0.3], "mos": [2, 2, 2, 2]})
    # WaveNet on the first sentence only, where it is perfect: it must not win
    wavenet = utterance_row("a-wavenet", {"wer": [0.0], "mos": [5]})
    table = E.compare([bad, good, wavenet], [], truth, cfg)
    assert [p["key"] for p in table["pairs"]] == ["a-x", "b-x"]
    assert [p["key"] for p in table["partial_pairs"]] == ["a-wavenet"]
    assert table["pair_ids"] == ["u0", "u1", "u2", "u3"]
    best = table["pairs"][0]
    assert best["n"] == 4 and best["metrics"]["wer"] == pytest.approx(0.2)
    assert best["metrics"]["wer_gap"] == pytest.approx(0.2 - 0.125)
    assert best["metrics"]["mos_gap"] == pytest.approx(-1.0)
    lo, hi = best["intervals"]["wer"]
    assert lo <= 0.2 <= hi
    facts = R.verdict(table["pairs"], [], table["truth"], cfg.rank_by,
                      intelligible_wer_gap=0.1)
    assert [p["key"] for p in facts["intelligible"]] == ["a-x"]
    assert facts["floor"]["metrics"]["mos"] == 4.0


def test_learning_curve_trend_says_which_network_still_improves(tmp_path):
    from tts import curves as C
    from tts.tracking import write_plot

    falling = [{"step": s, "loss": 1.0} for s in range(10, 310, 10)]
    for row, value in zip(falling[9::10], (1.0, 0.6, 0.3)):
        row["val_loss"] = value
    flat = [dict(r) for r in falling]
    for row, value in zip(flat[9::10], (1.0, 0.5, 0.51)):
        row["val_loss"] = value
    write_plot(tmp_path / "wavegrad.tsv", falling)
    write_plot(tmp_path / "dctts_text2mel.tsv", flat)
    trends = C.network_trends(tmp_path)
    assert trends["wavegrad"]["improving"] and trends["wavegrad"]["steps_key"] == "wavegrad.steps"
    assert not trends["dctts_text2mel"]["improving"]
    assert trends["dctts_text2mel"]["steps_key"] == "dctts.text2mel.steps"
    facts = R.verdict([], [], None, ["wer"], curves=trends)
    assert any("wavegrad.steps" in a for a in facts["actions"])
    figures = C.write_curve_figures(tmp_path, tmp_path / "png", 50)
    assert set(figures) == {"wavegrad", "dctts_text2mel"}


def test_training_scale_sets_each_budget_against_the_gpu_recipe(tmp_path):
    """The report's "how far each network got": this run's steps x batch (x segment
    frames for vocoders) over the GPU recipe's, from params.yaml and the shipped preset."""
    from tts import curves as C
    from tts.config import load_params
    from tts.presets import apply

    root = Path(__file__).resolve().parents[1]
    here = load_params(root / "params.yaml")
    recipe = apply(root / "presets" / "ljspeech-gpu.yaml", root / "params.yaml")
    trends = {"fastspeech2": {"signal": "val_cer", "last": 0.07, "improving": True},
              "wavenet": {"signal": "val_loss", "last": 7.4, "improving": False}}
    scale = C.training_scale(trends, here, recipe)
    fs2_train, wn_train = here.network("fastspeech2")[0], here.network("wavenet")[0]
    fs2_full, wn_full = recipe.network("fastspeech2")[0], recipe.network("wavenet")[0]
    assert scale["fastspeech2"]["share"] == pytest.approx(
        fs2_train.steps * fs2_train.batch_size / (fs2_full.steps * fs2_full.batch_size))
    assert scale["wavenet"]["share"] == pytest.approx(
        wn_train.steps * wn_train.batch_size * wn_train.segment_frames
        / (wn_full.steps * wn_full.batch_size * wn_full.segment_frames))
    assert 0 < scale["wavenet"]["share"] < scale["fastspeech2"]["share"] < 1
    line = C.scale_sentence("fastspeech2", scale["fastspeech2"], trends["fastspeech2"])
    assert f"{fs2_full.steps:,} steps" in line and "still improving" in line
    facts = {"scale": scale, "curves": trends}
    assert "## How far each network got" in R.scale_list(facts)
    assert "<li>wavenet: " in R.scale_list(facts, html_list=True)
