"""Domain errors as HTTP answers: the status code of each, in the gateway's JSON shape or OpenAI's."""

from __future__ import annotations

import math

import grpc
from starlette.responses import JSONResponse

from services.common import errors
from services.common.status import code_for

# The HTTP status of each gRPC code the domain errors map to (services/common/status.py), as Envoy's transcoder
# answers them for the REST API.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}
# OpenAI's error `type` per status.
OPENAI_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
}


def status_of(error: errors.DomainError) -> int:
    """The HTTP status of a domain error."""
    return HTTP_STATUS.get(code_for(error), 500)


def _headers(error: errors.DomainError) -> dict[str, str]:
    if isinstance(error, errors.ResourceExhausted):
        return {"retry-after": str(max(1, math.ceil(error.retry_after)))}
    return {}


def gateway_error(error: errors.DomainError) -> JSONResponse:
    """The error as the gateway's REST answers give it: {code, message, details}."""
    code = code_for(error).value[0]
    return JSONResponse(
        {"code": code, "message": error.message, "details": []}, status_of(error), headers=_headers(error)
    )


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    """OpenAI's error body: {"error": {message, type, param, code}}."""
    kind = OPENAI_TYPE.get(status, "rate_limit_error" if status == 429 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


def openai_domain_error(error: errors.DomainError) -> JSONResponse:
    """A domain error in OpenAI's shape."""
    answer = openai_error(status_of(error), error.message)
    answer.headers.update(_headers(error))
    return answer
