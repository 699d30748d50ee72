"""Text to speech: a neural voice where one ships (Piper for English; Kokoro for Spanish, French, German, Catalan),
espeak-ng for every other language and on request; offline; 16-bit mono WAV, MP3 or OGG (Opus)."""

from __future__ import annotations

import wave
from pathlib import Path

from services.common import job_types
from services.common.engine_catalog import DEFAULT_RATE, MAX_RATE, MIN_RATE
from services.common.job_params import JobParams, TtsParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, params_of
from services.workers.engines.toolkit import neural_voices
from services.workers.engines.toolkit.espeak import DEFAULT_PITCH, Espeak
from services.workers.engines.toolkit.ffmpeg import encode_audio
from services.workers.engines.toolkit.neural_voices import NeuralVoice
from services.workers.engines.toolkit.speech import espeak_voice, output_format, split_text, text_to_speak

MIN_PITCH, MAX_PITCH = 0, 100
OUTPUT_STEM = "speech"
# The voice name that asks for espeak-ng's plain voice of the language (variants such as m3 ask for it too).
ESPEAK = "espeak"


def primary_subtag(language: str) -> str:
    return language.strip().lower().replace("_", "-").split("-")[0]


def neural_voice(language: str, voice: str, pitch: int) -> NeuralVoice | None:
    """The neural voice a job gets, or None for espeak-ng; BadInput when the job asks what it cannot have."""
    # Not validated here: espeak-ng's voice lookup refuses a malformed language, naming the ones it has.
    primary = primary_subtag(language)
    chosen = neural_voices.VOICES.get(voice)
    if chosen is not None:
        if primary not in chosen.languages:
            raise BadInput(
                f"the neural voice {voice} speaks {', '.join(chosen.languages)}, not {language}; "
                f"ask for voice {ESPEAK!r} for espeak-ng's {language}"
            )
        if pitch:
            raise BadInput(f"the neural voice {voice} has no pitch control; choose an espeak-ng voice for pitch")
        return chosen
    if voice:
        return None
    default = neural_voices.DEFAULTS.get(primary)
    if default is not None and pitch:
        raise BadInput(
            f"the neural voice {default} has no pitch control; ask for voice {ESPEAK!r} "
            "(or a variant such as m3) for pitch"
        )
    return neural_voices.VOICES[default] if default is not None else None


class TextToSpeech:
    """TTS engine: the language's neural voice by default, espeak-ng otherwise; the text is spoken sentence by
    sentence, so progress and cancel are real."""

    job_type = job_types.TTS.name

    def __init__(self, espeak: Espeak | None = None) -> None:
        self._espeak = espeak

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Speak `params.text` into speech.wav, speech.mp3 or speech.ogg."""
        tts = params_of(params, TtsParams)
        fmt = output_format(tts.format)
        text = text_to_speak(tts.text, job_types.TTS.max_text_chars)
        # proto3 integers have no presence: 0 means "not given", so espeak's defaults apply.
        rate = tts.rate or DEFAULT_RATE
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BadInput(f"rate must be {MIN_RATE}-{MAX_RATE} words per minute (0 for the default), not {rate}")
        pitch = tts.pitch or DEFAULT_PITCH
        if not MIN_PITCH <= pitch <= MAX_PITCH:
            raise BadInput(f"pitch must be {MIN_PITCH}-{MAX_PITCH} (0 for the default), not {pitch}")
        espeak = self._espeak or Espeak.shared()
        neural = neural_voice(tts.language or "en", tts.voice.strip().lower(), tts.pitch)
        if neural is not None:
            language, voice = (tts.language or "en").strip().lower(), neural.name
            sample_rate = neural.sample_rate
        else:
            variant = "" if tts.voice.strip().lower() == ESPEAK else tts.voice
            language, voice = espeak_voice(espeak, tts.language, variant)
            sample_rate = espeak.sample_rate

        chunks = split_text(text)
        engine = neural.engine if neural is not None else "espeak-ng"
        ctx.log(f"speaking {len(text)} characters in {len(chunks)} parts with the {engine} voice {voice}")
        # Encoding is one more step after speaking when the format is not WAV.
        steps = len(chunks) + (fmt != "wav")
        wav_path = ctx.output_dir / f"{OUTPUT_STEM}.wav"
        frames = 0
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            for index, chunk in enumerate(chunks, start=1):
                ctx.check_cancelled()
                if neural is not None:
                    samples = neural.speak(chunk, primary_subtag(language), espeak, rate).tobytes()
                else:
                    samples = espeak.synthesize(chunk, voice, rate, pitch).tobytes()
                out.writeframes(samples)
                frames += len(samples) // 2
                ctx.progress(100 * index // steps, f"spoke part {index} of {len(chunks)}")
        path = wav_path
        if fmt != "wav":
            ctx.check_cancelled()
            path = encode_audio(wav_path, ctx.output_dir / f"{OUTPUT_STEM}.{fmt}", fmt)
            wav_path.unlink()
            ctx.progress(100, f"encoded {fmt}")
        return EngineResult(
            outputs=[path],
            meta={
                "duration_seconds": round(frames / sample_rate, 3),
                "sample_rate": sample_rate,
                "format": fmt,
                "language": language,
                "engine": engine,
                "voice": voice,
            },
        )
