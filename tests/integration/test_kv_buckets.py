"""KV buckets on the stack's NATS: made with direct gets, and a bucket from an older release gains them in place."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig

from services.common.messaging import ensure_bucket, kv_stream
from services.devstack.stack import Endpoints


@contextlib.asynccontextmanager
async def _scratch_bucket(stack: Endpoints, prefix: str) -> AsyncIterator[tuple[JetStreamContext, str]]:
    """JetStream as the admin user, and a bucket name of our own, deleted afterwards."""
    bucket = f"{prefix}_{uuid.uuid4().hex[:12]}"
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    try:
        yield js, bucket
    finally:
        with contextlib.suppress(Exception):
            await js.delete_key_value(bucket)
        await nc.close()


async def _direct(js: JetStreamContext, bucket: str) -> bool:
    return bool((await js.stream_info(kv_stream(bucket))).config.allow_direct)


def test_a_bucket_without_direct_gets_gains_them_and_keeps_its_keys(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_upgrade(stack), 60))


async def _upgrade(stack: Endpoints) -> None:
    async with _scratch_bucket(stack, "upgrade") as (js, bucket):
        old = await js.create_key_value(KeyValueConfig(bucket=bucket))
        await old.put("job", b"1")
        assert not await _direct(js, bucket)

        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))

        assert await _direct(js, bucket)
        assert (await (await js.key_value(bucket)).get("job")).value == b"1"
        # Idempotent: a second start changes nothing.
        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))
        assert await _direct(js, bucket)


def test_a_new_bucket_answers_direct_gets(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_create(stack), 60))


async def _create(stack: Endpoints) -> None:
    async with _scratch_bucket(stack, "fresh") as (js, bucket):
        await ensure_bucket(js, KeyValueConfig(bucket=bucket, direct=True))
        assert await _direct(js, bucket)
