"""KV buckets on the stack's NATS: made with direct gets, and a bucket from an older release gains them in place."""

from __future__ import annotations

import asyncio
import uuid

import nats
from nats.js.api import KeyValueConfig

from services.common.messaging import ensure_bucket, kv_stream
from services.devstack.stack import Endpoints


def test_a_bucket_without_direct_gets_gains_them_and_keeps_its_keys(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_upgrade(stack), 60))


async def _upgrade(stack: Endpoints) -> None:
    bucket = f"upgrade_{uuid.uuid4().hex[:12]}"
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    try:
        old = await js.create_key_value(KeyValueConfig(bucket=bucket))
        await old.put("job", b"1")
        assert not (await js.stream_info(kv_stream(bucket))).config.allow_direct

        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))

        assert (await js.stream_info(kv_stream(bucket))).config.allow_direct
        upgraded = await js.key_value(bucket)
        assert (await upgraded.get("job")).value == b"1"
        # Idempotent: a second start changes nothing.
        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))
    finally:
        await js.delete_key_value(bucket)
        await nc.close()


def test_a_new_bucket_answers_direct_gets(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_create(stack), 60))


async def _create(stack: Endpoints) -> None:
    bucket = f"fresh_{uuid.uuid4().hex[:12]}"
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    try:
        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))
        assert (await js.stream_info(kv_stream(bucket))).config.allow_direct
    finally:
        await js.delete_key_value(bucket)
        await nc.close()
