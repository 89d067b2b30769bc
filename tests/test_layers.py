"""The project's modules import one way (docs/architecture.md, "Layers").

Every module of `tts/`, `models/` and `stages/` sits in one layer; it may import modules of
its own layer or lower ones, never higher; the project's imports have no cycle; and no
function body imports a project module (that only hides a cycle or an upward import).
Read from the source with `ast`, so nothing is imported and the test takes milliseconds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tts", "models", "stages")

# Lowest first. A new module is placed here on purpose: the test fails until it is.
LAYERS: dict[str, tuple[str, ...]] = {
    # what every layer shares: params errors and validation, the feature contract, digests
    "contract": ("tts.contract", "tts.digest"),
    # signal, text and file formats: one job each, no params, no networks
    "foundations": (
        "tts.audio", "tts.text", "tts.espeak", "tts.piper_voice", "tts.attention",
        "tts.featstore", "tts.plots", "tts.recognizer", "tts.mos", "tts.metrics",
        "tts.corpus", "tts.split_lists", "tts.alignment", "tts.textgrid", "tts.prosody"),
    # the networks: configs filled from the contract, never reading files or params
    "models": ("models", "models.fastspeech2", "models.tacotron2", "models.dctts",
               "models.wavenet", "models.parallel_wavenet", "models.wavegrad",
               "models.griffin_lim"),
    # typed params over the registry, checkpoints, datasets and batches
    "config and data": ("tts.config", "tts.checkpoint", "tts.data"),
    # what the stages run: corpus making, split, alignment, the loop, evaluation, report
    "pipeline": (
        "tts.builtin_corpus", "tts.download", "tts.transcript_check", "tts.split",
        "tts.durations", "tts.pocketsphinx_aligner", "tts.mfa_aligner", "tts.align",
        "tts.alignments",
        "tts.tracking", "tts.media", "tts.curves", "tts.quality", "tts.train", "tts.finetune",
        "tts.memorize", "tts.noise_schedule", "tts.inference", "tts.evaluation", "tts.report",
        "tts.presets", "tts.parallel_repro", "tts.launch"),
    # the DAG's entry points
    "stages": ("stages",),
}


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


MODULES = module_files()


def layer_of(module: str) -> int | None:
    for rank, members in enumerate(LAYERS.values()):
        if module in members or (module.startswith("stages.") and "stages" in members):
            return rank
    return None


def project_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported project module, inside a function body) for every import in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from tts import audio` names the module tts.audio; `from tts.x import f`, tts.x
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                     else node.module for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES and name in MODULES:
                found.append((name, id(node) in in_function))
    return found


GRAPH = {m: {name for name, _ in project_imports(p) if name != m} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if layer_of(m) is None)
    assert not unplaced, f"place {unplaced} in a layer of tests/test_layers.py LAYERS"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_only(module):
    rank = layer_of(module)
    upward = sorted(d for d in GRAPH[module] if (layer_of(d) or 0) > (rank or 0))
    assert not upward, (f"{module} (layer {list(LAYERS)[rank]!r}) imports higher layers: "
                        f"{[(d, list(LAYERS)[layer_of(d)]) for d in upward]}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_level_project_imports(module):
    hidden = sorted(name for name, inside in project_imports(MODULES[module]) if inside)
    assert not hidden, (f"{module} imports {hidden} inside a function; import at module "
                        f"level (a cycle it would hide is a layering bug to fix instead)")


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])


def test_the_checks_can_fail(tmp_path):
    """The walker sees a function-level import and an upward one."""
    probe = tmp_path / "probe.py"
    probe.write_text("from tts import audio\n\ndef f():\n    from tts.config import ConfigError\n")
    found = project_imports(probe)
    assert ("tts.audio", False) in found and ("tts.config", True) in found
    assert layer_of("tts.config") > layer_of("tts.contract")
