"""NATS and JetStream: connection, and the one place that names every stream, subject and bucket."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError

from services.common.logging import get_logger

log = get_logger(__name__)

# Work for the workers: one subject per job type, consumed by one durable per type.
DISPATCH_STREAM = "JOBS_DISPATCH"
# Worker events back to the jobs service (started, progress, log, completed, failed, cancelled).
EVENTS_STREAM = "JOBS_EVENTS"
EVENTS_CONSUMER = "jobs-intake"
# Project lifecycle events, read by the jobs service.
PROJECTS_STREAM = "PROJECTS_EVENTS"
PROJECT_DELETED_SUBJECT = "projects.events.deleted"
PROJECTS_CONSUMER = "jobs-project-events"
# Cancel flags: key = job id, value = the attempt to stop. Workers check it between steps.
CANCEL_BUCKET = "job_cancel"
# Revoked sessions: key `family.<token family id>`, written by the auth service (logout, reuse of a spent
# refresh token, deactivation, role or password change) and watched by every service's auth interceptor.
# Entries outlive every access token (AuthSettings caps the access-token lifetime at this age).
REVOCATIONS_BUCKET = "token_revocations"
REVOCATIONS_MAX_AGE_SECONDS = 24 * 3600
# Core NATS (not JetStream): every jobs replica hears every stored change and feeds its watchers.
CHANGES_PREFIX = "jobs.changes"
DUPLICATE_WINDOW_SECONDS = 600.0


def dispatch_subject(job_type: str) -> str:
    """`jobs.dispatch.<type>` with the type in lower case, e.g. jobs.dispatch.voice_cloning."""
    return f"jobs.dispatch.{job_type.lower()}"


def worker_consumer(job_type: str) -> str:
    """Durable name of the pull consumer of one job type."""
    return f"workers-{job_type.lower().replace('_', '-')}"


def events_subject(job_id: str) -> str:
    """Where workers publish a job's events."""
    return f"jobs.events.{job_id}"


def changes_subject(job_id: str) -> str:
    """Where the jobs service broadcasts a job's stored state."""
    return f"{CHANGES_PREFIX}.{job_id}"


def revocation_key(family_id: str) -> str:
    """Key of a revoked token family in the revocations bucket."""
    return f"family.{family_id}"


def revocation_subject(family_id: str) -> str:
    """Subject that puts a family's revocation into the bucket (a KV put is a publish to it)."""
    return f"$KV.{REVOCATIONS_BUCKET}.{revocation_key(family_id)}"


async def connect(url: str, name: str, attempts: int = 60) -> NatsClient:
    """Connect, retrying the first connection; later disconnects reconnect forever."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await nats.connect(
                servers=[u.strip() for u in url.split(",")],
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
            )
        except (OSError, nats.errors.NoServersError, TimeoutError) as exc:
            last = exc
            await asyncio.sleep(0.5)
    raise ConnectionError(f"cannot reach NATS at {url}: {last}")


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Another replica created it between our look and our add.
            await js.stream_info(config.name or "")
        return
    await js.update_stream(config)


# Every stream is a work queue (a message is gone once consumed and acknowledged) with the same duplicate
# window, so a message published twice under one Nats-Msg-Id reaches its consumer once.
WORK_QUEUES = {
    DISPATCH_STREAM: "jobs.dispatch.*",
    EVENTS_STREAM: "jobs.events.*",
    PROJECTS_STREAM: "projects.events.*",
}


async def ensure_topology(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update every stream and bucket; safe to run from every process at start."""
    for name, subjects in WORK_QUEUES.items():
        await _ensure_stream(
            js,
            StreamConfig(
                name=name,
                subjects=[subjects],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
                num_replicas=replicas,
            ),
        )
    await _ensure_bucket(js, KeyValueConfig(bucket=CANCEL_BUCKET, ttl=7 * 24 * 3600.0, replicas=replicas))
    await _ensure_bucket(
        js, KeyValueConfig(bucket=REVOCATIONS_BUCKET, ttl=float(REVOCATIONS_MAX_AGE_SECONDS), replicas=replicas)
    )


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.key_value(config.bucket)
    except BucketNotFoundError:
        await js.create_key_value(config)
