"""The one place that turns domain errors into gRPC statuses with clear messages."""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common import errors

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def code_for(error: errors.DomainError) -> grpc.StatusCode:
    """The gRPC code that stands for `error`."""
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]
    return grpc.StatusCode.UNKNOWN


def status_for(error: errors.DomainError) -> grpc.Status:
    """A rich status: code, message and, for throttling, a RetryInfo detail.

    Envoy's transcoder renders the details into the JSON error body, so REST clients
    see `retry_delay` as well as gRPC clients.
    """
    code = code_for(error)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if isinstance(error, errors.ResourceExhausted):
        seconds = max(1, math.ceil(error.retry_after))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
        status.details.append(detail)
    elif code.value[0] == code_pb2.UNKNOWN:
        status.message = "unexpected error"
    base = rpc_status.to_status(status)
    trailers = tuple(base.trailing_metadata)
    if isinstance(error, errors.ResourceExhausted):
        trailers += (("retry-after", str(max(1, math.ceil(error.retry_after)))),)
    return RichStatus(code=base.code, details=base.details, trailing_metadata=trailers)


@dataclass(frozen=True)
class RichStatus(grpc.Status):
    """A status with its google.rpc.Status details and extra trailers."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]
