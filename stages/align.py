"""Stage `align`: phone durations (mel frames), phone-level pitch and energy, TextGrids.

Aligns every utterance of the `--split` lists (train, val and test, so evaluation can
compare durations) with `align.aligner` (pocketsphinx or mfa; see tts/align.py), then reads
each TextGrid back with the one reader onto the split's phonemes
(`tts.alignments.write_alignments`). Writes to `--out`: `textgrids/<id>.TextGrid`,
`alignment.tsv` (id phonemes durations pitch energy) and `report.json` (counts, drops
with reasons, mean phone length, pause counts, aligner version).
"""

from __future__ import annotations

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import alignment, corpus
from tts.alignments import write_alignments
from tts.config import AudioConfig, load_params


def run(cfg: alignment.AlignConfig, audio_cfg: AudioConfig, text_cfg=None, *, corpus_dir: Path,
        split_dir: Path, features_dir: Path, out: Path) -> dict:
    """Align, write `out` (replaced only on success) and return the report."""
    return write_alignments(cfg, audio_cfg, text_cfg, corpus_dir=corpus_dir,
                            split_dir=split_dir, features_dir=features_dir, out=out)


def main() -> None:
    args = arguments(__doc__, "corpus split features out")
    with known_errors("align", corpus.CorpusError, RuntimeError, ValueError, FileNotFoundError):
        params = load_params(args.params)
        report = run(params.section("align"), params.audio, params.section("text"),
                     corpus_dir=args.corpus, split_dir=args.split, features_dir=args.features,
                     out=args.out)
    print(json.dumps({k: report[k] for k in ("aligner", "version", "aligned", "dropped",
                                             "mean_phone_ms", "pauses")}))


if __name__ == "__main__":
    main()
