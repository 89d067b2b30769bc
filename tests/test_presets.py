"""Every shipped preset is a valid params fragment and turns into `-S` flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts.config import ConfigError
from tts.presets import flags

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_validates_and_gives_flags(preset):
    out = flags(preset, ROOT / "params.yaml")
    assert out and all(f.startswith("-S ") for f in out)


def test_stale_preset_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fastspeech2:\n  hiden: 256\n")
    with pytest.raises(ConfigError, match="fastspeech2.hiden"):
        flags(bad, ROOT / "params.yaml")
