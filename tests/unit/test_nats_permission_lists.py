"""The NATS allow lists are derived from messaging.py and the job-type registry (no server needed)."""

from __future__ import annotations

import pytest

from services.common import job_types, messaging, nats_permissions


def test_every_stream_and_bucket_has_an_owner_that_may_create_it() -> None:
    for stream in messaging.WORK_QUEUES:
        owner = messaging.STREAM_OWNERS[stream]
        assert f"$JS.API.STREAM.CREATE.{stream}" in nats_permissions.permissions(owner).publish
    for bucket in messaging.BUCKET_TTL_SECONDS:
        owner = messaging.BUCKET_OWNERS[bucket]
        assert f"$JS.API.STREAM.CREATE.KV_{bucket}" in nats_permissions.permissions(owner).publish


def test_only_the_operators_hold_wildcards_over_everything() -> None:
    for component in nats_permissions.COMPONENTS:
        allowed = nats_permissions.permissions(component)
        broad = {">", "$JS.API.>", "$JS.>", "_INBOX.>", "$KV.>"} & {*allowed.publish, *allowed.subscribe}
        assert broad == ({">"} if component == "admin" else set()), component


def test_workers_may_consume_every_job_type_the_engines_serve() -> None:
    workers = nats_permissions.permissions("workers").publish
    for job_type in job_types.NAMES:
        durable = messaging.worker_consumer(job_type)
        assert f"$JS.API.CONSUMER.MSG.NEXT.{messaging.DISPATCH_STREAM}.{durable}" in workers
        assert f"$JS.ACK.{messaging.DISPATCH_STREAM}.{durable}.>" in workers
    assert not [s for s in workers if "STREAM.CREATE" in s or "STREAM.UPDATE" in s or "STREAM.DELETE" in s]


def test_each_user_subscribes_to_its_own_inbox_only() -> None:
    for component in ("auth", "projects", "jobs", "workers"):
        inboxes = [s for s in nats_permissions.permissions(component).subscribe if s.startswith("_INBOX")]
        assert inboxes == [f"{messaging.inbox_prefix(component)}.>"]


def test_the_rendered_configuration_quotes_subjects_and_refuses_anonymous_clients() -> None:
    text = nats_permissions.render_for_environment()
    assert '"$JS.API.STREAM.INFO.JOBS_DISPATCH"' in text
    assert "password: $NATS_PASSWORD_WORKERS" in text
    assert "no_auth_user" not in text
    assert text.count("user: ") == len(nats_permissions.COMPONENTS)


def test_an_unknown_component_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown NATS component"):
        nats_permissions.permissions("intruder")
