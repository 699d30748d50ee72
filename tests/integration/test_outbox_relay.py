"""The outbox relay on the stack's PostgreSQL and NATS: a commit while it publishes is not left to the next poll,
a row handed off after its commit is published once and deleted without waiting for a poll, also when
the relay's select read it before the hand-off."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from sqlalchemy import MetaData, Table, func, select, text

from services.common.db import Database, make_engine
from services.common.outbox import OutboxMessage, OutboxRelay, enqueue, outbox_table
from services.devstack.stack import Endpoints

# Far longer than the test waits: only a wake-up can bring the relay round in time.
POLL_SECONDS = 60.0
ARRIVAL_TIMEOUT_SECONDS = 10.0
TEST_TIMEOUT_SECONDS = 60.0


class RelayWithCommitDuringSelect(OutboxRelay):
    """The first select that finds rows is followed by `late`'s commit and wake-up, before that batch goes out."""

    def __init__(self, db: Database, table: Table, js: JetStreamContext, late: OutboxMessage) -> None:
        super().__init__(db, table, js, poll_seconds=POLL_SECONDS)
        self._late_db, self._late_table, self._late = db, table, late
        self.armed = True

    def _pending(self) -> list[Any]:
        rows = super()._pending()
        if self.armed and rows:
            self.armed = False
            with self._late_db.transaction() as session:
                enqueue(session, self._late_table, self._late)
            self.wake()
        return rows


class RelayWithHandOffDuringSelect(OutboxRelay):
    """The first select that finds rows is followed by the hand-off of the first of them, before that batch goes out:
    the request that committed the row hands it off while the relay's select, which already read it, is running."""

    def __init__(self, db: Database, table: Table, js: JetStreamContext, message: OutboxMessage) -> None:
        super().__init__(db, table, js, poll_seconds=POLL_SECONDS)
        self._message = message
        self.armed = True

    def _pending(self) -> list[Any]:
        rows = super()._pending()
        if self.armed and rows:
            self.armed = False
            assert self._loop is not None
            # _pending runs in a worker thread; the hand-off belongs on the loop, as a request makes it.
            self._loop.call_soon_threadsafe(self.hand_off, rows[0].id, self._message)
            # The hand-off is scheduled before the select's rows reach drain_once, whose loop-side code
            # runs only after this thread returns: it sees the row as handed off.
        return rows


@dataclass
class RelayScene:
    """A fresh outbox table, a stream for its subject, and a core subscription that hears what is published."""

    db: Database
    table: Table
    js: JetStreamContext
    subject: str
    arrivals: Subscription

    def rows(self) -> int:
        with self.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(self.table)) or 0)


@contextlib.asynccontextmanager
async def _scene(stack: Endpoints) -> AsyncIterator[RelayScene]:
    tag = uuid.uuid4().hex[:12]
    schema, subject, stream = f"relay_{tag}", f"relaytest.{tag}", f"RELAYTEST_{tag}"
    engine = make_engine(stack.database_url, 2)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    table = outbox_table(MetaData(), schema)
    table.metadata.create_all(engine)
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
        arrivals = await nc.subscribe(subject)
        await nc.flush()
        yield RelayScene(Database(engine), table, js, subject, arrivals)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextlib.asynccontextmanager
async def _running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0)  # run() has started and can be woken
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_a_commit_while_the_relay_publishes_is_published_at_once(stack: Endpoints) -> None:
    # Bounded as a whole: a stall anywhere fails here, naming where it waited, instead of holding up the run.
    asyncio.run(asyncio.wait_for(_commit_during_publish(stack), TEST_TIMEOUT_SECONDS))


async def _commit_during_publish(stack: Endpoints) -> None:
    async with _scene(stack) as scene:
        late = OutboxMessage(scene.subject, "late", b"late")
        relay = RelayWithCommitDuringSelect(scene.db, scene.table, scene.js, late)
        async with _running(relay):
            with scene.db.transaction() as session:
                enqueue(session, scene.table, OutboxMessage(scene.subject, "first", b"first"))
            relay.wake()
            received = [(await scene.arrivals.next_msg(timeout=ARRIVAL_TIMEOUT_SECONDS)).data for _ in range(2)]
            assert received == [b"first", b"late"]


def test_a_handed_off_row_is_published_once_and_deleted_without_a_poll(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_hand_off(stack), TEST_TIMEOUT_SECONDS))


async def _hand_off(stack: Endpoints) -> None:
    async with _scene(stack) as scene:
        relay = OutboxRelay(scene.db, scene.table, scene.js, poll_seconds=POLL_SECONDS)
        async with _running(relay):
            message = OutboxMessage(scene.subject, "handed", b"handed")
            with scene.db.transaction() as session:
                row_id = enqueue(session, scene.table, message)
            relay.hand_off(row_id, message)
            assert (await scene.arrivals.next_msg(timeout=ARRIVAL_TIMEOUT_SECONDS)).data == b"handed"
            async with asyncio.timeout(ARRIVAL_TIMEOUT_SECONDS):
                while scene.rows():
                    await asyncio.sleep(0.05)
            # A drain after the delete finds nothing to publish again.
            relay.wake()
            with pytest.raises(nats.errors.TimeoutError):
                await scene.arrivals.next_msg(timeout=1)


def test_a_row_handed_off_while_the_select_ran_is_published_once(stack: Endpoints) -> None:
    asyncio.run(asyncio.wait_for(_hand_off_during_select(stack), TEST_TIMEOUT_SECONDS))


async def _hand_off_during_select(stack: Endpoints) -> None:
    async with _scene(stack) as scene:
        message = OutboxMessage(scene.subject, "raced", b"raced")
        relay = RelayWithHandOffDuringSelect(scene.db, scene.table, scene.js, message)
        async with _running(relay):
            with scene.db.transaction() as session:
                enqueue(session, scene.table, message)
            relay.wake()
            assert (await scene.arrivals.next_msg(timeout=ARRIVAL_TIMEOUT_SECONDS)).data == b"raced"
            async with asyncio.timeout(ARRIVAL_TIMEOUT_SECONDS):
                while scene.rows():
                    await asyncio.sleep(0.05)
            # JetStream would drop a second copy by its Nats-Msg-Id; a core subscriber would not.
            with pytest.raises(nats.errors.TimeoutError):
                await scene.arrivals.next_msg(timeout=1)
            assert not relay.armed
