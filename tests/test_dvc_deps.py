"""dvc.yaml knows every project file a stage runs, so a code change never leaves an output
that DVC calls up to date.

For each stage (matrix stages expanded), the stage module named in `cmd` is followed
through its project imports (`tts`, `models`, `stages`; module level and inside
functions), plus the networks the command names, which the registry imports by name.
Every file reached must be among the stage's `deps`.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest
import yaml

import models

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tts", "models", "stages")
STAGE_MODULE = re.compile(r"python -m (stages\.\w+)")


def module_file(dotted: str) -> Path | None:
    path = ROOT / Path(*dotted.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def imported_modules(path: Path) -> set[str]:
    """Project modules `path` imports anywhere in its body (dotted names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from tts import audio` imports tts/__init__ and, when it is one, tts/audio
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                # `import tts.audio` also runs the package's __init__
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def closure(start: list[str]) -> set[Path]:
    """Files of `start` modules and everything they import from the project."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += imported_modules(path)
    return seen


def network_modules(name: str) -> list[str]:
    spec = models.spec(name)
    return [spec.module] + (network_modules(spec.teacher) if spec.teacher else [])


def registry_modules(args: list[str]) -> list[str]:
    """Modules the registry imports by name for the networks, acoustic models and vocoders
    a command names (their families, teachers and hooks)."""
    found = []
    for value in args:
        if value in models.REGISTRY:
            found += network_modules(value)
        if value in models.MODELS:
            entry = models.named(value)
            for name in entry.networks:
                found += network_modules(name)
            found += [hook.split(":")[0] for hook in (entry.assemble, entry.from_settings)
                      if hook]
    return found


def expanded_stages() -> dict[str, dict]:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    variables = {k: v for entry in dvc.get("vars", []) for k, v in entry.items()}
    stages = {}
    for name, stage in dvc["stages"].items():
        if "matrix" not in stage:
            stages[name] = stage
            continue
        axes = {k: variables[v[2:-1]] if isinstance(v, str) else v
                for k, v in stage["matrix"].items()}
        for combo in itertools.product(*axes.values()):
            item = dict(zip(axes, combo))

            def fill(text: str) -> str:
                return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), text)

            stages[f"{name}@{'-'.join(combo)}"] = {
                "cmd": fill(stage["cmd"]), "deps": [fill(d) for d in stage.get("deps", [])]}
    return stages


STAGES = expanded_stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_it_imports(name):
    stage = STAGES[name]
    match = STAGE_MODULE.search(stage["cmd"])
    assert match, f"{name}: cmd does not run a stages.* module"
    code = closure([match.group(1)] + registry_modules(stage["cmd"].split()))
    deps = {(ROOT / d).resolve() for d in stage.get("deps", [])}
    empty = {p for p in code if p.name == "__init__.py" and not p.read_text().strip()}
    missing = sorted(str(p.relative_to(ROOT)) for p in code - empty
                     if p.resolve() not in deps)
    assert not missing, f"dvc.yaml stage {name} imports {missing} but does not depend on them"


def test_closure_follows_function_level_and_registry_imports():
    code = {str(p.relative_to(ROOT)) for p in
            closure(["stages.train"] + registry_modules(["parallel_wavenet"]))}
    assert {"tts/config.py", "tts/text.py", "models/__init__.py", "models/wavenet.py",
            "models/parallel_wavenet.py", "tts/audio.py"} <= code
