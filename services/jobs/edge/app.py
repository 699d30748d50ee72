"""The HTTP edge's ASGI app: its routes over the jobs service's domain objects, under one body limit."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from services.common.interceptors import Authenticator
from services.jobs.edge.body_limit import BodyLimit
from services.jobs.edge.job_forms import JobForms
from services.jobs.edge.job_runs import JobRuns
from services.jobs.edge.openai_audio import OpenAiAudio

# A multipart form's boundaries and text fields beside its one file.
FORM_OVERHEAD_BYTES = 1024 * 1024


def edge_app(
    runs: JobRuns, authenticator: Authenticator, max_upload_bytes: int, sync_seconds: float, prefer_max: float
) -> ASGIApp:
    """The edge's app."""
    routes = [
        # The gateway's health check of the edge.
        Route("/healthz", lambda request: PlainTextResponse("ok"), methods=["GET"]),
        *OpenAiAudio(runs, authenticator, sync_seconds).routes(),
        *JobForms(runs, authenticator, prefer_max).routes(),
    ]
    return BodyLimit(Starlette(routes=routes), max_upload_bytes + FORM_OVERHEAD_BYTES)
