"""Noise-schedule search for a trained WaveGrad: few-iteration beta schedules, scored.

WaveGrad (Chen et al. 2020, section 3.2) trains on a continuous noise level, so it can be
sampled with any short beta schedule; which one works is found by search. Candidates:

- grid (the style of the WaveGrad reference implementation): log-spaced base betas from
  `beta_min` to `beta_max`, each step multiplied by one of `multiplier_values` log-spaced
  factors in [1, `multiplier_max`]; the full product has multiplier_values ** n members,
  of which `grid_size` are drawn with `seed` (all of them when fewer);
- seeds: Fibonacci-style (beta_k proportional to the k-th Fibonacci number) and linear
  schedules, each ending at every value of `seed_beta_ends`.

Each candidate generates audio for held-out validation clips (never training clips) from
the same fixed noise, scored by `mel_weight` * log-mel L1 + `stft_weight` * multi-resolution
STFT distance to the real audio (lower is better). Candidates are scored in worker
processes, one thread each, so the table does not depend on the worker count.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tts.audio import DEFAULT_STFT_RESOLUTIONS, mel_spectrogram, stft_distance
from tts.contract import ConfigError, check

BEST_FILE = "best_{n}.json"
TABLE_FILE = "candidates_{n}.csv"
TABLE_COLUMNS = ("candidate", "kind", "score", "mel_l1", "stft", "final_noise_level", "betas")


@dataclass(frozen=True)
class NoiseScheduleConfig:
    iterations: tuple[int, ...] = (6, 12)  # one search per inference iteration count
    # grid candidates
    beta_min: float = 1e-6  # base beta of the first (least noisy) step
    beta_max: float = 0.1  # base beta of the last (noisiest) step
    multiplier_values: int = 3  # per-step multipliers, log-spaced in [1, multiplier_max]
    multiplier_max: float = 9.0
    grid_size: int = 24  # grid candidates per iteration count, drawn from the product
    beta_ceiling: float = 0.9  # every beta is clipped to this (must stay below 1)
    # seed candidates: Fibonacci-style and linear schedules ending at each of these betas
    seed_beta_ends: tuple[float, ...] = (0.1, 0.3, 0.6)
    # scoring
    clips: int = 3  # held-out validation utterances scored
    clip_frames: int = 48  # mel frames per clip (a window placed with `seed`)
    mel_weight: float = 1.0  # weight of the log-mel L1 distance in the score
    stft_weight: float = 1.0  # weight of the multi-resolution STFT distance
    # multi-resolution STFT: (n_fft, hop, win) per resolution
    stft_resolutions: tuple[tuple[int, int, int], ...] = DEFAULT_STFT_RESOLUTIONS
    seed: int = 1234  # clip choice, grid draw and generation noise
    workers: int = 0  # scoring processes; 0 = all cores

    def validate(self, key: str) -> None:
        check(len(self.iterations) >= 1 and all(n >= 1 for n in self.iterations),
              f"{key}.iterations", "must be a non-empty list of positive integers")
        check(len(set(self.iterations)) == len(self.iterations), f"{key}.iterations",
              "must not repeat a count")
        check(0 < self.beta_min <= self.beta_max < 1, f"{key}.beta_min",
              "need 0 < beta_min <= beta_max < 1")
        check(0 < self.beta_ceiling < 1, f"{key}.beta_ceiling", "must be in (0, 1)")
        check(self.multiplier_max >= 1, f"{key}.multiplier_max", "must be at least 1")
        check(all(self.beta_min <= b < 1 for b in self.seed_beta_ends), f"{key}.seed_beta_ends",
              "must lie in [beta_min, 1)")
        for name in ("multiplier_values", "grid_size", "clips", "clip_frames"):
            check(getattr(self, name) >= 1, f"{key}.{name}", "must be at least 1")
        check(self.mel_weight >= 0 and self.stft_weight >= 0
              and self.mel_weight + self.stft_weight > 0, f"{key}.mel_weight",
              "weights must be >= 0 and not both 0")
        check(len(self.stft_resolutions) >= 1
              and all(len(r) == 3 and 0 < r[1] and 0 < r[2] <= r[0]
                      for r in self.stft_resolutions),
              f"{key}.stft_resolutions", "must be a list of [n_fft, hop, win] with win <= n_fft")
        check(self.workers >= 0, f"{key}.workers", "must be >= 0 (0 = all cores)")


# ---------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    kind: str  # grid | fibonacci | linear
    betas: tuple[float, ...]


BETA_DIGITS = 6  # significant digits kept: the stored schedule is exactly the one scored


def _clip(betas, cfg: NoiseScheduleConfig) -> tuple[float, ...]:
    return tuple(float(f"{min(max(b, cfg.beta_min), cfg.beta_ceiling):.{BETA_DIGITS}g}")
                 for b in betas)


def grid_candidates(n: int, cfg: NoiseScheduleConfig) -> list[Candidate]:
    """`grid_size` members of the per-step multiplier grid, drawn with `seed`."""
    bases = np.geomspace(cfg.beta_min, cfg.beta_max, n)
    factors = np.geomspace(1.0, cfg.multiplier_max, cfg.multiplier_values)
    values = cfg.multiplier_values
    total = values ** n
    if total <= cfg.grid_size:
        picks = range(total)
    else:  # a seeded draw from the product; decode each index in base `values`
        picks = sorted(random.Random(f"{cfg.seed}-grid-{n}").sample(range(total), cfg.grid_size))
    out = []
    for index in picks:
        digits = [(index // values ** k) % values for k in range(n)]
        out.append(Candidate("grid", _clip(bases * factors[digits], cfg)))
    return out


def fibonacci_betas(n: int, end: float) -> list[float]:
    """beta_k proportional to the k-th Fibonacci number (1, 2, 3, 5, ...), the last = end."""
    fib = [1, 2]
    while len(fib) < n:
        fib.append(fib[-1] + fib[-2])
    fib = fib[:n]
    return [end * f / fib[-1] for f in fib]


def seed_candidates(n: int, cfg: NoiseScheduleConfig) -> list[Candidate]:
    out = []
    for end in cfg.seed_beta_ends:
        out.append(Candidate("fibonacci", _clip(fibonacci_betas(n, end), cfg)))
        out.append(Candidate("linear", _clip(np.linspace(cfg.beta_min, end, n), cfg)))
    return out


def candidates(n: int, cfg: NoiseScheduleConfig) -> list[Candidate]:
    """Every candidate for `n` iterations, seeds first, duplicates removed (stable order)."""
    seen, out = set(), []
    for c in seed_candidates(n, cfg) + grid_candidates(n, cfg):
        if c.betas not in seen:
            seen.add(c.betas)
            out.append(c)
    return out


def final_noise_level(betas) -> float:
    """sqrt(alpha_bar) at the noisiest step: where generation starts (0 = pure noise)."""
    return math.sqrt(math.prod(1 - b for b in betas))


# ------------------------------------------------------------------------------- scoring


def select_clips(val_ids: list[str], store, cfg: NoiseScheduleConfig, hop: int,
                 exclude: set[str] = frozenset()) -> list[dict]:
    """`cfg.clips` held-out clips {id, mel (n_mels, F), audio (F * hop,)} chosen with `seed`."""
    leaked = sorted(set(val_ids) & set(exclude))
    if leaked:
        raise ValueError(f"validation ids {leaked[:5]} are also training ids; the search "
                         f"scores held-out clips only: re-run `dvc repro split`")
    if not val_ids:
        raise ValueError("the validation split is empty; set split.val_count >= 1")
    longest = max(r[0] for r in cfg.stft_resolutions)
    if cfg.clip_frames * hop <= longest // 2:  # the centred STFT's reflect padding
        raise ConfigError(f"params: `noise_schedule.clip_frames` = {cfg.clip_frames} is too "
                          f"short for an n_fft of {longest}; use more than "
                          f"{longest // 2 // hop} frames")
    rng = random.Random(cfg.seed)
    chosen = rng.sample(sorted(val_ids), min(cfg.clips, len(val_ids)))
    clips = []
    for uid in chosen:
        item = store[uid]
        frames = item["mel"].shape[-1]
        width = min(cfg.clip_frames, frames)
        start = rng.randrange(frames - width + 1)
        clips.append({"id": uid,
                      "mel": torch.from_numpy(item["mel"][:, start:start + width]).float(),
                      "audio": torch.from_numpy(item["audio"][start * hop:(start + width) * hop])
                      .float()})
    return clips


def score_schedule(model, clips: list[dict], betas, audio_cfg, cfg: NoiseScheduleConfig) -> dict:
    """Mean distances between generated and real audio over `clips` (lower is better)."""
    mel_l1 = stft = 0.0
    for i, clip in enumerate(clips):
        generator = torch.Generator().manual_seed(cfg.seed + i)  # same noise per candidate
        fake = model.generate(clip["mel"][None], list(betas), generator=generator)[0]  # (N,)
        real = clip["audio"]
        mel_l1 += (mel_spectrogram(fake, audio_cfg) - mel_spectrogram(real, audio_cfg)
                   ).abs().mean().item()
        stft += stft_distance(fake, real, cfg.stft_resolutions).item()
    mel_l1, stft = mel_l1 / len(clips), stft / len(clips)
    score = cfg.mel_weight * mel_l1 + cfg.stft_weight * stft
    return {"score": score if math.isfinite(score) else math.inf, "mel_l1": mel_l1,
            "stft": stft}


_WORKER: dict = {}  # per-process scoring state, set by _init_worker


def _init_worker(model_cls, model_cfg, state_dict, clips, audio_cfg, cfg) -> None:
    torch.set_num_threads(1)  # one thread per process: results independent of worker count
    model = model_cls(model_cfg)
    model.load_state_dict(state_dict)
    _WORKER.update(model=model.eval(), clips=clips, audio_cfg=audio_cfg, cfg=cfg)


def _score_job(candidate: Candidate) -> dict:
    w = _WORKER
    return score_schedule(w["model"], w["clips"], candidate.betas, w["audio_cfg"], w["cfg"])


def score_candidates(model, clips: list[dict], cands: list[Candidate], audio_cfg,
                     cfg: NoiseScheduleConfig) -> list[dict]:
    """Scores of every candidate, in order, from `cfg.workers` processes (one pool)."""
    workers = min(cfg.workers or os.cpu_count() or 1, len(cands))
    initargs = (type(model), model.cfg, model.state_dict(), clips, audio_cfg, cfg)
    bar = dict(total=len(cands), desc="noise schedules", unit="schedule")
    if workers <= 1:
        threads = torch.get_num_threads()
        try:
            _init_worker(*initargs)
            return [_score_job(c) for c in tqdm(cands, **bar)]
        finally:
            torch.set_num_threads(threads)
            _WORKER.clear()
    with mp.get_context("spawn").Pool(workers, _init_worker, initargs) as pool:
        # spawn, not fork: safe with torch's thread pools; chunks of 1 balance the load
        return list(tqdm(pool.imap(_score_job, cands), **bar))


def search(model, clips: list[dict], audio_cfg, cfg: NoiseScheduleConfig) -> dict[int, list[dict]]:
    """{iterations: table, one row per candidate} for every count in `cfg.iterations`."""
    per_n = {n: candidates(n, cfg) for n in cfg.iterations}
    flat = [c for n in cfg.iterations for c in per_n[n]]
    scores = iter(score_candidates(model, clips, flat, audio_cfg, cfg))
    return {n: [{"candidate": i, "kind": c.kind, **next(scores),
                 "final_noise_level": final_noise_level(c.betas), "betas": list(c.betas)}
                for i, c in enumerate(per_n[n])]
            for n in cfg.iterations}


def best(table: list[dict]) -> dict:
    """The lowest-scoring row (first on ties); refuses a table with no finite score."""
    finite = [row for row in table if math.isfinite(row["score"])]
    if not finite:
        raise RuntimeError("every candidate schedule produced non-finite audio; the "
                           "model is probably broken: re-train it (`dvc repro train_wavegrad`)")
    return min(finite, key=lambda row: row["score"])


# -------------------------------------------------------------------------------- output


def write_table(path: Path, table: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for row in table:
            writer.writerow([row["candidate"], row["kind"]]
                            + [repr(float(row[k])) for k in TABLE_COLUMNS[2:6]]
                            + [" ".join(repr(b) for b in row["betas"])])


def write_results(tables: dict[int, list[dict]], out: Path, clip_ids: list[str]) -> dict:
    """best_<n>.json and candidates_<n>.csv under `out`; returns the metrics dict."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = {}
    for n, table in tables.items():
        top = best(table)
        record = {"iterations": n, **{k: top[k] for k in TABLE_COLUMNS}, "clips": clip_ids}
        (out / BEST_FILE.format(n=n)).write_text(json.dumps(record, indent=2) + "\n")
        write_table(out / TABLE_FILE.format(n=n), table)
        metrics[f"iterations_{n}"] = {"best_score": top["score"], "mel_l1": top["mel_l1"],
                                      "stft": top["stft"], "candidates": len(table)}
    return metrics
