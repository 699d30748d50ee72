"""The stack starts its children, PostgreSQL as another user included, on CPython's vfork path (issue 18).

Popen with `user=`, `group=`, `extra_groups=` or `preexec_fn=` makes CPython fork() instead of vfork(); a fork
of a process with live gRPC threads can crash before exec ("Other threads are currently calling into gRPC,
skipping fork() handlers", then a segmentation fault). The user switch is setpriv's (or the fallback
launcher's) job, after exec.
"""

from __future__ import annotations

import ast
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.devstack.supervisor import Supervisor

ROOT = Path(__file__).parents[2]
GUARD = ROOT / "services" / "devstack" / "orphan_guard.py"
PROCESS_STARTERS = {"Popen", "run", "call", "check_call", "check_output"}
FORKING_KEYWORDS = {"user", "group", "extra_groups", "preexec_fn"}
# Only root switches users (the stack runs PostgreSQL as a system user then; otherwise as itself).
OTHER_USER = "nobody"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root starts children as another user")

START_AS_OTHER_USER = f"""
from services.devstack.supervisor import Supervisor
supervisor = Supervisor()
supervisor.start("child", ["true"], user={OTHER_USER!r})
supervisor.process("child").wait()
"""


def _uid_of(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux's setpriv is not installed")
def test_a_child_started_as_another_user_gets_setpriv_in_its_argv() -> None:
    supervisor = Supervisor()
    try:
        process = supervisor.start("child", ["sh", "-c", "id -u"], user=OTHER_USER)
        process.wait(10)
    finally:
        supervisor.stop_all()
    argv = [str(arg) for arg in process.args]  # type: ignore[union-attr]

    assert Path(argv[0]).name == "setpriv"
    assert f"--reuid={_uid_of(OTHER_USER)}" in argv
    assert "--init-groups" in argv
    assert argv[argv.index("--") + 1 :] == ["sh", "-c", "id -u"]


@needs_root
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_starting_a_child_as_another_user_uses_vfork_not_fork() -> None:
    # Given a process that starts a child as another user, traced for the system calls that create processes
    traced = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", sys.executable, "-c", START_AS_OTHER_USER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "ptrace" in traced.stderr and "Operation not permitted" in traced.stderr:
        pytest.skip("this container forbids ptrace")
    assert traced.returncode == 0, traced.stderr[-2000:]
    # Then the child came from vfork (or clone with CLONE_VFORK), and nothing was forked
    calls = [line for line in traced.stderr.splitlines() if re.search(r"\b(fork|vfork|clone3?)\(", line)]
    forks = [c for c in calls if "CLONE_THREAD" not in c and "vfork(" not in c and "CLONE_VFORK" not in c]
    assert any("vfork(" in c or "CLONE_VFORK" in c for c in calls), calls
    assert forks == []


@needs_root
def test_the_fallback_launcher_switches_user_after_exec() -> None:
    ran = subprocess.run(
        [sys.executable, str(GUARD), str(os.getpid()), "--user", OTHER_USER, "--", "id", "-u"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout) == _uid_of(OTHER_USER)


def _forking_calls(path: Path) -> list[str]:
    """Calls of subprocess's process starters with a keyword that sends CPython down the fork() path."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            keywords = {k.arg for k in node.keywords if k.arg} & FORKING_KEYWORDS
            if name in PROCESS_STARTERS and keywords:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}({', '.join(sorted(keywords))}=...)")
    return found


def test_no_process_of_the_project_is_started_with_a_user_switch_in_popen() -> None:
    # The same pitfall anywhere a process holding gRPC or NATS threads starts children.
    offenders = [
        call
        for folder in ("services", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for call in _forking_calls(path)
    ]

    assert offenders == []
