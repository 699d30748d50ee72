"""espeak-ng through ctypes, from the library and data the `espeakng-loader` wheel ships.

espeak-ng keeps its state in globals and is not thread-safe: every call goes through one process-wide lock,
and the library is initialised once per process.
"""

from __future__ import annotations

import array
import ctypes
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import espeakng_loader

from services.common.engine_catalog import DEFAULT_RATE

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02  # espeak_Synth blocks and hands the samples to the callback
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes: IPA as UTF-8 instead of espeak's own phoneme names
DEFAULT_PITCH = 50  # 0-100

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()


@functools.cache
def _variants() -> frozenset[str]:
    """The voice variants (`m3`, `f3`, `klatt`, ...) in the shipped espeak-ng-data."""
    return frozenset(p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir())


class VoiceNotFound(LookupError):
    """espeak-ng has no voice of that name."""


class Espeak:
    """The process's espeak-ng; use `Espeak.shared()`."""

    _instance: Espeak | None = None

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise ({rate})")
        self._lib = lib
        self.sample_rate: int = rate
        self._sink: Callable[[array.array[int]], None] | None = None
        # Kept on the instance: ctypes must not collect a callback that C still holds.
        self._callback = _SynthCallback(self._on_samples)
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def shared(cls) -> Espeak:
        """The one instance of this process, initialised on first use."""
        with _lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_samples(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if wav and count > 0 and self._sink is not None:
            self._sink(array.array("h", ctypes.string_at(wav, count * 2)))
        return 0

    def has_voice(self, name: str) -> bool:
        """Whether espeak-ng knows a voice name such as "en", "fr" or "en+f3"."""
        language, _, variant = name.partition("+")
        # espeak-ng accepts an unknown variant and silently speaks the plain language voice instead.
        if variant and variant not in _variants():
            return False
        with _lock:
            return bool(self._lib.espeak_SetVoiceByName(language.encode()) == _EE_OK)

    def synthesize(
        self, text: str, voice: str, rate: int = DEFAULT_RATE, pitch: int = DEFAULT_PITCH
    ) -> array.array[int]:
        """16-bit mono samples at `sample_rate` for `text`; rate in words per minute, pitch 0-100."""
        samples: array.array[int] = array.array("h")
        data = text.encode("utf-8")
        with _lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise VoiceNotFound(voice)
            # Set both every time: the last job's values would otherwise carry over.
            self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._sink = samples.extend
            try:
                status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            finally:
                self._sink = None
        if status != _EE_OK:
            raise RuntimeError(f"espeak-ng could not synthesise ({status})")
        return samples

    def phonemes(self, text: str, voice: str) -> str:
        """The IPA phonemes of `text` as `voice` pronounces it (its clauses joined by spaces).

        What neural voices trained on espeak-ng phonemes (Piper) take as their input.
        """
        data = ctypes.create_string_buffer(text.encode("utf-8"))
        # espeak_TextToPhonemes moves this pointer past each clause it reads, and sets it to NULL at the end.
        position = ctypes.c_void_p(ctypes.addressof(data))
        clauses: list[str] = []
        with _lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise VoiceNotFound(voice)
            while position.value:
                phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(position), _CHARS_UTF8, _PHONEMES_IPA)
                if phonemes:
                    clauses.append(phonemes.decode("utf-8").strip())
        return " ".join(clause for clause in clauses if clause)
