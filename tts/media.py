"""Validation media: what a network's `sample(batch)` returns, turned into MLflow artifacts.

`sample` may return `mel` (n_mels, T), `attention` (T_out, L) and `audio` (N,) for the
first validation item. Mels are plotted against the target; acoustic models without a
vocoder are made audible with Griffin-Lim so every run has something to listen to.
"""

from __future__ import annotations

from typing import Callable

from tts import plots
from tts.audio import griffin_lim

PREVIEW_GRIFFIN_LIM_ITERS = 32  # enough to judge a validation sample; cheap on CPU
PREVIEW_MOMENTUM = 0.99


def validation_media_logger(audio_cfg) -> Callable:
    def log(tracker, media: dict, batch: dict, step: int) -> None:
        if not tracker.enabled:
            return
        uid = batch["ids"][0]
        if "mel" in media:
            target = batch["mel"][0, :, : int(batch["mel_lengths"][0])] \
                if "mel_lengths" in batch else batch["mel"][0]
            fig = plots.mel_figure({"predicted": media["mel"], "target": target}, uid)
            tracker.log_figure(fig, f"val/step{step:07d}_mel.png")
            plots.close(fig)
        if "attention" in media:
            fig = plots.attention_figure(media["attention"], f"{uid} attention, step {step}")
            tracker.log_figure(fig, f"val/step{step:07d}_attention.png")
            plots.close(fig)
        audio = media.get("audio")
        if audio is None and "mel" in media:

            audio = griffin_lim(media["mel"].float().cpu(), audio_cfg,
                                n_iter=PREVIEW_GRIFFIN_LIM_ITERS, momentum=PREVIEW_MOMENTUM)
        if audio is not None:
            tracker.log_audio(audio.detach().float().cpu().numpy(), audio_cfg.sample_rate,
                              f"val/step{step:07d}.wav")

    return log
