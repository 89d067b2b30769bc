"""The builtin corpus: prompts spoken offline by Piper's VITS voice or eSpeak NG.

`builtin_plan` fixes each utterance's id, prompt, rate and pitch from the params alone;
`synthesize_builtin` speaks the plan into an LJSpeech-layout folder (`tts.corpus`), the
same bytes for the same params.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from tts import espeak, piper_voice
from tts.corpus import (METADATA, WAVS, CorpusError, Utterance, staged_dir, write_metadata,
                        write_wav)
from tts.text import DEFAULT_CONFIG, normalize

PROMPTS = Path(__file__).with_name("prompts.txt")
BUILTIN_PREFIX = "BI"  # builtin ids: BI<take:03d>-<prompt:04d>, like LJSpeech's LJ001-0001
INT16_SCALE = 32768.0


def read_prompts(path: Path = PROMPTS) -> list[str]:
    """One prompt per line; blank lines skipped."""
    lines = [" ".join(s.split()) for s in Path(path).read_text(encoding="utf-8").splitlines()]
    prompts = [s for s in lines if s]
    if not prompts:
        raise CorpusError(f"{path} holds no prompts")
    return prompts


def builtin_plan(cfg, n_prompts: int) -> list[tuple[str, int, int, int]]:
    """(id, prompt index, rate, pitch) per utterance, a pure function of cfg and n_prompts.

    Prompts are drawn in one seeded permutation (taken again as take 2, 3, ... when more
    utterances than prompts are asked for); each utterance's rate and pitch jitter come from
    its own generator seeded by (seed, take, prompt), so it never depends on the others.
    """
    order = np.random.default_rng(cfg.seed).permutation(n_prompts)
    plan = []
    for i in range(cfg.n_utterances):
        take, prompt = i // n_prompts + 1, int(order[i % n_prompts])
        rng = np.random.default_rng([cfg.seed, take, prompt])
        rate = cfg.rate_wpm + int(rng.integers(-cfg.rate_jitter_wpm, cfg.rate_jitter_wpm + 1))
        pitch = cfg.pitch + int(rng.integers(-cfg.pitch_jitter, cfg.pitch_jitter + 1))
        plan.append((f"{BUILTIN_PREFIX}{take:03d}-{prompt + 1:04d}", prompt, rate, pitch))
    return sorted(plan)


def resample_int16(samples: np.ndarray, orig: int, target: int) -> np.ndarray:
    if orig == target:
        return samples
    x = AF.resample(torch.from_numpy(samples.astype(np.float32) / INT16_SCALE), orig, target)
    x = np.clip(np.round(x.numpy() * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1)
    return x.astype(np.int16)


def _builtin_key(uid: str) -> tuple[int, int]:
    """(take, prompt number) of a builtin id BI<take>-<prompt>."""
    take, prompt = uid.removeprefix(BUILTIN_PREFIX).split("-")
    return int(take), int(prompt)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (rounded, clipped)."""
    x = np.round(np.asarray(samples, np.float64) * INT16_SCALE)
    return np.clip(x, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


def _espeak_many(cfg, jobs: list[tuple[str, int, int]]) -> Iterator[tuple[np.ndarray, int]]:
    for text, rate, pitch in jobs:
        yield espeak.synthesize(text, cfg.voice, rate, pitch), espeak.sample_rate()


def _piper_many(cfg, jobs: list[tuple[str, int, int]]) -> Iterator[tuple[np.ndarray, int]]:
    for samples in piper_voice.speak_many(cfg, jobs, cfg.workers):
        yield to_int16(samples), piper_voice.SAMPLE_RATE


def synthesize_builtin(cfg, out: Path, text_cfg=None, prompts_path: Path = PROMPTS) -> dict:
    """Speak `cfg.n_utterances` prompts into an LJSpeech-layout `out` with `cfg.engine`:
    Piper's VITS voice (`tts.piper_voice`) or eSpeak NG (`tts.espeak`).

    Either speaks the normalized text (`tts.text.normalize` with `text_cfg`), so the sound
    matches what the phonemizer reads ("1800" is not read two ways); `text` keeps the
    prompt as written. Both are byte-identical for the same params.
    """
    text_cfg = text_cfg or DEFAULT_CONFIG
    prompts = read_prompts(prompts_path)
    plan = builtin_plan(cfg, len(prompts))
    normalized = [normalize(prompts[prompt], text_cfg) for _, prompt, _, _ in plan]
    if cfg.engine == "piper":
        audio = _piper_many(cfg, [(text, *_builtin_key(uid))
                                  for text, (uid, *_) in zip(normalized, plan)])
    else:
        audio = _espeak_many(cfg, [(text, rate, pitch)
                                   for text, (_, _, rate, pitch) in zip(normalized, plan)])
    rows, seconds = [], 0.0
    with staged_dir(out) as tmp:
        (tmp / WAVS).mkdir()
        for (uid, prompt, _, _), text, (samples, rate) in tqdm(
                zip(plan, normalized, audio), total=len(plan), desc=f"synthesize ({cfg.engine})",
                unit="utt"):
            if samples.size == 0:
                raise CorpusError(f"{cfg.engine} produced no audio for prompt {prompt + 1} of "
                                  f"{prompts_path}: {prompts[prompt]!r}; fix or remove that line")
            samples = resample_int16(samples, rate, cfg.sample_rate)
            write_wav(tmp / WAVS / f"{uid}.wav", samples, cfg.sample_rate)
            rows.append(Utterance(uid, prompts[prompt], text))
            seconds += samples.size / cfg.sample_rate
        write_metadata(tmp / METADATA, rows)
    return {"corpus": "builtin", "engine": cfg.engine, "utterances": len(rows),
            "hours": seconds / 3600}
