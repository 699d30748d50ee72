"""Speech to text: any audio or video file in, a timed transcript out as json, txt, srt and vtt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from services.common import job_types
from services.common.job_params import JobParams, SttParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, params_of
from services.workers.engines.toolkit.transcript import to_srt, to_text, to_vtt
from services.workers.engines.toolkit.whisper import load_model, model_label, primary_language, transcribe_file

EXTRA_FORMATS = ("txt", "srt", "vtt")
MAIN_OUTPUT = "transcript.json"


def _requested_formats(formats: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for raw in formats or EXTRA_FORMATS:
        fmt = raw.strip().lower()
        if fmt == "json":
            continue  # always written
        if fmt not in EXTRA_FORMATS:
            raise BadInput(f"transcript format {raw!r} is not supported; choose from json, {', '.join(EXTRA_FORMATS)}")
        if fmt not in chosen:
            chosen.append(fmt)
    return chosen


class WhisperStt:
    """STT engine: any audio or video file in, a timed transcript out."""

    job_type = job_types.STT.name

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Transcribe the one input into transcript.json and the requested extra formats."""
        stt = params_of(params, SttParams)
        asked = primary_language(stt.language, default="")
        task = stt.task.strip().lower() or "transcribe"
        formats = _requested_formats(stt.formats)
        if len(inputs) != 1:
            raise BadInput(f"STT takes one audio or video file, got {len(inputs)}")
        if not 0.0 <= stt.temperature <= 1.0:
            raise BadInput(f"temperature must be 0-1, not {stt.temperature:g}")

        model_name = model_label(stt.model.strip())
        model = load_model(asked, stt.model.strip(), task)
        ctx.progress(0, "reading audio")
        ctx.check_cancelled()
        heard = transcribe_file(
            model,
            inputs[0],
            asked,
            ctx,
            lambda done: ctx.progress(5 + int(90 * done), "transcribing"),
            task,
            stt.prompt.strip(),
            stt.temperature,
        )
        segments, duration, language = heard.segments, heard.duration_seconds, heard.language
        detected = "" if asked else f" (detected, p={heard.language_probability})"
        ctx.log(f"transcribed {duration} s of audio in {language or 'no language'}{detected} with {model_name}")
        # What the text is written in: English when translated.
        text_language = "en" if task == "translate" else language

        text = " ".join(s.text for s in segments)
        transcript = {
            "language": language,
            "language_probability": heard.language_probability,
            "text_language": text_language,
            "task": task,
            "model": model_name,
            "duration_seconds": duration,
            "text": text,
            "segments": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "words": [{"start": w.start, "end": w.end, "word": w.word} for w in s.words],
                    **(asdict(s.decoding) if s.decoding else {}),
                }
                for s in segments
            ],
        }
        main = ctx.output_dir / MAIN_OUTPUT
        main.write_text(json.dumps(transcript, ensure_ascii=False, indent=2), encoding="utf-8")
        writers = {"txt": to_text, "srt": to_srt, "vtt": to_vtt}
        outputs = [main]
        for fmt in formats:
            path = ctx.output_dir / f"transcript.{fmt}"
            path.write_text(writers[fmt](segments), encoding="utf-8")
            outputs.append(path)
        ctx.progress(100, f"{len(segments)} segments")
        return EngineResult(
            outputs=outputs,
            meta={
                "language": language,
                "language_probability": heard.language_probability,
                "text_language": text_language,
                "task": task,
                "model": model_name,
                "duration_seconds": duration,
                "text": text,
                "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in segments],
                "format": "json",
            },
        )
