"""The outbox relay on the stack's PostgreSQL and NATS: a commit while it publishes is not left to the next poll."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from sqlalchemy import MetaData, Table, text

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


def test_a_commit_while_the_relay_publishes_is_published_at_once(stack: Endpoints) -> None:
    # Bounded as a whole: a stall anywhere fails here, naming where it waited, instead of holding up the run.
    asyncio.run(asyncio.wait_for(_commit_during_publish(stack), TEST_TIMEOUT_SECONDS))


async def _commit_during_publish(stack: Endpoints) -> None:
    tag = uuid.uuid4().hex[:12]
    schema, subject, stream = f"relay_{tag}", f"relaytest.{tag}", f"RELAYTEST_{tag}"
    engine = make_engine(stack.database_url, 2)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    table = outbox_table(MetaData(), schema)
    table.metadata.create_all(engine)
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    js = nc.jetstream()
    relay_task: asyncio.Task[None] | None = None
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
        arrivals = await nc.subscribe(subject)
        await nc.flush()
        db = Database(engine)
        relay = RelayWithCommitDuringSelect(db, table, js, OutboxMessage(subject, "late", b"late"))
        relay_task = asyncio.create_task(relay.run())
        with db.transaction() as session:
            enqueue(session, table, OutboxMessage(subject, "first", b"first"))
        relay.wake()
        received = [(await arrivals.next_msg(timeout=ARRIVAL_TIMEOUT_SECONDS)).data for _ in range(2)]
        assert received == [b"first", b"late"]
    finally:
        if relay_task is not None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
