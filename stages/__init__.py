"""One module per DVC stage (`python -m stages.NAME`): `run(...)`, which tests call, and
`main()`, which reads the command line with `arguments` and runs under `known_errors`.

`arguments` gives every stage the same flags: `--NAME PATH` for each path the stage reads
or writes (required unless listed as optional), `--NAME WORD` for names (an acoustic
model, a vocoder) and `--params` (default params.yaml). `known_errors` turns the errors
whose messages already say what to do (a params problem, a corpus or model that cannot be
used) into `STAGE: message` on stderr and exit status 1, instead of a traceback.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

from tts.config import ConfigError

PARAMS_FILE = Path("params.yaml")
HELP = {  # what each path flag is, in every stage's --help
    "corpus": "LJSpeech-layout corpus", "split": "folder of split lists",
    "features": "feature store", "align": "alignment folder",
    "models": "folder of finished models",
    "model": "finished model file", "out": "output to write", "metrics": "DVC metrics JSON",
    "plots": "DVC plots TSV", "checkpoints": "resume checkpoints folder",
    "acoustic": "acoustic model name", "vocoder": "vocoder name",
    "pairs": "folder of pair evaluations", "vocoders": "folder of copy-synthesis evaluations",
    "ground_truth": "ground-truth evaluation folder", "report": "HTML report to write",
    "summary": "Markdown summary to write", "utterances": "per-utterance CSV to write",
    "curves": "folder of training plots TSVs", "base": "base_models manifest of this network",
    "teacher": "the teacher's finished model file",
}


def arguments(doc: str, paths: str = "", optional: str = "", words: str = "",
              params: bool = True, parser: argparse.ArgumentParser | None = None,
              argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a stage's command line. `paths` / `optional`: space-separated names of
    required / optional `--NAME PATH` flags (`ground_truth` is spelled `--ground-truth`);
    `words`: required `--NAME TEXT` flags; `parser`: one with the stage's other arguments
    already added."""
    parser = parser or argparse.ArgumentParser(description=doc.splitlines()[0])
    for name in paths.split() + optional.split():
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path,
                            required=name in paths.split(), help=HELP.get(name))
    for name in words.split():
        parser.add_argument(f"--{name}", required=True, help=HELP.get(name))
    if params:
        parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    return parser.parse_args(argv)


@contextmanager
def known_errors(stage: str, *errors: type[BaseException]):
    """Run the block; a ConfigError or one of `errors` exits with `stage: message`."""
    try:
        yield
    except (ConfigError, *errors) as exc:
        raise SystemExit(f"{stage}: {exc}") from exc
