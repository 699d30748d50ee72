"""Exec a command that dies with its parent: `python orphan_guard.py PARENT_PID -- CMD...`.

The kernel's parent-death signal is set here, in a fresh process, instead of in a
`preexec_fn`: running Python code between fork and exec can deadlock when the parent
has threads (gRPC's do), which was seen as a child that never started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    """Set the parent-death signal, make sure the parent is still there, then become the command."""
    parent, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        sys.exit("usage: orphan_guard.py PARENT_PID -- COMMAND [ARG...]")
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died before the signal was armed; then nobody would stop us.
    if os.getppid() != int(parent):
        sys.exit(1)
    os.execvp(command[0], command)  # noqa: S606 - becoming the given command is the point


if __name__ == "__main__":
    main()
