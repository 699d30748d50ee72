"""The chaos suite's own stack, so killing its parts never disturbs the session stack of the other tests.

It starts when the first chaos test runs and stops after the last one (package scope), on free
loopback ports like the session stack; its settings and handle are in chaos_stack.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.chaos_stack import Chaos, running
from tests.support import postgres_state_dir


@pytest.fixture(scope="package")
def chaos() -> Iterator[Chaos]:
    """A stack of its own: Postgres, NATS, the services, two workers and Envoy."""
    with postgres_state_dir("chaos") as state_dir:
        yield from running(state_dir)
