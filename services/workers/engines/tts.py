"""Text to speech with espeak-ng: offline, many languages; 16-bit mono WAV, MP3 or OGG (Opus)."""

from __future__ import annotations

import wave
from pathlib import Path

from services.common import job_types
from services.common.job_params import JobParams, TtsParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, params_of
from services.workers.engines.toolkit.espeak import DEFAULT_PITCH, DEFAULT_RATE, Espeak
from services.workers.engines.toolkit.ffmpeg import encode_audio
from services.workers.engines.toolkit.speech import espeak_voice, output_format, split_text, text_to_speak

MIN_RATE, MAX_RATE = 80, 450
MIN_PITCH, MAX_PITCH = 0, 100
OUTPUT_STEM = "speech"


class EspeakTts:
    """TTS engine on espeak-ng; the text is spoken sentence by sentence so progress and cancel are real."""

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
        language, voice = espeak_voice(espeak, tts.language, tts.voice)

        chunks = split_text(text)
        ctx.log(f"speaking {len(text)} characters in {len(chunks)} parts with voice {voice}")
        # Encoding is one more step after speaking when the format is not WAV.
        steps = len(chunks) + (fmt != "wav")
        wav_path = ctx.output_dir / f"{OUTPUT_STEM}.wav"
        frames = 0
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(espeak.sample_rate)
            for index, chunk in enumerate(chunks, start=1):
                ctx.check_cancelled()
                samples = espeak.synthesize(chunk, voice, rate, pitch)
                out.writeframes(samples.tobytes())
                frames += len(samples)
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
                "duration_seconds": round(frames / espeak.sample_rate, 3),
                "sample_rate": espeak.sample_rate,
                "format": fmt,
                "language": language,
            },
        )
