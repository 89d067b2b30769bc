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

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import corpus, split
from tts.config import SplitConfig, load_params
from tts.text import TextConfig


def run(cfg: SplitConfig, sample_rate: int, text: TextConfig | None = None, *,
        corpus_dir: Path, out: Path) -> dict:
    """Write `out`/{train,val,test,dropped}.tsv and report.json; returns the report."""
    return split.split_corpus(corpus_dir, out, cfg, sample_rate, text)


def main() -> None:
    args = arguments(__doc__, "corpus out")
    with known_errors("split", corpus.CorpusError):
        params = load_params(args.params)
        report = run(params.split, params.audio.sample_rate, params.section("text"),
                     corpus_dir=args.corpus, out=args.out)
    print(json.dumps({k: report[k] for k in ("counts", "hours", "dropped_by_reason")}))


if __name__ == "__main__":
    main()
