"""Composition root of the projects service: settings in, a runnable ServiceApp out."""

from __future__ import annotations

import asyncio
import functools

from aiorch.projects.v1 import projects_pb2_grpc

from services.common import messaging
from services.common.config import ProjectsSettings
from services.common.db import Database, make_engine
from services.common.outbox import OutboxRelay
from services.common.revocations import RevocationView
from services.common.server import ServiceApp, Servicer
from services.projects.announcer import AccessAnnouncer
from services.projects.catalog import ProjectCatalog
from services.projects.handlers import ProjectServicer
from services.projects.models import OUTBOX

Settings = ProjectsSettings


async def build_app(settings: ProjectsSettings) -> ServiceApp:
    """Wire the projects service's catalog, servicer and outbox relay."""
    db = Database(make_engine(settings.database_url, settings.db_pool_size))
    nc = await messaging.connect(
        settings.nats_url, "projects", settings.nats_user, settings.nats_password.get_secret_value()
    )
    js = nc.jetstream()
    # Each service creates what it writes; it may create nothing else (services/common/nats_permissions.py).
    await messaging.ensure_topology(js, settings.nats_replicas, owner="projects")
    relay = OutboxRelay(db, OUTBOX, js, settings.outbox_poll_seconds)
    revocations = RevocationView()

    async def close() -> None:
        await nc.drain()
        db.dispose()

    return ServiceApp(
        name="projects",
        servicers=[
            Servicer(
                "aiorch.projects.v1.ProjectService",
                ProjectServicer(ProjectCatalog(db, relay.wake, AccessAnnouncer(nc, asyncio.get_running_loop()))),
                projects_pb2_grpc.add_ProjectServiceServicer_to_server,
            ),
        ],
        revocations=revocations,
        background=[functools.partial(revocations.run, js), relay.run],
        on_shutdown=[close],
    )
