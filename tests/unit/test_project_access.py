"""Project access rules, every combination of global role and relation to the project (tests/permission_table.py)."""

from __future__ import annotations

import uuid

import pytest

from services.common.identity import Role
from services.projects.access import Access, MemberRole, access_for
from tests.permission_table import PROJECT_ACCESS, RELATIONS, ROLES, Level

CALLER = uuid.uuid4()
SOMEONE_ELSE = uuid.uuid4()

# The permission table's relations as access_for's inputs: (owns the project, project role).
RELATION_FACTS: dict[str, tuple[bool, MemberRole | None]] = {
    "owner": (True, None),
    "member-editor": (False, MemberRole.EDITOR),
    "member-viewer": (False, MemberRole.VIEWER),
    "stranger": (False, None),
}


@pytest.mark.parametrize(("role", "relation"), PROJECT_ACCESS, ids="-".join)
def test_access_follows_role_and_relation(role: str, relation: str) -> None:
    owns, member_role = RELATION_FACTS[relation]
    owner = CALLER if owns else SOMEONE_ELSE
    assert access_for(Role(role), CALLER, owner, member_role).name == PROJECT_ACCESS[role, relation].name


def test_the_table_covers_every_role_and_relation() -> None:
    assert set(ROLES) == {role.value for role in Role}
    assert set(RELATIONS) == set(RELATION_FACTS)
    assert set(PROJECT_ACCESS) == {(role, relation) for role in ROLES for relation in RELATIONS}


def test_the_tables_levels_are_the_codes_levels() -> None:
    assert [level.name for level in Level] == [access.name for access in Access]


def test_levels_are_ordered_from_invisible_to_owner() -> None:
    assert Access.NONE < Access.READ < Access.WRITE < Access.OWNER


@pytest.mark.parametrize("value", ["editor", "viewer"])
def test_member_roles_parse_by_name(value: str) -> None:
    assert MemberRole.parse(value).value == value


@pytest.mark.parametrize("value", ["admin", "owner", "", "Editor"])
def test_unknown_member_roles_are_refused_with_the_choices(value: str) -> None:
    with pytest.raises(ValueError, match="editor, viewer"):
        MemberRole.parse(value)
