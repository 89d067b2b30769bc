"""A small ctypes binding to eSpeak NG (the library and data in the `espeakng-loader` wheel).

Two uses: `synthesize` makes the builtin corpus (int16 mono at eSpeak's native rate) and
`to_ipa` is the grapheme-to-phoneme model for words CMUdict lacks (`tts.text`).

eSpeak NG keeps global state: every call sets voice and parameters afresh and holds a lock,
and synthesis runs in a forked child (see `synthesize`), so the same arguments give
byte-identical samples whatever ran before. The library is initialized lazily once per
process; a forked worker initializes its own copy on first use.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

# espeak_AUDIO_OUTPUT: synchronous, samples handed to the synth callback
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
BUFFER_MS = 0  # callback buffer length; 0 = eSpeak's default (200 ms)
CHARS_UTF8 = 1
POS_CHARACTER = 1
PHONEMES_IPA = 0x02  # espeak_TextToPhonemes phonememode bit: IPA instead of ASCII mnemonics
PHONEME_SEPARATOR = "_"  # asked for between phonemes (phonememode bits 8-23)
# espeak_PARAMETER (punctuation/capitals announcement stay at their off defaults; the
# synchronous engine refuses setting them)
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7
DEFAULT_VOLUME = 100
DEFAULT_RANGE = 50
EE_OK = 0
RAND_SEED = 1  # eSpeak's noise/jitter generator, reseeded before every utterance
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450
MIN_PITCH, MAX_PITCH = 0, 99

SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class _Engine:
    """The loaded library of one process: its sample rate and the callback's buffer."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EspeakError("the `espeakng-loader` package is not installed; "
                              "run `pip install -r requirements.txt`") from exc
        lib_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise EspeakError(f"cannot load the eSpeak NG library at {lib_path}: {exc}; "
                              "reinstall `espeakng-loader`") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS,
                                     data_path.encode(), INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError(f"eSpeak NG failed to initialize (library {lib_path}, "
                              f"data {data_path}); reinstall `espeakng-loader`")
        self.lib, self.sample_rate, self.pid = lib, rate, os.getpid()
        self.chunks: list[np.ndarray] = []
        self.callback = SYNTH_CALLBACK(self._collect)  # keep a reference: C holds a pointer
        lib.espeak_SetSynthCallback(self.callback)
        self.voice: str | None = None

    def _collect(self, samples, n: int, events) -> int:
        if n > 0 and samples:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def set_voice(self, voice: str) -> None:
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
                self.voice = None
                raise EspeakError(f"eSpeak NG has no voice {voice!r}; try 'en-us' or 'en'")
            self.voice = voice

    def set(self, parameter: int, value: int) -> None:
        if self.lib.espeak_SetParameter(parameter, value, 0) != EE_OK:
            raise EspeakError(f"eSpeak NG refused parameter {parameter} = {value}")


_engine: _Engine | None = None
_lock = threading.Lock()


def _get() -> _Engine:
    global _engine
    if _engine is None or _engine.pid != os.getpid():
        _engine = _Engine()
    return _engine


def sample_rate() -> int:
    """eSpeak NG's native output rate in Hz (22050 for the bundled voices)."""
    with _lock:
        return _get().sample_rate


def _speak(eng: _Engine, text: str, voice: str, rate_wpm: int, pitch: int) -> bytes:
    """Synthesize in this process (which then carries eSpeak's per-process state onward)."""
    data = text.encode("utf-8") + b"\0"
    eng.voice = None  # re-select: resets the voice's own parameters
    eng.set_voice(voice)
    for parameter, value in ((RATE, rate_wpm), (PITCH, pitch), (VOLUME, DEFAULT_VOLUME),
                             (RANGE, DEFAULT_RANGE), (WORDGAP, 0)):
        eng.set(parameter, value)
    eng.lib.espeak_ng_SetRandSeed(RAND_SEED)
    eng.chunks = []
    err = eng.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    if err != EE_OK:
        raise EspeakError(f"eSpeak NG failed (error {err}) to synthesize {text[:60]!r}")
    eng.lib.espeak_Synchronize()
    chunks, eng.chunks = eng.chunks, []
    return np.concatenate(chunks).astype(np.int16).tobytes() if chunks else b""


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak `text`; int16 mono samples at `SAMPLE_RATE` Hz. Deterministic in its arguments.

    eSpeak's wave generator keeps static state that no API call resets (the phase of its
    pitch flutter), so each utterance is synthesized in a forked child of the freshly
    initialized engine: every call starts from the same state and the parent never changes.
    """
    if not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
        raise ValueError(f"rate_wpm={rate_wpm} outside eSpeak's {MIN_RATE_WPM}..{MAX_RATE_WPM}")
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch={pitch} outside eSpeak's {MIN_PITCH}..{MAX_PITCH}")
    with _lock:
        eng = _get()
        eng.set_voice(voice)  # an unknown voice fails here, before forking
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesize, send b"1" + samples or b"0" + error, never return
            status = 0
            try:
                os.close(read_fd)
                try:
                    payload = b"1" + _speak(eng, text, voice, rate_wpm, pitch)
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    payload = b"0" + f"{type(exc).__name__}: {exc}".encode()
                view = memoryview(payload)
                while view:
                    view = view[os.write(write_fd, view):]
            except BaseException:  # noqa: BLE001
                status = 1
            finally:
                os._exit(status)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
    if not payload or status != 0:
        raise EspeakError(f"eSpeak NG synthesis process died (status {status}) on {text[:60]!r}")
    if payload[:1] == b"0":
        raise EspeakError(f"eSpeak NG could not synthesize {text[:60]!r}: "
                          f"{payload[1:].decode(errors='replace')}")
    return np.frombuffer(payload[1:], dtype=np.int16).copy()


def to_phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """eSpeak's IPA for `text`, as one list of phoneme strings per word.

    Stress marks (ˈ ˌ) come attached to the start of the phoneme that follows them.
    """
    data = ctypes.create_string_buffer(text.encode("utf-8"))
    mode = PHONEMES_IPA | (ord(PHONEME_SEPARATOR) << 8)
    words: list[list[str]] = []
    with _lock:
        eng = _get()
        eng.set_voice(voice)
        ptr = ctypes.c_void_p(ctypes.addressof(data))
        while ptr.value:
            out = eng.lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, mode)
            for word in (out or b"").decode("utf-8").split():
                phones = [p for p in word.split(PHONEME_SEPARATOR) if p]
                if phones:
                    words.append(phones)
    return words


def to_ipa(text: str, voice: str = "en-us") -> str:
    """eSpeak's IPA transcription of `text`, words separated by spaces."""
    return " ".join("".join(word) for word in to_phonemes(text, voice))


def __getattr__(name: str):
    # `SAMPLE_RATE` is queried from the library, so it is resolved (and eSpeak loaded) lazily
    if name == "SAMPLE_RATE":
        return sample_rate()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
