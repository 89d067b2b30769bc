"""Stage `split`: check every utterance of `--corpus` and write train/val/test lists.

Utterances with missing, unreadable, empty, silent or non-finite (NaN/inf) audio, empty or
unspeakable text, a duration / phoneme count outside `split.*`, or (with
`split.transcript_recognizer: whisper`) a transcript the recognizer does not confirm
(character error rate above `split.max_transcript_cer`) go to `dropped.tsv` with the reason
code and a detail naming the file or what was heard. The rest are ranked by a hash of
(`split.seed`, id): the same corpus gives the same split whatever order its files are
listed in. `report.json` has the counts, drops by reason, hours per split, how many inputs
features will resample or down-mix, and the transcript check's CER statistics and cost.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts import corpus, split
from tts.config import ConfigError, SplitConfig, load_params
from tts.text import TextConfig


def run(cfg: SplitConfig, corpus_dir: Path, out: Path, sample_rate: int,
        text: TextConfig | None = None) -> dict:
    """Write `out`/{train,val,test,dropped}.tsv and report.json; returns the report."""
    return split.split_corpus(corpus_dir, out, cfg, sample_rate, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="LJSpeech-layout corpus")
    parser.add_argument("--out", type=Path, required=True, help="split folder to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    try:
        params = load_params(args.params)
        report = run(params.split, args.corpus, args.out, params.audio.sample_rate,
                     params.section("text"))
    except (corpus.CorpusError, ConfigError) as exc:
        raise SystemExit(f"split: {exc}") from exc
    print(json.dumps({k: report[k] for k in ("counts", "hours", "dropped_by_reason")}))


if __name__ == "__main__":
    main()
