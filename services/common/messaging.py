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
# API keys: key `key.<id>`, value the key's state (services/common/api_keys.py), written by the auth service
# and watched by every service's auth interceptor. Kept until the key row is deleted (no max age).
API_KEYS_BUCKET = "api_keys"
# Core NATS: services report which keys they accepted (at most once a minute per key); auth records it.
API_KEY_USED_SUBJECT = "auth.keys.used"
# What each worker's engines can do (services/workers/offers.py): key `worker.<id>`, refreshed by the worker,
# forgotten after OFFER_TTL_SECONDS; the jobs service's engine catalog reads it.
ENGINE_OFFERS_BUCKET = "engine_offers"
OFFER_TTL_SECONDS = 120.0
# Core NATS (not JetStream): every jobs replica hears every stored change and feeds its watchers.
CHANGES_PREFIX = "jobs.changes"
# Core NATS: the projects service announces that who may do what on a project changed (a member added, removed
# or given another role, the project deleted); open watch streams decide their access to it again. A lost
# announcement is covered by the streams' periodic re-check (services/jobs/stream_access.py).
ACCESS_CHANGES_PREFIX = "projects.access"
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


def access_changes_subject(project_id: str) -> str:
    """Where the projects service announces that access to a project changed."""
    return f"{ACCESS_CHANGES_PREFIX}.{project_id}"


def revocation_key(family_id: str) -> str:
    """Key of a revoked token family in the revocations bucket."""
    return f"family.{family_id}"


def revocation_subject(family_id: str) -> str:
    """Subject that puts a family's revocation into the bucket (a KV put is a publish to it)."""
    return f"$KV.{REVOCATIONS_BUCKET}.{revocation_key(family_id)}"


def api_key_key(key_id: str) -> str:
    """Key of an API key's state in the keys bucket."""
    return f"key.{key_id}"


def api_key_subject(key_id: str) -> str:
    """Subject that puts an API key's state into the bucket."""
    return f"$KV.{API_KEYS_BUCKET}.{api_key_key(key_id)}"


def engine_offer_key(worker_id: str) -> str:
    """Key of one worker's offers (its id made a valid key token)."""
    return "worker." + "".join(c if c.isalnum() or c in "-_" else "_" for c in worker_id)


def inbox_prefix(user: str) -> str:
    """Where a user's replies arrive: `_INBOX_<user>` (plain `_INBOX` without a user).

    Each component may subscribe to its own inbox prefix only, so no one can listen to the replies that
    JetStream sends another component (fetched messages, KV reads, acknowledgements).
    """
    return f"_INBOX_{user}" if user else "_INBOX"


async def _quiet(_: Exception) -> None:
    """nats-py prints every connection error with its traceback unless given a callback."""


async def connect(url: str, name: str, user: str = "", password: str = "", attempts: int = 60) -> NatsClient:
    """Connect as `user` (anonymous without one); later disconnects reconnect forever.

    The first connection is tried `attempts` times, a second apart, then ConnectionError (the process exits
    and is restarted). A refused login raises ConnectionError at once: wrong credentials do not heal by
    waiting (and nats-py, told to reconnect forever, would retry them forever).
    """
    servers = [u.strip() for u in url.split(",")]
    login = {"user": user or None, "password": password or None}
    last: Exception | None = None
    for _ in range(attempts):
        try:
            # A probe without reconnects: it fails fast on an unreachable server or a refused login.
            # (nats-py still tries each server max_reconnect_attempts + 1 times before giving up.)
            probe = await nats.connect(
                servers=servers,
                name=name,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                connect_timeout=2,
                error_cb=_quiet,
                **login,
            )
            await probe.close()
            return await nats.connect(
                servers=servers,
                name=name,
                inbox_prefix=inbox_prefix(user),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                **login,
            )
        except nats.errors.Error as exc:
            if "authorization" in str(exc).lower():
                raise ConnectionError(f"NATS at {url} refused user {user or '(anonymous)'}: {exc}") from exc
            last = exc
        except (OSError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(1.0)
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


def kv_stream(bucket: str) -> str:
    """The JetStream stream that holds a KV bucket."""
    return f"KV_{bucket}"


# Who creates (and updates) each stream and bucket at its start: the component that writes it. Readers
# wait for it (wait_for_streams), so the workers need no right to create or change any stream.
STREAM_OWNERS = {
    DISPATCH_STREAM: "jobs",
    EVENTS_STREAM: "jobs",
    PROJECTS_STREAM: "projects",
}
BUCKET_OWNERS = {
    CANCEL_BUCKET: "jobs",
    REVOCATIONS_BUCKET: "auth",
    API_KEYS_BUCKET: "auth",
    ENGINE_OFFERS_BUCKET: "jobs",
}
BUCKET_TTL_SECONDS = {
    CANCEL_BUCKET: 7 * 24 * 3600.0,
    REVOCATIONS_BUCKET: float(REVOCATIONS_MAX_AGE_SECONDS),
    API_KEYS_BUCKET: 0.0,  # no age limit: a key lives until it is revoked
    ENGINE_OFFERS_BUCKET: OFFER_TTL_SECONDS,
}


async def ensure_topology(js: JetStreamContext, replicas: int = 1, owner: str | None = None) -> None:
    """Create or update the streams and buckets `owner` writes (every one for None); safe from every replica."""
    for name, subjects in WORK_QUEUES.items():
        if owner is not None and STREAM_OWNERS[name] != owner:
            continue
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
    for bucket, ttl in BUCKET_TTL_SECONDS.items():
        if owner is None or BUCKET_OWNERS[bucket] == owner:
            # Direct gets: a read is answered by the stream itself (any replica), not through the JetStream
            # API's request path; a worker reads the cancel flag of every job before starting it.
            await ensure_bucket(js, KeyValueConfig(bucket=bucket, ttl=ttl, replicas=replicas, direct=True))


async def wait_for_streams(js: JetStreamContext, streams: list[str], timeout: float = 120.0) -> None:
    """Wait until every stream exists (their owners create them at start, in any order under Kubernetes)."""
    deadline = asyncio.get_running_loop().time() + timeout
    for stream in streams:
        while True:
            try:
                await js.stream_info(stream)
                break
            except NotFoundError:
                if asyncio.get_running_loop().time() > deadline:
                    raise ConnectionError(f"stream {stream} still missing after {timeout:.0f} s") from None
                log.info("waiting for a stream its owner creates", stream=stream)
                await asyncio.sleep(1.0)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    """Create the KV bucket, or turn on direct gets in place when `config` asks for them and it has none."""
    try:
        await js.key_value(config.bucket)
    except BucketNotFoundError:
        await js.create_key_value(config)
        return
    # A bucket made by an older release has no direct gets yet: turn them on in place.
    stream = await js.stream_info(kv_stream(config.bucket))
    if config.direct and not stream.config.allow_direct:
        stream.config.allow_direct = True
        await js.update_stream(stream.config)
