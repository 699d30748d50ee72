"""Composition root of the projects service: settings in, a runnable ServiceApp out."""

from __future__ import annotations

import asyncio

from aiorch.projects.v1 import projects_pb2_grpc

from services.common.bootstrap import ServiceCore
from services.common.config import ProjectsSettings
from services.common.server import ServiceApp, Servicer
from services.projects.announcer import AccessAnnouncer
from services.projects.catalog import ProjectCatalog
from services.projects.handlers import ProjectServicer
from services.projects.models import OUTBOX

Settings = ProjectsSettings


async def build_app(settings: ProjectsSettings) -> ServiceApp:
    """Wire the projects service's catalog, servicer and outbox relay."""
    core = await ServiceCore.start("projects", settings, OUTBOX)
    announcer = AccessAnnouncer(core.nc, asyncio.get_running_loop())
    catalog = ProjectCatalog(core.db, core.relay.wake, announcer)
    return core.app(
        [
            Servicer(
                "aiorch.projects.v1.ProjectService",
                ProjectServicer(catalog),
                projects_pb2_grpc.add_ProjectServiceServicer_to_server,
            ),
        ]
    )
