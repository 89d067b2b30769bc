"""Stage `evaluate`: gather every evaluation into the report, DVC metrics and one MLflow run.

    python -m stages.evaluate --pairs DIR --vocoders DIR --ground-truth DIR --report FILE
        --summary FILE --metrics FILE --utterances FILE [--curves DIR] [--recipe FILE]

Reads `<pairs>/<acoustic>-<vocoder>/`, `<vocoders>/<vocoder>/` and the ground-truth folder
(each written by its own stage), restricts every table to the sentences its rows share,
ranks the pairs over those, reads the training curves (--curves, the DVC plots TSVs) to
tell which networks were still improving (with --recipe, a preset such as
presets/ljspeech-gpu.yaml: how far each got against that recipe's budget), and writes the
self-contained HTML report, its Markdown summary, the DVC metrics JSON and every
per-utterance line in one CSV. A pair or vocoder that was not evaluated is listed in the
report, not an error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stages import arguments, known_errors
from tts import evaluation as E
from tts.config import load_params, to_dict
from tts.presets import apply
from tts.report import write_report
from tts.tracking import Tracker, numeric_leaves


def run(params, *, pairs: Path, vocoders: Path, ground_truth: Path, report: Path,
        summary: Path, metrics: Path, utterances: Path, curves: Path | None = None,
        recipe: Path | None = None, params_path: Path = Path("params.yaml")) -> dict:
    """Gather, write the report files (`tts.report.write_report`), log them to MLflow;
    returns the DVC metrics."""
    cfg = params.section("evaluate")
    found = E.gather(Path(pairs), Path(vocoders), Path(ground_truth))
    if found.empty:
        raise ValueError(f"nothing evaluated under {pairs}, {vocoders} or {ground_truth}; "
                         f"run `dvc repro evaluate`")
    written = write_report(found, cfg, report=report, summary=summary, metrics=metrics,
                           utterances=utterances, curves=curves, corpus=params.data.corpus,
                           sample_rate=params.audio.sample_rate, params=params,
                           recipe=apply(recipe, params_path) if recipe else None)
    with Tracker("evaluate") as tracker:
        tracker.log_params({"evaluate": to_dict(cfg), "synth": to_dict(params.section("synth"))})
        tracker.log_metrics(numeric_leaves(written.metrics))
        for path in (report, summary, utterances):
            tracker.log_file(path)
        for row in written.rows:
            folder = Path(row["folder"])
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                where = Path("eval", folder.name, file.parent.relative_to(folder))
                tracker.log_file(file, str(where))
    return written.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path,
                        help="preset whose budgets the report measures each network against")
    args = arguments(__doc__, "pairs vocoders ground_truth report summary metrics utterances",
                     optional="curves", parser=parser)
    with known_errors("evaluate", ValueError):
        metrics = run(load_params(args.params), params_path=args.params,
                      **{k: v for k, v in vars(args).items() if k != "params"})
    print(json.dumps({k: v.get("rank") for k, v in metrics["pairs"].items()}))


if __name__ == "__main__":
    main()
