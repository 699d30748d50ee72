"""The engine interface: parameters, input files and a context in; output files and meta out.

Engines are plain synchronous code, run in a child process of the worker (services/workers/engine_process.py),
so they must be picklable. They report through the context and call `ctx.check_cancelled()` between steps;
the runtime around them does everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from services.common.job_params import JobParams


class EngineError(Exception):
    """Base of the errors an engine raises on purpose."""


class BadInput(EngineError):
    """The job cannot succeed as given (bad parameters or input); it fails at once, without retry."""


class TransientError(EngineError):
    """A fault that another attempt may not meet (a service away, a disk full); the job is retried."""


class Cancelled(EngineError):
    """The engine stopped at a checkpoint because it was asked to (cancel, time limit or shutdown)."""


class EngineContext(Protocol):
    """What an engine may do besides computing: report, and learn that it should stop."""

    @property
    def output_dir(self) -> Path:
        """An empty directory for the output files."""
        ...

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress, 0-100."""
        ...

    def log(self, line: str, level: str = "info") -> None:
        """Add a line to the job's log ("info", "warning" or "error")."""
        ...

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if the job should stop; call it between steps."""
        ...


@dataclass(frozen=True)
class EngineResult:
    """What an engine produced: files in the output directory (the first is the main result) and meta."""

    outputs: list[Path]
    meta: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """One kind of work."""

    job_type: str

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Do the work; raise BadInput, TransientError or Cancelled to end it otherwise."""
        ...


P = TypeVar("P", bound=JobParams)


def params_of(params: JobParams, kind: type[P]) -> P:
    """`params` as the engine's own parameter type; BadInput when another type's were given."""
    if not isinstance(params, kind):
        raise BadInput(f"{type(params).__name__} given to an engine that takes {kind.__name__}")
    return params
