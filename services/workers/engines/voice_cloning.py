"""Voice cloning: the text spoken by espeak-ng, then moved onto a reference speaker's pitch and timbre by WORLD."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common import job_types
from services.common.job_params import JobParams, VoiceCloningParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, params_of
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.ffmpeg import decode_audio, encode_audio, write_wav
from services.workers.engines.toolkit.speech import espeak_voice, output_format, split_text, text_to_speak
from services.workers.engines.toolkit.voice import NoVoice, analyse, convert, normalise_loudness, speaker_profile

MIN_REFERENCE_SECONDS = 1.0
# Pitch and timbre statistics settle within seconds; a longer reference only costs analysis time.
MAX_REFERENCE_SECONDS = 30.0
OUTPUT_STEM = "cloned"


class WorldVoiceCloning:
    """Voice-cloning engine: reference -> speaker profile; text -> espeak-ng speech -> WORLD conversion."""

    job_type = job_types.VOICE_CLONING.name

    def __init__(self, espeak: Espeak | None = None) -> None:
        self._espeak = espeak

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Speak `params.text` in the voice of the reference recording `inputs[0]`."""
        cloning = params_of(params, VoiceCloningParams)
        fmt = output_format(cloning.format)
        text = text_to_speak(cloning.text, job_types.VOICE_CLONING.max_text_chars)
        if len(inputs) != 1:
            raise BadInput(f"voice cloning needs one reference recording, not {len(inputs)} inputs")
        espeak = self._espeak or Espeak.shared()
        language, voice = espeak_voice(espeak, cloning.language)
        rate = espeak.sample_rate

        ctx.progress(0, "analysing the reference recording")
        # Decoding at the TTS rate puts both voices' envelopes on the same frequency grid.
        # Only the part that is analysed is decoded: a long reference costs neither memory nor time.
        reference = decode_audio(inputs[0], rate, max_seconds=MAX_REFERENCE_SECONDS)
        seconds = reference.size / rate
        if seconds < MIN_REFERENCE_SECONDS:
            raise BadInput(
                f"the reference recording lasts {seconds:.2f} s; at least {MIN_REFERENCE_SECONDS:.0f} s needed"
            )
        try:
            profile = speaker_profile(reference, rate)
        except NoVoice as error:
            raise BadInput(f"the reference recording holds no usable speech: {error}") from error
        ctx.log(f"reference voice: median F0 {profile.median_f0:.1f} Hz, log-F0 spread {profile.log_f0_spread:.3f}")
        ctx.progress(25, "analysed the reference recording")

        ctx.check_cancelled()
        chunks = split_text(text)
        spoken = []
        for chunk in chunks:
            ctx.check_cancelled()
            spoken.append(np.asarray(espeak.synthesize(chunk, voice), dtype=np.float32) / 32768.0)
        ctx.progress(35, f"spoke {len(chunks)} parts with voice {voice}")

        parts = []
        for index, samples in enumerate(spoken, start=1):
            ctx.check_cancelled()
            parts.append(analyse(samples, rate, seed=index))
            ctx.progress(35 + 40 * index // len(spoken), f"analysed part {index} of {len(spoken)}")
        ctx.check_cancelled()
        try:
            conversion = convert(parts, profile)
        except NoVoice as error:
            raise BadInput(f"the text gave no voiced speech to convert: {error}") from error
        speech = normalise_loudness(np.concatenate(conversion.speech))
        ctx.log(f"converted: median F0 {conversion.median_f0:.1f} Hz, formants stretched by {conversion.warp:.3f}")
        ctx.progress(90, "converted to the reference voice")

        ctx.check_cancelled()
        wav_path = write_wav(ctx.output_dir / f"{OUTPUT_STEM}.wav", speech, rate)
        path = wav_path
        if fmt != "wav":
            path = encode_audio(wav_path, ctx.output_dir / f"{OUTPUT_STEM}.{fmt}", fmt)
            wav_path.unlink()
        ctx.progress(100, f"encoded {fmt}")
        return EngineResult(
            outputs=[path],
            meta={
                "reference_median_f0": round(profile.median_f0, 2),
                "reference_log_f0_spread": round(profile.log_f0_spread, 4),
                "output_median_f0": round(conversion.median_f0, 2),
                "formant_warp": round(conversion.warp, 3),
                "duration_seconds": round(speech.size / rate, 3),
                "sample_rate": rate,
                "format": fmt,
                "language": language,
            },
        )
