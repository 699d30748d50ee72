"""Transactional outbox: rows written with the business change, published to JetStream by a relay.

A row may also be handed off: published by the request that committed it, right after the commit,
instead of waiting for the relay to select it (the fast path of job dispatch). The relay then only
deletes it; if the hand-off fails or the process dies first, the relay publishes the row itself.

A row may be published twice (a crash between the ack and the delete, two replicas racing, a
hand-off racing a relay's select); JetStream's duplicate window drops the second copy by its
Nats-Msg-Id, so consumers see each message once.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JetStreamError
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Session

from services.common.db import Database, utcnow
from services.common.logging import get_logger
from services.common.loops import Backoff, run_forever

log = get_logger(__name__)

# `service` is the outbox's schema (`jobs`, `projects`). Every replica's relay reads the same table, so
# aggregate the gauges with max by (service), and sum the counter.
OUTBOX_BACKLOG = Gauge(
    "aiorch_outbox_backlog", "Outbox rows waiting to be published, after the latest pass.", ["service"]
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "aiorch_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 when empty).", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "aiorch_outbox_published_total", "Outbox rows published to JetStream by this relay.", ["service"]
)
OUTBOX_HANDED_OFF = Counter(
    "aiorch_outbox_handed_off_total",
    "Outbox rows published right after their commit by the request that wrote them, by outcome "
    "(published, or failed: left to the relay).",
    ["service", "outcome"],
)
# The dispatch-latency SLO of deploy/observability reads it (service="jobs"): the time a committed message
# waits before JetStream has it, measured from the row's insert by the relay, and from the commit on a hand-off.
OUTBOX_PUBLISH_DELAY = Histogram(
    "aiorch_outbox_publish_delay_seconds",
    "From an outbox row's commit (hand-off) or insert (relay) to JetStream's acknowledgement of its message.",
    ["service"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


# How long handed-off rows wait to be deleted together. Other replicas' relays would publish such a row
# again only at their next poll (a second), and JetStream would drop the copy.
HAND_OFF_DELETE_DELAY_SECONDS = 0.05


def outbox_table(metadata: MetaData, schema: str) -> Table:
    """The `outbox` table of a service's schema."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("msg_id", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
        schema=schema,
    )


@dataclass(frozen=True)
class OutboxMessage:
    """A message to publish once its transaction commits."""

    subject: str
    msg_id: str
    payload: bytes


def enqueue(session: Session, table: Table, message: OutboxMessage) -> int:
    """Add `message` to the outbox inside the caller's transaction; returns the row's id (for a hand-off)."""
    return int(
        session.execute(
            table.insert()
            .values(subject=message.subject, msg_id=message.msg_id, payload=message.payload, created_at=utcnow())
            .returning(table.c.id)
        ).scalar_one()
    )


@dataclass(frozen=True)
class _Row:
    id: int
    subject: str
    msg_id: str
    payload: bytes
    created_at: datetime


class OutboxRelay:
    """Publishes outbox rows in order and deletes each after JetStream acknowledged it."""

    def __init__(
        self, db: Database, table: Table, js: JetStreamContext, poll_seconds: float = 1.0, batch: int = 100
    ) -> None:
        self._db = db
        self._table = table
        self._js = js
        self._poll = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._drain_requested = True
        self._measured_at = -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._service = table.schema or table.name
        # Handed-off rows being published, and those published but not yet deleted: the relay's own
        # select skips both, so this replica does not publish them a second time.
        self._handing_off: set[int] = set()
        self._handed_off: list[int] = []
        self._hand_off_tasks: set[asyncio.Task[None]] = set()
        self._delete_timer: asyncio.TimerHandle | None = None
        # The series exist (at 0) before the first publish.
        OUTBOX_PUBLISHED.labels(self._service)
        OUTBOX_PUBLISH_DELAY.labels(self._service)

    def wake(self) -> None:
        """Publish now instead of at the next poll; safe from any thread (called after a commit that enqueued)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_drain)

    def _request_drain(self) -> None:
        self._drain_requested = True
        self._wake.set()

    def hand_off(self, row_id: int, message: OutboxMessage) -> None:
        """Publish a committed row now, beside the request, instead of after the relay's next select.

        Call it on the event loop after the transaction that enqueued the row committed. The request
        does not wait for the publish: a fault leaves the row to the relay, as if it was never handed off.
        """
        self._handing_off.add(row_id)
        task = asyncio.get_running_loop().create_task(self._publish_handed_off(row_id, message, time.monotonic()))
        self._hand_off_tasks.add(task)
        task.add_done_callback(self._hand_off_tasks.discard)

    async def hand_off_and_wait(self, row_id: int, message: OutboxMessage) -> None:
        """Like `hand_off`, but return once JetStream has the message (or the publish failed, leaving it to the
        relay): for a request whose answer must not arrive before what it announced."""
        self._handing_off.add(row_id)
        await self._publish_handed_off(row_id, message, time.monotonic())

    async def _publish_handed_off(self, row_id: int, message: OutboxMessage, committed_at: float) -> None:
        try:
            await self._js.publish(message.subject, message.payload, timeout=5, headers={"Nats-Msg-Id": message.msg_id})
        except (NatsError, JetStreamError, TimeoutError, OSError) as exc:
            OUTBOX_HANDED_OFF.labels(self._service, "failed").inc()
            log.warning("handed-off outbox row not published; the relay will", row_id=row_id, error=str(exc))
            self._request_drain()
            return
        finally:
            self._handing_off.discard(row_id)
        OUTBOX_HANDED_OFF.labels(self._service, "published").inc()
        OUTBOX_PUBLISHED.labels(self._service).inc()
        OUTBOX_PUBLISH_DELAY.labels(self._service).observe(time.monotonic() - committed_at)
        self._handed_off.append(row_id)
        if self._delete_timer is None:
            # One delete for the rows handed off within the next moment, not one per row.
            loop = asyncio.get_running_loop()
            self._delete_timer = loop.call_later(HAND_OFF_DELETE_DELAY_SECONDS, self._wake_to_delete)

    def _wake_to_delete(self) -> None:
        self._delete_timer = None
        self._wake.set()

    async def _forget_handed_off(self) -> None:
        """Delete the rows that were published on hand-off (kept for the next pass if the delete fails)."""
        if not self._handed_off:
            return
        row_ids, self._handed_off = self._handed_off, []
        try:
            await asyncio.to_thread(self._delete, row_ids)
        except BaseException:
            self._handed_off = row_ids + self._handed_off
            raise

    def _pending(self) -> list[_Row]:
        with self._db.transaction() as session:
            rows = session.execute(select(self._table).order_by(self._table.c.id).limit(self._batch))
            return [_Row(r.id, r.subject, r.msg_id, r.payload, r.created_at) for r in rows]

    def _delete(self, row_ids: list[int]) -> None:
        with self._db.transaction() as session:
            session.execute(delete(self._table).where(self._table.c.id.in_(row_ids)))

    def _backlog(self) -> tuple[int, datetime | None]:
        with self._db.transaction() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(self._table.c.created_at)).select_from(self._table)
            ).one()
            return int(count), oldest

    async def measure(self) -> int:
        """Set the backlog gauges from the table; returns the rows pending."""
        count, oldest = await asyncio.to_thread(self._backlog)
        OUTBOX_BACKLOG.labels(self._service).set(count)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        OUTBOX_OLDEST_SECONDS.labels(self._service).set(max(0.0, age))
        return count

    async def _measure_quietly(self) -> None:
        # At most once per poll interval: under load the relay wakes on every commit, and a count per
        # wake would cost the database as much as the publishing itself.
        now = time.monotonic()
        if now - self._measured_at < self._poll:
            return
        self._measured_at = now
        try:
            await self.measure()
        except Exception as exc:  # the gauges keep their last value; the relay's own loop reports faults
            log.debug("outbox backlog not measured", error=str(exc))

    async def drain_once(self) -> int:
        """Publish what is pending now; returns how many rows went out. Stops at the first failure.

        Published rows are deleted together, once per batch (also when a publish fails midway): a relay
        that dies before the delete publishes them again, and JetStream drops the repeats by Nats-Msg-Id.
        """
        published: list[int] = []
        try:
            for row in await asyncio.to_thread(self._pending):
                # Looked up per row, not before the select: a row handed off while the select ran is
                # already on its way (or out), and a second publish would only reach core subscribers twice.
                if row.id in self._handing_off or row.id in self._handed_off:
                    continue
                await self._js.publish(row.subject, row.payload, timeout=5, headers={"Nats-Msg-Id": row.msg_id})
                published.append(row.id)
                OUTBOX_PUBLISHED.labels(self._service).inc()
                delay = (utcnow() - row.created_at).total_seconds()
                OUTBOX_PUBLISH_DELAY.labels(self._service).observe(max(0.0, delay))
        finally:
            if published:
                await asyncio.to_thread(self._delete, published)
        return len(published)

    async def _step(self) -> float:
        """Delete handed-off rows and publish pending ones; returns how long to wait for a wake-up."""
        # Before the select, not after the publish: a commit that wakes the relay while it publishes
        # must bring it round again now, not at the next poll.
        self._wake.clear()
        drain, self._drain_requested = self._drain_requested, False
        await self._forget_handed_off()
        if drain and await self.drain_once() == self._batch:
            self._drain_requested = True  # a full batch: more rows are waiting
            await self._measure_quietly()
            return 0.0
        # After the clear: a wake() while measuring is not lost.
        await self._measure_quietly()
        return self._poll

    async def _wait_for_wake(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            self._drain_requested = True  # the poll: rows other replicas or a crash left behind

    def _after_fault(self, _: BaseException) -> None:
        self._drain_requested = True

    async def run(self) -> None:
        """Forever: delete handed-off rows, publish pending ones; on a NATS or database fault wait and retry."""
        self._loop = asyncio.get_running_loop()
        await run_forever(
            f"outbox relay {self._service}",
            self._step,
            backoff=Backoff(self._poll, 10.0),
            pause=self._wait_for_wake,
            on_fault=self._after_fault,
        )
