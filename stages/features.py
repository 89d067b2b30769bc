"""Stage `features`: log-mel, F0, voicing, energy and padded audio for every split utterance.

Reads `--corpus` wavs for the ids of `--split` train/val/test lists (in that order), extracts
`tts.audio.utterance_features` over `features.workers` processes (0 = all cores) and writes a
sharded `tts.featstore` store to `--out`, with `stats.json` (normalization statistics of the
train split only; per-split counts under "splits"). The same inputs give identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages import arguments, known_errors
from tts import audio, corpus, featstore, split_lists
from tts.config import AudioConfig, FeaturesConfig, load_params


def run(audio_cfg: AudioConfig, cfg: FeaturesConfig, *, corpus_dir: Path, split_dir: Path,
        out: Path) -> dict:
    """Write the feature store `out` (replaced only on success); returns stats.json's dict."""
    lists = {name: Path(split_dir) / f"{name}.tsv" for name in split_lists.SPLITS}
    for path in lists.values():
        if not path.is_file():
            raise corpus.CorpusError(f"{path} not found; run `dvc repro split` first")
    splits = {name: [e.id for e in split_lists.read_split(path)] for name, path in lists.items()}
    ids = [uid for name in split_lists.SPLITS for uid in splits[name]]
    per_split = {name: featstore.FeatureStats(audio_cfg.sample_rate, audio_cfg.hop_length)
                 for name in split_lists.SPLITS}
    split_of = {uid: name for name in split_lists.SPLITS for uid in splits[name]}
    paths = [Path(corpus_dir) / corpus.WAVS / f"{uid}.wav" for uid in ids]
    items = audio.extract_many(paths, audio_cfg, cfg.workers)

    def tee():  # statistics ride along the single pass that writes the shards
        for uid, item in zip(ids, items, strict=True):  # strict: runs `items` to its end
            per_split[split_of[uid]].add(item)
            yield uid, item

    with corpus.staged_dir(Path(out)) as tmp:
        featstore.write_store(tmp, tee(), cfg.shard_size)
        stats = per_split["train"].result()
        stats["splits"] = {name: s.counts() for name, s in per_split.items()}
        featstore.write_stats(tmp, stats)
    return stats


def main() -> None:
    args = arguments(__doc__, "corpus split out")
    with known_errors("features", audio.AudioError, corpus.CorpusError, ValueError):
        params = load_params(args.params)
        stats = run(params.audio, params.features, corpus_dir=args.corpus, split_dir=args.split,
                    out=args.out)
    print(json.dumps({k: stats[k] for k in ("n_utterances", "n_frames", "seconds", "splits")}))


if __name__ == "__main__":
    main()
