"""The OpenAI-compatible audio API under /v1/: transcriptions, translations, speech, models and voices.

Each call is a real job in the caller's project (the API key's, the `OpenAI-Project` header's, or the caller's
`default` project), run to its end while the request waits, so the official `openai` client works unchanged
with only `base_url` and `api_key` set. Errors have OpenAI's body shape and status codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.common import engine_catalog, job_types
from services.common.errors import DomainError, InvalidArgument, NotFound
from services.common.identity import Caller
from services.common.interceptors import Authenticator
from services.common.job_params import SttParams, TtsParams
from services.jobs.book import NewJob
from services.jobs.edge.body_limit import BodyTooLarge
from services.jobs.edge.http_errors import openai_domain_error, openai_error
from services.jobs.edge.job_runs import JobRuns, final_or_error

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# OpenAI's speed range; what the engines can do (MIN_RATE-MAX_RATE words per minute) is checked below.
MIN_SPEED, MAX_SPEED = 0.25, 4.0
CREATED = int(time.time())

Handler = Callable[[Request, Caller], Awaitable[Response]]


class OpenAiAudio:
    """The /v1/ routes over one JobRuns."""

    def __init__(self, runs: JobRuns, authenticator: Authenticator, wait_seconds: float) -> None:
        self._runs = runs
        self._auth = authenticator
        self._wait = wait_seconds

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/v1/audio/transcriptions", self._guarded(self.transcriptions), methods=["POST"]),
            Route("/v1/audio/translations", self._guarded(self.translations), methods=["POST"]),
            Route("/v1/audio/speech", self._guarded(self.speech), methods=["POST"]),
            Route("/v1/audio/voices", self._guarded(self.voices), methods=["GET"]),
            Route("/v1/models", self._guarded(self.models), methods=["GET"]),
            Route("/v1/models/{model_id:path}", self._guarded(self.model), methods=["GET"]),
        ]

    def _guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                caller = await self._auth.from_header(request.headers.get("authorization"))
                return await handler(request, caller)
            except DomainError as error:
                return openai_domain_error(error)
            except BodyTooLarge as error:
                return openai_error(413, str(error))

        return endpoint

    async def transcriptions(self, request: Request, caller: Caller) -> Response:
        """POST /v1/audio/transcriptions."""
        return await self._transcribe(request, caller, "transcribe")

    async def translations(self, request: Request, caller: Caller) -> Response:
        """POST /v1/audio/translations: the speech's text in English."""
        return await self._transcribe(request, caller, "translate")

    async def _transcribe(self, request: Request, caller: Caller, task: str) -> Response:
        async with request.form(max_files=1, max_fields=20) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidArgument("file is required: the audio or video to transcribe, as a multipart file")
            model = _stt_model(_text(form.get("model")) or "whisper-1")
            response_format = _text(form.get("response_format")) or "json"
            if response_format not in TRANSCRIPT_FORMATS:
                raise InvalidArgument(f"response_format must be one of {', '.join(TRANSCRIPT_FORMATS)}")
            granularities = {_text(v) for v in form.getlist("timestamp_granularities[]")} or {"segment"}
            if not granularities <= {"word", "segment"}:
                raise InvalidArgument("timestamp_granularities[] takes word and segment")
            params = SttParams(
                language="" if task == "translate" else _text(form.get("language")),
                formats=("srt", "vtt", "txt"),
                model=model,
                task=task,
                prompt=_text(form.get("prompt")),
                temperature=_temperature(_text(form.get("temperature"))),
            )
            project = await self._runs.project_for(caller, request.headers.get("openai-project", ""))
            stored = await self._runs.upload(caller, upload, "audio")
        new = NewJob(
            project_id=project,
            type=job_types.STT.name,
            params=params,
            name=f"OpenAI API {task}",
            input_file_id=str(stored.id),
        )
        result = final_or_error(await self._runs.run(caller, new, self._wait))
        if response_format in ("srt", "vtt"):
            text = (await self._runs.read(caller, result, f"transcript.{response_format}")).decode()
            return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
        transcript = json.loads(await self._runs.read(caller, result, "transcript.json"))
        if response_format == "text":
            return PlainTextResponse(transcript["text"] + "\n")
        if response_format == "json":
            return JSONResponse({"text": transcript["text"]})
        return JSONResponse(_verbose(transcript, task, granularities))

    async def speech(self, request: Request, caller: Caller) -> Response:
        """POST /v1/audio/speech: the audio bytes."""
        try:
            body = await request.json()
        except ValueError:
            raise InvalidArgument("the body must be JSON: {model, input, voice}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("the body must be a JSON object: {model, input, voice}")
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument("input is required: the text to speak")
        model = engine_catalog.API_MODELS.get(str(body.get("model") or "tts-1"))
        if model is None or model.job_type != job_types.TTS.name:
            raise InvalidArgument(f"model must be one of {', '.join(_models_of(job_types.TTS.name))}")
        fmt = str(body.get("response_format") or "mp3")
        if fmt not in SPEECH_FORMATS:
            raise InvalidArgument(f"response_format must be one of {', '.join(SPEECH_FORMATS)}")
        params = TtsParams(
            text=text,
            language=str(body.get("language") or "en"),
            voice=_voice(model, str(body.get("voice") or "")),
            rate=_rate(body.get("speed", 1.0)),
            format=fmt,
        )
        project = await self._runs.project_for(caller, request.headers.get("openai-project", ""))
        new = NewJob(project_id=project, type=job_types.TTS.name, params=params, name="OpenAI API speech")
        result = final_or_error(await self._runs.run(caller, new, self._wait))
        audio = await self._runs.read(caller, result)
        return Response(audio, media_type=engine_catalog.AUDIO_FORMATS[fmt])

    async def models(self, request: Request, caller: Caller) -> Response:
        """GET /v1/models."""
        return JSONResponse({"object": "list", "data": [_model(m) for m in engine_catalog.API_MODELS.values()]})

    async def model(self, request: Request, caller: Caller) -> Response:
        """GET /v1/models/{id}."""
        found = engine_catalog.API_MODELS.get(request.path_params["model_id"])
        if found is None:
            raise NotFound(f"model {request.path_params['model_id']!r} not found")
        return JSONResponse(_model(found))

    async def voices(self, request: Request, caller: Caller) -> Response:
        """GET /v1/audio/voices: the neural voices with their languages (espeak-ng takes any of its own)."""
        voices = [
            {"id": v.name, "name": v.name, "engine": v.engine, "languages": list(v.languages), "sex": v.sex}
            for v in engine_catalog.VOICES.values()
        ]
        return JSONResponse({"object": "list", "data": voices, "defaults": engine_catalog.DEFAULT_VOICES})


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _models_of(job_type: str) -> list[str]:
    return [m.id for m in engine_catalog.API_MODELS.values() if m.job_type == job_type]


def _stt_model(name: str) -> str:
    model = engine_catalog.API_MODELS.get(name)
    if model is None or model.job_type != job_types.STT.name:
        raise InvalidArgument(f"model must be one of {', '.join(_models_of(job_types.STT.name))}")
    return model.engine


def _temperature(text: str) -> float:
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument("temperature must be a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument("temperature must be from 0 to 1")
    return value


def _voice(model: engine_catalog.ApiModel, voice: str) -> str:
    # OpenAI's own voice names (alloy, nova, ...) get the language's neural voice; a catalog voice or an
    # espeak-ng variant (m3, f2) is taken as named; the espeak-ng model speaks with espeak-ng.
    if model.engine == "espeak":
        return (
            voice if voice and voice not in engine_catalog.VOICES and voice.isalnum() and len(voice) <= 4 else "espeak"
        )
    return voice if voice in engine_catalog.VOICES else ""


def _rate(speed: Any) -> int:
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise InvalidArgument("speed must be a number") from None
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise InvalidArgument(f"speed must be from {MIN_SPEED} to {MAX_SPEED}")
    rate = round(engine_catalog.DEFAULT_RATE * value)
    if not engine_catalog.MIN_RATE <= rate <= engine_catalog.MAX_RATE:
        low = engine_catalog.MIN_RATE / engine_catalog.DEFAULT_RATE
        high = engine_catalog.MAX_RATE / engine_catalog.DEFAULT_RATE
        raise InvalidArgument(f"speed {value:g} is past what the voices do here: {low:.2f} to {high:.2f}")
    return rate


def _model(model: engine_catalog.ApiModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": CREATED,
        "owned_by": "aiorch",
        "description": model.description,
    }


def _verbose(transcript: dict[str, Any], task: str, granularities: set[str]) -> dict[str, Any]:
    segments = transcript.get("segments", [])
    answer: dict[str, Any] = {
        "task": task,
        "language": transcript.get("language", ""),
        "duration": transcript.get("duration_seconds", 0.0),
        "text": transcript.get("text", ""),
    }
    if "segment" in granularities:
        # Whisper's own decoding figures, as the engine recorded them (transcript.json).
        decoding = ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob")
        answer["segments"] = [
            {
                "id": index,
                "start": s["start"],
                "end": s["end"],
                "text": s["text"],
                **{k: s[k] for k in decoding if k in s},
            }
            for index, s in enumerate(segments)
        ]
    if "word" in granularities:
        answer["words"] = [
            {"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
            for s in segments
            for w in s.get("words", [])
        ]
    return answer
