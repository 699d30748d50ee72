"""DurableConsumer on the stack's real JetStream: in order, malformed messages terminated, a failed handler
retried with the rest of its batch, nothing acknowledged before it was handled."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StreamConfig

from services.common.loops import Durable, DurableConsumer
from services.devstack.stack import Endpoints


@contextlib.asynccontextmanager
async def _scratch_stream(stack: Endpoints) -> AsyncIterator[tuple[JetStreamContext, Durable]]:
    """A work-queue stream of our own (as the admin user), deleted afterwards."""
    name = f"SCRATCH_{uuid.uuid4().hex[:10].upper()}"
    subject = f"scratch.{name.lower()}.*"
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[subject], retention=RetentionPolicy.WORK_QUEUE))
    try:
        yield js, Durable(name, f"{name.lower()}-reader", subject, ack_wait=5, batch=8)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
        await nc.close()


def _decode(data: bytes) -> int:
    return int(data.decode())  # ValueError for anything but a number: the consumer terminates it


def test_messages_are_handled_in_order_and_a_failure_brings_the_batch_back(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_in_order(stack), 60))


async def _in_order(stack: Endpoints) -> None:
    async with _scratch_stream(stack) as (js, durable):
        for body in (b"1", b"2", b"not a number", b"3", b"4"):
            await js.publish(durable.subject.replace("*", "x"), body)
        handled: list[int] = []
        failed_once = False

        async def handle(item: int) -> None:
            nonlocal failed_once
            if item == 3 and not failed_once:
                failed_once = True
                raise RuntimeError("the database is down")  # 3 and 4 come back together, in order
            handled.append(item)

        consumer = DurableConsumer(js, durable, _decode, handle)
        task = asyncio.create_task(consumer.run())
        try:
            while handled != [1, 2, 3, 4]:
                assert len(handled) <= 4, handled
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Every message was acknowledged or terminated: the work queue is empty.
        assert (await js.stream_info(durable.stream)).state.messages == 0
        assert failed_once
