"""The test suite's own layout: test modules share code only through support modules.

A conftest.py is a pytest plugin, loaded by pytest in its own way; importing it as a module runs it twice and
hides its fixtures' dependencies. Importing a test module collects its tests again wherever it is imported and
ties one suite to another's internals. Shared constants and helpers live in tests/support.py or in a named
support module beside the tests that use it (tests/chaos/chaos_stack.py, tests/security/token_forgeries.py, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _is_forbidden(module: str) -> bool:
    """Whether a dotted module name is a conftest or a test module (`test_*`)."""
    last = module.rpartition(".")[2]
    return last == "conftest" or last.startswith("test_")


def _package(path: Path, root: Path) -> list[str]:
    """The dotted package a file under `root` belongs to, as parts (`tests/unit/x.py` -> tests, unit)."""
    return [root.name, *path.relative_to(root).parent.parts]


def forbidden_imports(source: str, path: Path, root: Path) -> list[str]:
    """Every import in `source` (a file at `path` under the tests folder `root`) of a conftest or test module."""
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if any(_is_forbidden(part) for part in alias.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x, from ..unit.test_y import z
                base = _package(path, root)[: len(_package(path, root)) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from tests.unit import test_stt` names the test module in the imported names.
            candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            found += [name for name in candidates if any(_is_forbidden(part) for part in name.split("."))][:1]
    return found


def _python_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("path", _python_files(), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_module_imports_a_conftest_or_a_test_module(path: Path) -> None:
    assert forbidden_imports(path.read_text(), path, TESTS) == []


@pytest.mark.parametrize(
    "statement",
    [
        "from tests.conftest import ADMIN_PASSWORD",
        "from tests.chaos.conftest import Chaos",
        "import tests.conftest",
        "from tests.security.test_tokens import ATTACKS",
        "from tests.unit import test_engine_stt",
        "import tests.unit.test_alert_rules as rules",
        "from .test_engine_stt import speech_wav",
        "from . import conftest",
        "def f():\n    from tests.conftest import TEST_SERVICE_ENV",
    ],
)
def test_the_check_finds_imports_of_conftests_and_test_modules(statement: str) -> None:
    path = TESTS / "unit" / "test_example.py"
    assert forbidden_imports(statement, path, TESTS) != []


@pytest.mark.parametrize(
    "statement",
    [
        "from tests.support import Accounts",
        "from tests.chaos.chaos_stack import Chaos",
        "import pytest",
        "from . import support",
        "from tests.unit import testing_helpers",
    ],
)
def test_the_check_lets_support_modules_through(statement: str) -> None:
    path = TESTS / "unit" / "test_example.py"
    assert forbidden_imports(statement, path, TESTS) == []
