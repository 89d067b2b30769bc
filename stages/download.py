"""Stage `download`: make the LJSpeech-layout corpus `--out` from `data.corpus`.

`builtin` synthesizes prompts with Piper's VITS voice or eSpeak NG (`data.builtin.engine`;
offline, byte-identical for the same params);
`ljspeech` fetches the LJSpeech 1.1 archive (resumable, verified, kept in
`data.ljspeech.download_dir` and never fetched twice) and stream-extracts it; any other
value is a folder in LJSpeech layout, copied. Relative paths are taken from the repo root.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from stages import arguments, known_errors
from tts import builtin_corpus, corpus, download
from tts.config import DataConfig, load_params
from tts.text import TextConfig


def run(data: DataConfig, out: Path, text: TextConfig | None = None,
        root: Path | None = None) -> dict:
    """Build `out` (`text`: normalizer settings for builtin); returns a summary."""
    source = corpus.resolve_source(data.corpus, root)
    if source == "builtin":
        return builtin_corpus.synthesize_builtin(data.builtin, out, text)
    if source == "ljspeech":
        lj = data.ljspeech
        archive = corpus.repo_path(lj.download_dir, root) / Path(urlparse(lj.url).path).name
        download.fetch_archive(lj.url, archive, lj.size, lj.sha256)
        return download.extract_archive(archive, out)
    return corpus.copy_folder(source, out)


def main() -> None:
    args = arguments(__doc__, "out")
    with known_errors("download", corpus.CorpusError, download.DownloadError):
        params = load_params(args.params)
        summary = run(params.data, args.out, params.section("text"))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
