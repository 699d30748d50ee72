"""Attack tests: each records its figures, printed together at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.figures import Figures


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A recorder named after the test module (its theme)."""
    yield Figures("security", request.module.__name__.rpartition(".")[2].removeprefix("test_"))
