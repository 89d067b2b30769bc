"""Shared fixtures. Real data lives outside the repo at ../shared/data/ljspeech-mini."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MINI_CORPUS = REPO_ROOT.parent / "shared" / "data" / "ljspeech-mini"
TINY_BUILTIN_UTTERANCES = 6


@pytest.fixture(scope="session")
def mini_corpus() -> Path:
    """24 real LJSpeech 1.1 utterances (LJSpeech layout), or skip where absent."""
    if not (MINI_CORPUS / "metadata.csv").is_file():
        pytest.skip(f"real-data test: {MINI_CORPUS} not found (only on the project machine)")
    return MINI_CORPUS


@pytest.fixture(scope="session")
def tiny_builtin_corpus(tmp_path_factory) -> Path:
    """A builtin corpus of TINY_BUILTIN_UTTERANCES utterances from the default engine
    (Piper's voice: ~10 s on one core, model load included; read-only: copy to edit)."""
    from tts.config import BuiltinCorpusConfig
    from tts.builtin_corpus import synthesize_builtin

    out = tmp_path_factory.mktemp("builtin") / "corpus"
    synthesize_builtin(BuiltinCorpusConfig(n_utterances=TINY_BUILTIN_UTTERANCES, workers=1), out)
    return out


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny test models run fastest on one thread; a second one only adds contention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
