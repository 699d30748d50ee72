"""POST /api/jobs/ where transcoding cannot serve it: a multipart form with the input file (as the replaced
system's clients send it), and `Prefer: wait[=seconds]`, which answers once the job is final (as Replicate
does). The answer is the job as the REST API gives it, with its result when it completed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiorch.jobs.v1 import jobs_pb2
from google.protobuf import json_format
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.errors import DomainError, InvalidArgument
from services.common.identity import Caller
from services.common.interceptors import Authenticator
from services.jobs.edge.body_limit import BodyTooLarge
from services.jobs.edge.http_errors import gateway_error
from services.jobs.edge.job_runs import JobRuns
from services.jobs.handlers import new_job
from services.jobs.wire import job_message, result_message

_WAIT = re.compile(r"(?:^|[,;\s])wait(?:\s*=\s*(\d+))?(?:$|[,;\s])", re.IGNORECASE)
# The seed's form names the project `project`.
_ALIASES = {"project": "project_id"}
# Fields of CreateJobRequest that a form carries as JSON text rather than as a plain value.
_JSON_FIELDS = ("params",)
_PARAMS_EXAMPLE = '{"tts": {"text": "Hello"}}'


def preferred_wait(prefer: str | None, longest: float) -> float | None:
    """The seconds a `Prefer` header asks to wait (RFC 7240's `wait`), capped; None when it asks for none."""
    match = _WAIT.search(prefer or "")
    if match is None:
        return None
    return min(float(match.group(1)), longest) if match.group(1) else longest


def _as_json(message: Any) -> dict[str, Any]:
    # The transcoder's print options (gateway/envoy.yaml.tmpl): proto field names, every field, enum names.
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class JobForms:
    """The edge's POST /api/jobs/."""

    def __init__(self, runs: JobRuns, authenticator: Authenticator, longest_wait: float) -> None:
        self._runs = runs
        self._auth = authenticator
        self._longest = longest_wait

    def routes(self) -> list[Route]:
        """The Starlette routes (the gateway sends only forms and `Prefer: wait` calls here)."""
        return [Route("/api/jobs", self.create, methods=["POST"]), Route("/api/jobs/", self.create, methods=["POST"])]

    async def create(self, request: Request) -> Response:
        """Create a job from a form or JSON, and wait for it when asked."""
        try:
            caller = await self._auth.from_header(request.headers.get("authorization"))
            wait = preferred_wait(request.headers.get("prefer"), self._longest)
            fields = await self._fields(request, caller)
            try:
                message = json_format.ParseDict(fields, jobs_pb2.CreateJobRequest())
            except json_format.ParseError as exc:
                raise InvalidArgument(f"the job is not valid: {exc}") from None
            job = await self._runs.create(caller, new_job(message))
            body = _as_json(job_message(job))
            headers: dict[str, str] = {}
            if wait is not None:
                finished = await self._runs.wait(caller, job.id, wait)
                body = _as_json(job_message(finished.job))
                if finished.result is not None:
                    body["result"] = _as_json(result_message(finished.result))
                headers["preference-applied"] = f"wait={wait:g}"
            return JSONResponse(body, headers=headers)
        except DomainError as error:
            return gateway_error(error)
        except BodyTooLarge as error:
            return JSONResponse({"code": 3, "message": str(error), "details": []}, 413)

    async def _fields(self, request: Request, caller: Caller) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            try:
                document = await request.json()
            except ValueError:
                raise InvalidArgument("the body must be JSON or a multipart form") from None
            if not isinstance(document, dict):
                raise InvalidArgument("the body must be a JSON object")
            return document
        fields: dict[str, Any] = {}
        async with request.form(max_files=1, max_fields=50) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if name != "input_file":
                        raise InvalidArgument(f"the only file part is input_file, not {name!r}")
                    stored = await self._runs.upload(caller, value, "input")
                    fields["input_file_id"] = str(stored.id)
                    continue
                key = _ALIASES.get(name, name)
                if key in _JSON_FIELDS:
                    try:
                        fields[key] = json.loads(value)
                    except ValueError:
                        raise InvalidArgument(f"{name} must be JSON, e.g. {_PARAMS_EXAMPLE}") from None
                else:
                    fields[key] = value
        return fields
