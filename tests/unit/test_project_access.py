"""Project access rules, every combination of global role and relation to the project."""

from __future__ import annotations

import uuid

import pytest

from services.common.identity import Role
from services.projects.access import Access, MemberRole, access_for

CALLER = uuid.uuid4()
SOMEONE_ELSE = uuid.uuid4()

# (global role, owns the project, project role) -> access
EXPECTED: dict[tuple[Role, bool, MemberRole | None], Access] = {
    (Role.ADMIN, True, None): Access.OWNER,
    (Role.ADMIN, False, MemberRole.EDITOR): Access.OWNER,
    (Role.ADMIN, False, MemberRole.VIEWER): Access.OWNER,
    (Role.ADMIN, False, None): Access.OWNER,
    (Role.EDITOR, True, None): Access.OWNER,
    (Role.EDITOR, False, MemberRole.EDITOR): Access.WRITE,
    (Role.EDITOR, False, MemberRole.VIEWER): Access.READ,
    (Role.EDITOR, False, None): Access.NONE,
    # A viewer never writes: not as an owner (demoted since), not as an editor member.
    (Role.VIEWER, True, None): Access.READ,
    (Role.VIEWER, False, MemberRole.EDITOR): Access.READ,
    (Role.VIEWER, False, MemberRole.VIEWER): Access.READ,
    (Role.VIEWER, False, None): Access.NONE,
    # Service accounts act only through the jobs service, never on projects.
    (Role.SERVICE, True, None): Access.NONE,
    (Role.SERVICE, False, MemberRole.EDITOR): Access.NONE,
    (Role.SERVICE, False, MemberRole.VIEWER): Access.NONE,
    (Role.SERVICE, False, None): Access.NONE,
}


@pytest.mark.parametrize(("case", "expected"), EXPECTED.items(), ids=str)
def test_access_follows_role_and_relation(case: tuple[Role, bool, MemberRole | None], expected: Access) -> None:
    role, owns, member_role = case
    owner = CALLER if owns else SOMEONE_ELSE
    assert access_for(role, CALLER, owner, member_role) is expected


@pytest.mark.parametrize("role", list(Role))
def test_every_role_and_relation_is_covered(role: Role) -> None:
    relations = [(True, None), *((False, m) for m in [*MemberRole, None])]
    assert all((role, owns, member) in EXPECTED for owns, member in relations)


def test_levels_are_ordered_from_invisible_to_owner() -> None:
    assert Access.NONE < Access.READ < Access.WRITE < Access.OWNER


@pytest.mark.parametrize("value", ["editor", "viewer"])
def test_member_roles_parse_by_name(value: str) -> None:
    assert MemberRole.parse(value).value == value


@pytest.mark.parametrize("value", ["admin", "owner", "", "Editor"])
def test_unknown_member_roles_are_refused_with_the_choices(value: str) -> None:
    with pytest.raises(ValueError, match="editor, viewer"):
        MemberRole.parse(value)
