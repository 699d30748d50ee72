"""Children of the local stack die with it, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.devstack.supervisor import Supervisor

PARENT = """
import sys, time
from pathlib import Path
from services.devstack.supervisor import Supervisor
supervisor = Supervisor()
child = supervisor.start("sleeper", ["sleep", "60"])
Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


def test_a_child_dies_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pid_file)], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the supervisor did not start its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its killed supervisor"
        time.sleep(0.05)


def test_stop_all_ends_children_newest_first(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    first = supervisor.start("first", ["sleep", "60"])
    second = supervisor.start("second", ["sleep", "60"])
    supervisor.stop_all(grace=5)
    assert first.returncode is not None
    assert second.returncode is not None


GUARD = Path(__file__).parents[2] / "services" / "devstack" / "orphan_guard.py"


def test_the_fallback_launcher_runs_the_command_for_its_parent() -> None:
    ran = subprocess.run([sys.executable, str(GUARD), str(os.getpid()), "--", "sh", "-c", "exit 7"], check=False)
    assert ran.returncode == 7


def test_the_fallback_launcher_refuses_when_its_parent_is_already_gone() -> None:
    ran = subprocess.run([sys.executable, str(GUARD), "1", "--", "true"], check=False)
    assert ran.returncode == 1
