"""Who gets which access to a project, written once for the unit, integration, security and end-to-end suites.

A caller's access follows from their global role and their relation to the project. The unit tests check
services/projects/access.py against this table, the integration tests the projects service's answers, and the
security and end-to-end tests every RPC and REST route that a project governs (docs/api.md, "Who may do what").
It is written here by hand, not imported from the code it checks.
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """Access to a project; ordered, so `>=` compares levels."""

    NONE = 1  # the project stays invisible: calls on it answer NOT_FOUND
    READ = 2  # see the project, its members and its jobs
    WRITE = 3  # also change the project and create, change and delete its jobs
    OWNER = 4  # also delete the project and manage its members


# Global roles; the last is a machine account, which the API's own tests do not log in as.
ROLES = ("admin", "editor", "viewer", "service")
HUMAN_ROLES = ROLES[:3]
# How a caller stands to a project: created it, an editor or a viewer member of someone else's, or neither.
RELATIONS = ("owner", "member-editor", "member-viewer", "stranger")

PROJECT_ACCESS: dict[tuple[str, str], Level] = {
    ("admin", "owner"): Level.OWNER,
    ("admin", "member-editor"): Level.OWNER,
    ("admin", "member-viewer"): Level.OWNER,
    ("admin", "stranger"): Level.OWNER,
    ("editor", "owner"): Level.OWNER,
    ("editor", "member-editor"): Level.WRITE,
    ("editor", "member-viewer"): Level.READ,
    ("editor", "stranger"): Level.NONE,
    # A viewer never writes: not as an owner (an editor who created the project and was demoted since), not as
    # an editor member. A stranger never learns that a project exists.
    ("viewer", "owner"): Level.READ,
    ("viewer", "member-editor"): Level.READ,
    ("viewer", "member-viewer"): Level.READ,
    ("viewer", "stranger"): Level.NONE,
    # Service accounts act only through the jobs service, never on projects.
    ("service", "owner"): Level.NONE,
    ("service", "member-editor"): Level.NONE,
    ("service", "member-viewer"): Level.NONE,
    ("service", "stranger"): Level.NONE,
}


def outcome(access: Level, needed: Level) -> str:
    """What a call needing `needed` answers a caller with `access`: `ok`, `403` (seen, not allowed) or `404`."""
    if access >= needed:
        return "ok"
    return "404" if access is Level.NONE else "403"
