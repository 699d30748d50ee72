"""Child processes that never outlive the stack: started in order, stopped in reverse."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def _guarded(argv: Sequence[str], user: str | None = None) -> list[str]:
    """`argv` behind a parent-death signal, run as `user` when given.

    The parent-death signal means that if the stack is killed (even with SIGKILL), the kernel ends the
    child too. util-linux's setpriv arms it, and switches user, when present; otherwise a tiny Python
    launcher does both. Either way it happens after exec, in the new program: Popen itself gets no
    `user=`, `group=`, `extra_groups=` or `preexec_fn=`, any of which makes CPython fork() instead of
    vfork(). A fork of a process with live gRPC threads can crash before exec ("Other threads are
    currently calling into gRPC, skipping fork() handlers", then a segmentation fault on a loaded
    machine), and Python code between fork and exec can deadlock.
    """
    setpriv = shutil.which("setpriv")
    if setpriv:
        switch: list[str] = []
        if user is not None:
            entry = pwd.getpwnam(user)
            switch = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
        return [setpriv, "--pdeathsig", "KILL", *switch, "--", *argv]
    launcher = [sys.executable, str(Path(__file__).with_name("orphan_guard.py")), str(os.getpid())]
    if user is not None:
        launcher += ["--user", user]
    return [*launcher, "--", *argv]


def run_once(argv: Sequence[str], user: str | None = None, stdin_text: str | None = None) -> None:
    """Run a command to its end (as `user` when given), on the same vfork-safe path as `Supervisor.start`.

    Raises RuntimeError with the end of the command's output when it fails.
    """
    ran = subprocess.run(
        _guarded(argv, user),
        input=(stdin_text or "").encode(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
        timeout=120,
    )
    if ran.returncode != 0:
        output = ran.stdout.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{Path(argv[0]).name} exited with {ran.returncode}: {output}")


@dataclass
class Child:
    """One supervised process."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    log: IO[bytes] | None
    argv: list[str]
    env: dict[str, str] | None
    user: str | None
    cwd: Path | None


class Supervisor:
    """Starts processes, watches them, and stops them all (reverse order, SIGKILL after a grace)."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self._children: list[Child] = []
        self._log_dir = log_dir

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` (as `user` when given); output goes to <log_dir>/<name>.log, or to this terminal."""
        log = None
        if self._log_dir is not None:
            # Logs can hold what users sent: owner-only, like everything in the state dir.
            self._log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            log = os.fdopen(os.open(self._log_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        process = subprocess.Popen(
            _guarded(argv, user),
            env=dict(env) if env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            # Own process group: Ctrl-C reaches the stack once, which then stops children in order.
            start_new_session=True,
        )
        self._children.append(
            Child(name, process, stop_signal, log, list(argv), dict(env) if env is not None else None, user, cwd)
        )
        return process

    def _child(self, name: str) -> Child:
        for child in self._children:
            if child.name == name:
                return child
        raise KeyError(name)

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The running process of a child."""
        return self._child(name).process

    def stop(self, name: str, sig: signal.Signals | None = None, grace: float = 10.0) -> int:
        """Stop one child (with its stop signal, or `sig`, e.g. SIGKILL) and wait for it; returns its exit code."""
        child = self._child(name)
        if child.process.poll() is None:
            child.process.send_signal(sig or child.stop_signal)
            try:
                child.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        return child.process.returncode

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start a stopped child again with the same command, environment and user."""
        child = self._child(name)
        if child.process.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self._children.remove(child)
        if child.log:
            child.log.close()
        return self.start(child.name, child.argv, child.env, child.user, child.stop_signal, child.cwd)

    def exited(self) -> list[tuple[str, int]]:
        """Children that ended on their own, with their exit codes."""
        return [(c.name, c.process.returncode) for c in self._children if c.process.poll() is not None]

    def names(self) -> list[str]:
        """Names of every child, in start order."""
        return [c.name for c in self._children]

    def running(self) -> list[str]:
        """Names of the children running now (not those stopped or exited), in start order."""
        return [c.name for c in self._children if c.process.poll() is None]

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop every child, newest first; kill what is still running after `grace` seconds."""
        for child in reversed(self._children):
            if child.process.poll() is None:
                child.process.send_signal(child.stop_signal)
                try:
                    child.process.wait(grace)
                except subprocess.TimeoutExpired:
                    os.killpg(child.process.pid, signal.SIGKILL)
                    child.process.wait()
            if child.log:
                child.log.close()
        self._children.clear()


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f} s")
