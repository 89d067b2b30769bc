"""Stage `evaluate`: gather every evaluation into the report, DVC metrics and one MLflow run.

    python -m stages.evaluate --pairs DIR --vocoders DIR --ground-truth DIR --report FILE
        --summary FILE --metrics FILE --utterances FILE [--curves DIR]

Reads `<pairs>/<acoustic>-<vocoder>/`, `<vocoders>/<vocoder>/` and the ground-truth folder
(each written by its own stage), restricts every table to the sentences its rows share,
ranks the pairs over those, reads the training curves (--curves, the DVC plots TSVs) to
tell which networks were still improving, and writes the self-contained HTML report, its
Markdown summary, the DVC metrics JSON and every per-utterance line in one CSV. A pair or
vocoder that was not evaluated is listed in the report, not an error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from models import ACOUSTIC_MODELS, VOCODERS
from tts import curves as C
from tts import evaluation as E
from tts import report as R
from tts.config import ConfigError, load_params, to_dict
from tts.tracking import Tracker, write_metrics

TITLE = "Text-to-speech evaluation"


def gather(pairs_dir: Path, vocoders_dir: Path, truth_dir: Path):
    """(pair rows, copy rows, ground-truth row or None, missing stage names)."""
    pairs, copies, missing = [], [], []
    for a in ACOUSTIC_MODELS:
        for v in VOCODERS:
            folder = pairs_dir / f"{a}-{v}"
            if (folder / E.SUMMARY_FILE).is_file():
                pairs += E.read_summaries(folder)
            else:
                missing.append(f"evaluate_pair@{a}-{v}")
    for v in VOCODERS:
        folder = vocoders_dir / v
        if (folder / E.SUMMARY_FILE).is_file():
            copies += E.read_summaries(folder)
        else:
            missing.append(f"evaluate_vocoder@{v}")
    truth = None
    if (truth_dir / E.SUMMARY_FILE).is_file():
        truth = E.read_summaries(truth_dir)[0]
    else:
        missing.append("evaluate_ground_truth")
    return pairs, copies, truth, missing


def run(params, pairs_dir: Path, vocoders_dir: Path, truth_dir: Path, report: Path,
        summary: Path, metrics_path: Path, utterances: Path, curves: Path | None = None) -> dict:
    cfg = params.section("evaluate")
    pairs, copies, truth, missing = gather(Path(pairs_dir), Path(vocoders_dir), Path(truth_dir))
    if not (pairs or copies or truth):
        raise ValueError(f"nothing evaluated under {pairs_dir}, {vocoders_dir} or {truth_dir}; "
                         f"run `dvc repro evaluate`")
    table = E.compare(pairs, copies, truth, cfg)
    pairs, copies, truth = table["pairs"], table["copies"], table["truth"]
    partial = table["partial_pairs"] + table["partial_copies"]
    trends, curve_figures = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        if curves and Path(curves).is_dir():
            trends = C.network_trends(Path(curves))
            curve_figures = C.write_curve_figures(Path(curves), Path(scratch), cfg.figure_dpi)
        facts = R.verdict(pairs, copies, truth, cfg.rank_by, trends, cfg.intelligible_wer_gap)
        facts["truth_copies"] = table["truth_copies"]
        n = truth["n"] if truth else max(r["n"] for r in pairs + copies)
        subtitle = (f"{n} held-out test sentences shared by every ranked row · corpus "
                    f"{params.data.corpus} · {params.audio.sample_rate} Hz · best pair = rank 1")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(R.render_html(pairs, copies, truth, facts, ACOUSTIC_MODELS, VOCODERS,
                                        missing, TITLE, subtitle, partial, curve_figures))
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(R.render_markdown(pairs, copies, truth, facts, missing, TITLE, subtitle,
                                         partial))
    metrics = R.dvc_metrics(pairs, copies, truth, partial)
    if trends:
        metrics["still_improving"] = {k: int(v["improving"]) for k, v in trends.items()}
    write_metrics(metrics_path, metrics)
    lines = []
    for row in ([truth] if truth else []) + copies + pairs + partial:
        lines += [{"key": row["key"], **r} for r in E.read_utterances(
            Path(row["folder"]) / E.UTTERANCES_FILE) if r["key"] == row["key"]]
    utterances.parent.mkdir(parents=True, exist_ok=True)
    E.write_utterances(utterances, lines)
    with Tracker("evaluate") as tracker:
        tracker.log_params({"evaluate": to_dict(cfg), "synth": to_dict(params.section("synth"))})
        tracker.log_metrics(_flat(metrics))
        for path in (report, summary, utterances):
            tracker.log_file(path)
        for row in ([truth] if truth else []) + copies + pairs + partial:
            folder = Path(row["folder"])
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                where = Path("eval", folder.name, file.parent.relative_to(folder))
                tracker.log_file(file, str(where))
    return metrics


def _flat(tree: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, (int, float)):
            out[name] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="folder of pair evaluations")
    parser.add_argument("--vocoders", type=Path, required=True, help="folder of copy synthesis")
    parser.add_argument("--ground-truth", type=Path, required=True, help="ground-truth folder")
    parser.add_argument("--report", type=Path, required=True, help="HTML report to write")
    parser.add_argument("--summary", type=Path, required=True, help="Markdown summary to write")
    parser.add_argument("--metrics", type=Path, required=True, help="DVC metrics JSON")
    parser.add_argument("--utterances", type=Path, required=True, help="per-utterance CSV")
    parser.add_argument("--curves", type=Path, help="folder of training plots TSVs")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        metrics = run(load_params(args.params), args.pairs, args.vocoders, args.ground_truth,
                      args.report, args.summary, args.metrics, args.utterances, args.curves)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"evaluate: {exc}") from exc
    print(json.dumps({k: v.get("rank") for k, v in metrics["pairs"].items()}))


if __name__ == "__main__":
    main()
