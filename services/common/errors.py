"""The domain's exceptions. Services raise these; `services.common.status` maps them to gRPC codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller is meant to see; the message is shown to them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed or a value is out of range."""


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""


class AlreadyExists(DomainError):
    """An object with the same unique key exists."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class Unauthenticated(DomainError):
    """No valid credentials: missing, malformed, expired or revoked token, or a failed login."""


class FailedPrecondition(DomainError):
    """The object is not in a state that allows this (e.g. cancelling a finished job)."""


class ResourceExhausted(DomainError):
    """Too many attempts; `retry_after` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency is down for now; the same call may succeed later."""
