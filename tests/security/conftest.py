"""Attack tests: each records its figures, printed together at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_FIGURES: list[tuple[str, str]] = []


class Figures:
    """Quotable numbers of one test module (cases run, refused, time to take effect, ...)."""

    def __init__(self, theme: str) -> None:
        self._theme = theme

    def add(self, text: str) -> None:
        """Record one line; printed in the "security figures" section of the terminal summary."""
        _FIGURES.append((self._theme, text))


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A recorder named after the test module (its theme)."""
    yield Figures(request.module.__name__.rpartition(".")[2].removeprefix("test_"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every recorded figure, so a run's numbers can be quoted."""
    if not _FIGURES:
        return
    terminalreporter.section("security figures")
    for theme, text in _FIGURES:
        terminalreporter.write_line(f"{theme}: {text}")
