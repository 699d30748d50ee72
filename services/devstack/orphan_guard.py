"""Exec a command that dies with its parent: `python orphan_guard.py PARENT_PID [--user NAME] -- CMD...`.

The kernel's parent-death signal is set here, in a fresh process, instead of in a
`preexec_fn`: running Python code between fork and exec can deadlock when the parent
has threads (gRPC's do), which was seen as a child that never started. The user switch
happens here for the same reason (Popen's `user=` makes CPython fork instead of vfork).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

PR_SET_PDEATHSIG = 1


def _become(user: str) -> None:
    """Switch to `user`: supplementary groups and group before the user id, which ends root's rights."""
    entry = pwd.getpwnam(user)
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def main() -> None:
    """Switch user if asked, set the parent-death signal, check the parent is still there, become the command."""
    parent, *rest = sys.argv[1:]
    user = None
    if rest[:1] == ["--user"] and len(rest) > 1:
        user, rest = rest[1], rest[2:]
    separator, *command = rest or [""]
    if separator != "--" or not command:
        sys.exit("usage: orphan_guard.py PARENT_PID [--user NAME] -- COMMAND [ARG...]")
    if user is not None:
        _become(user)
    # After the user switch: the kernel clears the parent-death signal when the effective uid changes.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died before the signal was armed; then nobody would stop us.
    if os.getppid() != int(parent):
        sys.exit(1)
    os.execvp(command[0], command)  # noqa: S606 - becoming the given command is the point


if __name__ == "__main__":
    main()
