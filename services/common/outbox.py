"""Transactional outbox: rows written with the business change, published to JetStream by a relay.

The relay may publish a row twice (a crash between the ack and the delete, two replicas
racing); JetStream's duplicate window drops the second copy by its Nats-Msg-Id, so
consumers see each message once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from datetime import datetime

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JetStreamError
from prometheus_client import Counter, Gauge
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


def enqueue(session: Session, table: Table, message: OutboxMessage) -> None:
    """Add `message` to the outbox inside the caller's transaction."""
    session.execute(
        table.insert().values(
            subject=message.subject, msg_id=message.msg_id, payload=message.payload, created_at=utcnow()
        )
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
        self._measured_at = -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._service = table.schema or table.name
        OUTBOX_PUBLISHED.labels(self._service)  # the series exists (at 0) before the first publish

    def wake(self) -> None:
        """Publish now instead of at the next poll; safe from any thread (called after a commit that enqueued)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

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
                await self._js.publish(row.subject, row.payload, timeout=5, headers={"Nats-Msg-Id": row.msg_id})
                published.append(row.id)
                OUTBOX_PUBLISHED.labels(self._service).inc()
        finally:
            if published:
                await asyncio.to_thread(self._delete, published)
        return len(published)

    async def run(self) -> None:
        """Forever: publish pending rows; on a NATS or database fault wait and try again."""
        self._loop = asyncio.get_running_loop()
        delay = self._poll
        while True:
            # Before the select, not after the publish: a commit that wakes the relay while it publishes
            # must bring it round again now, not at the next poll.
            self._wake.clear()
            try:
                sent = await self.drain_once()
                delay = self._poll
                if sent == self._batch:
                    await self._measure_quietly()
                    continue
            except (NatsError, JetStreamError, TimeoutError, OSError) as exc:
                log.warning("outbox publish failed; will retry", error=str(exc), retry_in=delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("outbox relay error; will retry")
                delay = min(delay * 2, 10.0)
            # After the clear: a wake() while measuring is not lost.
            await self._measure_quietly()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
