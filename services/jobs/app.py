"""Composition root of the jobs service."""

from __future__ import annotations

import functools

from aiorch.jobs.v1 import engines_pb2_grpc, files_pb2_grpc, jobs_pb2_grpc, results_pb2_grpc

from services.common.blobs import open_blob_store
from services.common.bootstrap import ServiceCore
from services.common.config import JobsSettings
from services.common.server import REVOCATIONS_LOAD_TIMEOUT_SECONDS, ServiceApp, Servicer, make_authenticator
from services.jobs.access import JobAccess
from services.jobs.book import JobBook
from services.jobs.cleanup import ProjectCleanup
from services.jobs.edge.app import edge_app
from services.jobs.edge.http_server import HttpEdge
from services.jobs.edge.job_runs import JobRuns
from services.jobs.engine_offers import EngineOffers
from services.jobs.files import FileBook
from services.jobs.handlers import EngineServicer, FileServicer, JobResultServicer, JobServicer
from services.jobs.intake import EventIntake
from services.jobs.models import OUTBOX
from services.jobs.projects_client import ProjectsClient
from services.jobs.queue_metrics import QueueMetrics
from services.jobs.reaper import JobReaper, events_applied_until
from services.jobs.results import ResultBook
from services.jobs.watch import ChangeBroadcaster, WatchHub
from services.jobs.watching import JobWatch
from services.jobs.wire import decode_change, encode_change

Settings = JobsSettings


async def build_app(settings: JobsSettings) -> ServiceApp:
    """Wire the jobs service: database, NATS, blob store, projects client, background loops."""
    core = await ServiceCore.start("jobs", settings, OUTBOX)
    db, nc, js, relay, revocations = core.db, core.nc, core.js, core.relay, core.revocations
    blobs = open_blob_store(settings)
    projects = ProjectsClient(settings.projects_address)
    broadcast = ChangeBroadcaster(nc, encode_change)
    hub = WatchHub(settings.watch_queue_size, decode_change)
    # A revoked session's (or API key's) open streams end at once, not at their next call.
    revocations.on_revoke(hub.revoke_family)
    core.api_keys.on_revoke(hub.revoke_family)
    access = JobAccess(projects)
    book = JobBook(db, access, blobs, relay.wake, broadcast, relay.hand_off)
    watch = JobWatch(book, hub, access, settings.watch_access_recheck_seconds)
    intake = EventIntake(db, js, broadcast)
    cleanup = ProjectCleanup(db, js, book, broadcast, relay.wake)
    queues = QueueMetrics(js)
    reaper = JobReaper(
        db,
        broadcast,
        relay.wake,
        functools.partial(events_applied_until, js),
        settings.reaper_interval_seconds,
        settings.reaper_grace_seconds,
    )

    async def listen() -> None:
        await hub.listen(nc)

    async def serve_edge() -> None:
        # Fail closed, as the gRPC server does: no request before every revoked session and live key is known.
        await revocations.wait_loaded(REVOCATIONS_LOAD_TIMEOUT_SECONDS)
        await core.api_keys.wait_loaded(REVOCATIONS_LOAD_TIMEOUT_SECONDS)
        await edge.serve()

    offers = EngineOffers()
    files = FileBook(db, blobs, settings.max_upload_bytes)
    results = ResultBook(db, access, blobs, broadcast, relay.wake)
    edge = HttpEdge(
        edge_app(
            JobRuns(book, files, results, watch, projects),
            make_authenticator(settings, revocations, core.api_keys),
            settings.max_upload_bytes,
            settings.sync_call_seconds,
            settings.prefer_wait_max_seconds,
        ),
        settings.grpc_host,
        settings.http_port,
        settings.shutdown_grace_seconds,
    )

    return core.app(
        [
            Servicer(
                "aiorch.jobs.v1.JobService",
                JobServicer(book, watch, settings.watch_write_timeout_seconds),
                jobs_pb2_grpc.add_JobServiceServicer_to_server,
            ),
            Servicer(
                "aiorch.jobs.v1.FileService",
                FileServicer(files),
                files_pb2_grpc.add_FileServiceServicer_to_server,
            ),
            Servicer(
                "aiorch.jobs.v1.JobResultService",
                JobResultServicer(results),
                results_pb2_grpc.add_JobResultServiceServicer_to_server,
            ),
            Servicer(
                "aiorch.jobs.v1.EngineService",
                EngineServicer(offers),
                engines_pb2_grpc.add_EngineServiceServicer_to_server,
            ),
        ],
        background=[
            intake.run,
            cleanup.run,
            listen,
            queues.run,
            reaper.run,
            serve_edge,
            functools.partial(offers.run, js),
        ],
        on_shutdown=[projects.close],
        on_drain=[hub.shutdown, edge.stop],
    )
