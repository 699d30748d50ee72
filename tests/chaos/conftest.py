"""The chaos suite's own stack, so killing its parts never disturbs the session stack of the other tests.

It starts when the first chaos test runs and stops after the last one (package scope), on free
loopback ports like the session stack; its settings and handle are in chaos_stack.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.chaos_stack import Chaos, running


@pytest.fixture(scope="package")
def chaos() -> Iterator[Chaos]:
    """A stack of its own: Postgres, NATS, the services, two workers and Envoy."""
    # Not under pytest's temporary root: every pytest session that starts makes that root private to its
    # owner again, and PostgreSQL (run as its own system user) could not reach its data after a restart.
    with tempfile.TemporaryDirectory(prefix="aiorch-chaos-", ignore_cleanup_errors=True) as state_dir:
        yield from running(Path(state_dir))
