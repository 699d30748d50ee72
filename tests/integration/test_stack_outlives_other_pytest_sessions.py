"""The session stack's PostgreSQL keeps its data dir when another pytest session starts beside it.

Every pytest session makes /tmp/pytest-of-<user> private to its owner. A stack whose data dir lay below it
(run as root, PostgreSQL runs as its own system user) lost it at its next checkpoint, "PANIC: could not open
file .../global/pg_control: Permission denied", and every later test failed on "the database is unavailable".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from services.devstack.stack import Endpoints


def test_a_checkpoint_after_another_pytest_session_started_succeeds(stack: Endpoints, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "test_other.py").write_text("def test_uses_its_temporary_root(tmp_path):\n    assert tmp_path.is_dir()\n")
    session = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(other), str(other)],
        cwd=other,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert session.returncode == 0, session.stdout + session.stderr

    engine = create_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # The checkpointer opens pg_control and the data files: what the old layout lost.
            connection.execute(text("CHECKPOINT"))
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
