"""API key rules without a server: the format, the view's decisions, the role cap and use reports."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.auth.api_key_store import effective_role
from services.common.api_keys import (
    USE_REPORT_SECONDS,
    ApiKeyView,
    KeyState,
    hash_key,
    key_family,
    key_id_of,
    key_state_message,
    make_key,
)
from services.common.errors import Unauthenticated
from services.common.identity import Role


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def state(secret: str, **changes: object) -> KeyState:
    fields: dict[str, object] = {
        "hash": hash_key(secret),
        "user_id": uuid.uuid4(),
        "role": Role.EDITOR,
        "project_id": None,
        "expires_at": None,
        "usable": True,
    }
    return KeyState(**(fields | changes))  # type: ignore[arg-type]


def test_a_new_key_carries_its_id_and_only_its_hash_is_kept() -> None:
    made = make_key()
    assert key_id_of(made.secret) == made.id
    assert made.hash == hash_key(made.secret) != made.secret
    assert len(made.secret) == len("aio_") + 16 + 1 + 43
    assert make_key().secret != made.secret


@pytest.mark.parametrize("bad", ["aio_", "aio_xyz", "aio_0123456789ABCDEF_x", "aio_0123456789abcdef-x", "Bearer"])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(Unauthenticated):
        key_id_of(bad)


def test_the_view_accepts_a_live_key_and_refuses_a_wrong_secret() -> None:
    made = make_key()
    view = ApiKeyView()
    view.put(made.id, state(made.secret, project_id=uuid.UUID(int=7)))
    caller = asyncio.run(view.caller(made.secret))
    assert (caller.api_key_id, caller.role, caller.family_id) == (made.id, Role.EDITOR, key_family(made.id))
    assert caller.in_scope(uuid.UUID(int=7))
    assert not caller.in_scope(uuid.UUID(int=8))
    wrong = made.secret[:-4] + "AAAA"
    with pytest.raises(Unauthenticated):
        asyncio.run(view.caller(wrong))


def test_a_key_that_stops_working_ends_its_streams_once() -> None:
    made = make_key()
    view = ApiKeyView()
    ended: list[str] = []
    view.on_revoke(ended.append)
    view.put(made.id, state(made.secret))
    view.apply(f"key.{made.id}", state(made.secret, usable=False).to_json())
    view.apply(f"key.{made.id}", None)
    assert ended == [key_family(made.id)]
    with pytest.raises(Unauthenticated, match="revoked"):
        asyncio.run(view.caller(made.secret))


def test_an_expired_key_is_refused() -> None:
    clock = Clock()
    made = make_key()
    view = ApiKeyView(clock=clock)
    view.put(made.id, state(made.secret, expires_at=clock.now + 10))
    asyncio.run(view.caller(made.secret))
    clock.now += 10
    with pytest.raises(Unauthenticated, match="expired"):
        asyncio.run(view.caller(made.secret))


def test_uses_are_reported_at_most_once_a_period_per_key() -> None:
    clock = Clock()
    made = make_key()
    view = ApiKeyView(clock=clock)
    view.put(made.id, state(made.secret))
    asyncio.run(view.caller(made.secret))
    assert view.uses_to_report() == {made.id: clock.now}
    clock.now += 1
    asyncio.run(view.caller(made.secret))
    assert view.uses_to_report() == {}
    clock.now += USE_REPORT_SECONDS
    assert view.uses_to_report() == {made.id: clock.now - USE_REPORT_SECONDS}


def test_an_unreadable_entry_refuses_the_key() -> None:
    made = make_key()
    view = ApiKeyView()
    view.put(made.id, state(made.secret))
    view.apply(f"key.{made.id}", b"not json")
    with pytest.raises(Unauthenticated):
        asyncio.run(view.caller(made.secret))


def test_each_announcement_is_a_distinct_message_into_the_bucket() -> None:
    made = make_key()
    first = key_state_message(made.id, state(made.secret), 1)
    second = key_state_message(made.id, state(made.secret, usable=False), 2)
    assert first.subject == second.subject == f"$KV.api_keys.key.{made.id}"
    assert first.msg_id != second.msg_id
    assert KeyState.from_json(second.payload).usable is False


@pytest.mark.parametrize(
    ("key_role", "user_role", "acts_as"),
    [
        (Role.ADMIN, Role.ADMIN, Role.ADMIN),
        (Role.ADMIN, Role.VIEWER, Role.VIEWER),
        (Role.EDITOR, Role.ADMIN, Role.EDITOR),
        (Role.VIEWER, Role.EDITOR, Role.VIEWER),
        (Role.SERVICE, Role.SERVICE, Role.SERVICE),
        (Role.EDITOR, Role.SERVICE, Role.VIEWER),
    ],
)
def test_a_key_acts_with_the_lower_of_its_role_and_its_users(key_role: Role, user_role: Role, acts_as: Role) -> None:
    assert effective_role(key_role, user_role) is acts_as
