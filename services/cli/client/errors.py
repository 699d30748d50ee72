"""Exit codes scripts can rely on, and the one place that turns failures into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import grpc


class ExitCode(IntEnum):
    """What `aiorch` exits with; the table in docs/cli.md and `aiorch --help` lists the same."""

    OK = 0
    # Any error not listed below; for `jobs watch` (and `submit --watch`): the job FAILED.
    ERROR = 1
    # Bad command line (typer/click's own code).
    USAGE = 2
    # Not logged in, session expired, or the server refused the credentials.
    UNAUTHENTICATED = 3
    # `jobs watch` (and `submit --watch`): the job was CANCELLED.
    CANCELLED = 4
    NOT_FOUND = 5
    PERMISSION_DENIED = 6
    INVALID_ARGUMENT = 7
    # The object is not in a state that allows this (e.g. cancelling a finished job).
    FAILED_PRECONDITION = 8
    ALREADY_EXISTS = 9
    # Rate limited (too many failed logins) or a watch stream that fell behind.
    RESOURCE_EXHAUSTED = 10
    # The server could not be reached or did not answer in time.
    UNAVAILABLE = 11


# By gRPC status code name, so that `aiorch --help` need not import grpc.
_BY_STATUS = {
    "UNAUTHENTICATED": ExitCode.UNAUTHENTICATED,
    "NOT_FOUND": ExitCode.NOT_FOUND,
    "PERMISSION_DENIED": ExitCode.PERMISSION_DENIED,
    "INVALID_ARGUMENT": ExitCode.INVALID_ARGUMENT,
    "OUT_OF_RANGE": ExitCode.INVALID_ARGUMENT,
    "FAILED_PRECONDITION": ExitCode.FAILED_PRECONDITION,
    "ALREADY_EXISTS": ExitCode.ALREADY_EXISTS,
    "ABORTED": ExitCode.ALREADY_EXISTS,
    "RESOURCE_EXHAUSTED": ExitCode.RESOURCE_EXHAUSTED,
    "UNAVAILABLE": ExitCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ExitCode.UNAVAILABLE,
}


class CliError(Exception):
    """A failure to report as `error: <message>` with a fixed exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotLoggedIn(CliError):
    """No stored session for the server, or the server refused to refresh it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNAUTHENTICATED)


def exit_code_for(code: grpc.StatusCode) -> ExitCode:
    """The exit code of a gRPC status code (ERROR for the ones without their own)."""
    return _BY_STATUS.get(code.name, ExitCode.ERROR)


def rpc_message(error: grpc.RpcError) -> str:
    """The server's message of a failed call, or a plain one where the call never reached it."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    if code.name == "UNAVAILABLE":
        return f"server unavailable: {details}" if details else "server unavailable"
    if code.name == "DEADLINE_EXCEEDED":
        return "the server did not answer in time"
    return details or code.name.lower().replace("_", " ")


@contextmanager
def reported() -> Iterator[None]:
    """Print a failed call, a CliError or a local I/O error as `error: ...` on stderr and exit with its code."""
    import grpc  # noqa: PLC0415 - keeps `aiorch --help` fast

    try:
        yield
    except CliError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.code) from None
    except grpc.RpcError as exc:
        typer.echo(f"error: {rpc_message(exc)}", err=True)
        raise typer.Exit(exit_code_for(exc.code())) from None
    except OSError as exc:
        # A local file that cannot be read or written (the config dir, a download target).
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.ERROR) from None
