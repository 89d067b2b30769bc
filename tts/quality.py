"""Validation by ear: predicted MOS and recognizer CER of a few validation clips, logged at
every validation so the learning curves show whether a network still improves.

- Vocoders (and DCTTS's SSRN), trained on segments: copy synthesis of the shortest
  `model.val_listen_clips` validation clips, cut to `model.val_listen_seconds`; the
  network's `sample` on the clip's recorded mel. CER is against what the recognizer hears
  in the same excerpt of the recording (a cut clip has no transcript).
- Acoustic models, trained on text: their free-running mel for the first
  `val_listen_clips` validation utterances (the network's `sample`), made audible with
  Griffin-Lim; CER is against the transcript.

The scores are `val_mos` (DistillMOS, `tts.mos`) and `val_cer` (Whisper tiny.en,
`tts.recognizer`); `tts.train` logs them with the other validation values to MLflow and the
DVC plots TSV. Cost: one model load per training run (about 2 s), then per validation and
clip the network's own synthesis plus recognizer and MOS (together about 0.3 s per second
of audio on one CPU core). `val_listen_clips: 0` switches it off.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from tts.audio import griffin_lim
from tts.data import read_split
from tts.featstore import FeatureStore
from tts.media import PREVIEW_GRIFFIN_LIM_ITERS, PREVIEW_MOMENTUM
from tts.train import pick_device
from tts.mos import load_mos_predictor
from tts.recognizer import error_rates, load_recognizer, scoring_words


def _item(batch: dict, i: int) -> dict:
    """Item `i` of a collated batch as a batch of one."""
    return {k: (v[i:i + 1] if torch.is_tensor(v) or isinstance(v, list) else v)
            for k, v in batch.items()}


class ValidationListener:
    """Call with (model, val_batches) -> {"mos": ..., "cer": ...} (means over clips)."""

    def __init__(self, kind: str, audio_cfg, split_dir: Path, features_dir: Path, clips: int,
                 max_seconds: float, device: str = "cpu"):
        self.kind, self.audio_cfg, self.clips, self.device = kind, audio_cfg, clips, device
        entries = sorted(read_split(split_dir, "val"), key=lambda e: (e.duration, e.id))
        self.text = {e.id: e.text for e in entries}
        self.excerpts: list[dict] = []
        if kind == "segments":
            store = FeatureStore(features_dir)
            frames = max(1, int(max_seconds * audio_cfg.sample_rate / audio_cfg.hop_length))
            for e in entries[:clips]:
                item = store[e.id]
                mel = np.asarray(item["mel"], dtype=np.float32)[:, :frames]
                audio = np.asarray(item["audio"], dtype=np.float32)[
                    :mel.shape[1] * audio_cfg.hop_length]
                self.excerpts.append({"id": e.id, "mel": mel, "audio": audio})
        self._scorers = None
        self._references: dict[str, str] = {}

    def _load(self):
        if self._scorers is None:
            self._scorers = (load_recognizer("whisper"), load_mos_predictor())
            rec = self._scorers[0]
            for clip in self.excerpts:  # what the recognizer hears in the recording itself
                self._references[clip["id"]] = rec.transcribe(clip["audio"],
                                                              self.audio_cfg.sample_rate)
        return self._scorers

    def _audio(self, media: dict) -> np.ndarray:
        audio = media.get("audio")
        if audio is None:
            audio = griffin_lim(media["mel"].float().cpu(), self.audio_cfg,
                                n_iter=PREVIEW_GRIFFIN_LIM_ITERS, momentum=PREVIEW_MOMENTUM)
        return audio.detach().float().cpu().numpy()

    def _clips(self, val_batches: list[dict]):
        """(media-producing batch of one, reference text or None) per clip."""
        if self.kind == "segments":
            for clip in self.excerpts:
                batch = {"ids": [clip["id"]],
                         "mel": torch.from_numpy(clip["mel"])[None].to(self.device),
                         "audio": torch.from_numpy(clip["audio"])[None].to(self.device)}
                yield batch, self._references.get(clip["id"])
            return
        count = 0
        for batch in val_batches:
            for i in range(len(batch["ids"])):
                if count == self.clips:
                    return
                one = {k: (v.to(self.device) if torch.is_tensor(v) else v)
                       for k, v in _item(batch, i).items()}
                yield one, self.text.get(batch["ids"][i])
                count += 1

    @torch.no_grad()
    def __call__(self, model, val_batches: list[dict]) -> dict[str, float]:
        if self.clips < 1 or not hasattr(model, "sample"):
            return {}
        recognizer, mos = self._load()
        rate = self.audio_cfg.sample_rate
        scores, cers = [], []
        for batch, reference in self._clips(val_batches):
            audio = self._audio(model.sample(batch))
            if not np.isfinite(audio).all():
                audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
            value = mos(audio, rate)
            if math.isfinite(value):
                scores.append(value)
            if reference and scoring_words(reference):
                cers.append(error_rates(reference, recognizer.transcribe(audio, rate))["cer"])
        out = {}
        if scores:
            out["mos"] = float(np.mean(scores))
        if cers:
            out["cer"] = float(np.mean(cers))
        return out


def validation_listener(kind: str, train_cfg, audio_cfg, split_dir: Path,
                        features_dir: Path) -> ValidationListener | None:
    """The probe a network's `TrainConfig` asks for (None: `val_listen_clips: 0`), on the
    device the training loop picks for rank 0."""
    if not train_cfg.val_listen_clips:
        return None
    return ValidationListener(kind, audio_cfg, split_dir, features_dir,
                              train_cfg.val_listen_clips, train_cfg.val_listen_seconds,
                              str(pick_device(0)))
