"""Who may do what on a project: pure rules, no database and no network."""

from __future__ import annotations

import uuid
from enum import IntEnum, StrEnum

from services.common.identity import Caller, Role


class Access(IntEnum):
    """What a caller may do on a project; ordered, so `>=` compares levels."""

    NONE = 1  # the project stays invisible: it answers NOT_FOUND
    READ = 2  # see the project, its members and its jobs
    WRITE = 3  # also change the project's fields and create, change and delete its jobs
    OWNER = 4  # also delete the project and manage its members


class MemberRole(StrEnum):
    """The role a project grants a member; the member's global role caps it."""

    EDITOR = "editor"  # writes, unless their global role is viewer
    VIEWER = "viewer"  # reads

    @classmethod
    def parse(cls, value: str) -> MemberRole:
        """The member role named `value`, or a clear error."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ValueError(f"member role must be one of {names}, not {value!r}") from None


def access_for(caller_role: Role, caller_id: uuid.UUID, owner_id: uuid.UUID, member_role: MemberRole | None) -> Access:
    """The caller's access to a project owned by `owner_id`, where they hold `member_role` (or none).

    Admins own every project. Owners own theirs and editor members write, but a viewer never
    writes: someone demoted to viewer keeps reading what they own or are a member of.
    """
    if caller_role is Role.SERVICE:
        # Machine accounts act through the jobs service, which grants them what they need there.
        return Access.NONE
    if caller_role is Role.ADMIN:
        return Access.OWNER
    if caller_id == owner_id:
        return Access.READ if caller_role is Role.VIEWER else Access.OWNER
    if member_role is MemberRole.EDITOR:
        return Access.READ if caller_role is Role.VIEWER else Access.WRITE
    if member_role is MemberRole.VIEWER:
        return Access.READ
    return Access.NONE


def caller_access(caller: Caller, project_id: uuid.UUID, owner_id: uuid.UUID, member_role: MemberRole | None) -> Access:
    """`access_for` the caller, and NONE for every project outside the caller's API key scope."""
    if not caller.in_scope(project_id):
        return Access.NONE
    return access_for(caller.role, caller.user_id, owner_id, member_role)
