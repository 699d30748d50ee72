"""Quotable figures the security and chaos suites measure, printed at the end of the pytest run.

Each suite has its section of the terminal summary ("security figures", "chaos figures"); a line names
its theme (a test module or a test) and what was measured.
"""

from __future__ import annotations

import pytest

_LINES: dict[str, list[str]] = {}


class Figures:
    """The figures of one theme, in the section of one suite."""

    def __init__(self, section: str, theme: str) -> None:
        self._section = section
        self._theme = theme

    def add(self, text: str) -> None:
        """Record one line of prose."""
        _LINES.setdefault(self._section, []).append(f"{self._theme}: {text}")

    def record(self, **values: object) -> None:
        """Record measurements as one line of `key=value` pairs, in the order given."""
        self.add(", ".join(f"{key}={value}" for key, value in values.items()))


def print_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Write every section recorded in this run."""
    for section, lines in _LINES.items():
        terminalreporter.section(f"{section} figures")
        for line in lines:
            terminalreporter.write_line(line)
