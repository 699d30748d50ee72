"""What every service builds first, written once: its database, its NATS user, its outbox relay and revocations.

A service's composition root (`services/<name>/app.py`) starts a `ServiceCore`, wires its own domain on
it, and asks it for the `ServiceApp`: the core adds the loops and the closing every service needs (the
revocation and API key watches, the outbox relay, closing NATS and the database), so no app.py repeats them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy import Table

from services.common import messaging
from services.common.api_keys import ApiKeyView
from services.common.config import ServiceSettings
from services.common.db import Database, make_engine
from services.common.loops import run_forever
from services.common.migrations import wait_for_schema
from services.common.outbox import OutboxRelay
from services.common.revocations import RevocationView
from services.common.server import ServiceApp, Servicer


@dataclass(frozen=True)
class ServiceCore:
    """One service's shared infrastructure."""

    name: str
    db: Database
    nc: NatsClient
    js: JetStreamContext
    relay: OutboxRelay
    revocations: RevocationView
    api_keys: ApiKeyView

    @classmethod
    async def start(cls, name: str, settings: ServiceSettings, outbox: Table) -> ServiceCore:
        """Connect to the database and to NATS as the service's own user, and make what the service writes."""
        db = Database(make_engine(settings.database_url, settings.db_pool_size))
        # Before anything serves: a release must not run on a schema older than its migrations.
        await wait_for_schema(name, db.engine, settings.schema_wait_seconds)
        nc = await messaging.connect(
            settings.nats_url, name, settings.nats_user, settings.nats_password.get_secret_value()
        )
        js = nc.jetstream()
        # Each service creates what it writes; it may create nothing else (services/common/nats_permissions.py).
        await messaging.ensure_topology(js, settings.nats_replicas, owner=name)
        relay = OutboxRelay(db, outbox, js, settings.outbox_poll_seconds)
        return cls(name, db, nc, js, relay, RevocationView(), ApiKeyView())

    def app(
        self,
        servicers: Sequence[Servicer],
        *,
        public_methods: frozenset[str] = frozenset(),
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
        on_drain: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> ServiceApp:
        """The runnable service: its servicers and loops plus the core's own."""
        return ServiceApp(
            name=self.name,
            servicers=servicers,
            revocations=self.revocations,
            api_keys=self.api_keys,
            public_methods=public_methods,
            background=[
                functools.partial(self.revocations.run, self.js),
                functools.partial(self.api_keys.run, self.js),
                functools.partial(
                    run_forever, "api key use reports", functools.partial(self.api_keys.report_uses, self.nc)
                ),
                self.relay.run,
                *background,
            ],
            on_shutdown=[*on_shutdown, self.close],
            on_drain=list(on_drain),
        )

    async def close(self) -> None:
        """Close NATS and the database's pool."""
        # close, not drain: drain raises while the connection is reconnecting (NATS down at shutdown), and
        # nats-py 2.16 hangs draining after a pull fetch timed out.
        await self.nc.close()
        self.db.dispose()
