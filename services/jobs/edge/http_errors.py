"""Domain errors as HTTP answers: the status code of each, in the gateway's JSON shape or OpenAI's."""

from __future__ import annotations

import math

from starlette.responses import JSONResponse

from services.common import errors

HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidArgument: 400,
    errors.FailedPrecondition: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.ResourceExhausted: 429,
    errors.Unavailable: 503,
}
# gRPC's numbers, as the gateway's own JSON errors carry them (`code`).
GRPC_CODE: dict[type[errors.DomainError], int] = {
    errors.InvalidArgument: 3,
    errors.FailedPrecondition: 9,
    errors.Unauthenticated: 16,
    errors.PermissionDenied: 7,
    errors.NotFound: 5,
    errors.AlreadyExists: 6,
    errors.ResourceExhausted: 8,
    errors.Unavailable: 14,
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
    return next((code for kind, code in HTTP_STATUS.items() if isinstance(error, kind)), 500)


def _headers(error: errors.DomainError) -> dict[str, str]:
    if isinstance(error, errors.ResourceExhausted):
        return {"retry-after": str(max(1, math.ceil(error.retry_after)))}
    return {}


def gateway_error(error: errors.DomainError) -> JSONResponse:
    """The error as the gateway's REST answers give it: {code, message, details}."""
    code = next((c for kind, c in GRPC_CODE.items() if isinstance(error, kind)), 13)
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
