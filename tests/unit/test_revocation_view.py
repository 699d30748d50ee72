"""The revocation view's own rules, without NATS: what it remembers, for how long, and failing closed."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.revocations import RevocationView, revocation_message


def test_a_revoked_family_is_refused_and_others_are_not() -> None:
    view = RevocationView()
    view.revoke("family-a", time.time())
    assert view.is_revoked("family-a")
    assert not view.is_revoked("family-b")


def test_revocations_older_than_the_bucket_age_are_forgotten() -> None:
    view = RevocationView(max_age_seconds=60)
    view.revoke("old", time.time() - 120)
    view.revoke("new", time.time())
    view.on_quiet()
    assert not view.is_revoked("old")
    assert view.is_revoked("new")


def test_waiting_for_a_view_that_never_loads_times_out() -> None:
    # A service awaits this before serving: without the revocations it does not start.
    with pytest.raises(TimeoutError):
        asyncio.run(RevocationView().wait_loaded(0.05))


def test_the_outbox_message_puts_the_family_key_into_the_bucket() -> None:
    message = revocation_message("f-1", 1700000000.5)
    assert message.subject == "$KV.token_revocations.family.f-1"
    assert message.msg_id == "revoke:f-1"
    assert float(message.payload) == 1700000000.5
