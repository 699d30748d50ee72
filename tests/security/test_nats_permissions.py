"""Each component's NATS user may do its own work and nothing else (services/common/nats_permissions.py).

Every check connects to the session stack's real nats-server as one component's user and either does
something that component must be able to do (it succeeds) or something it must not (the server answers
with a permissions violation naming the subject, and nothing reaches the stream). The rest of the suite
runs every component on these users, which proves the allowed side in full.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from services.common import messaging
from services.common.nats_permissions import COMPONENTS
from services.devstack.stack import Endpoints
from tests.figures import Figures

# How long a denied request may wait for its answer, and for the server's violation notice.
DENIED_WAIT_SECONDS = 1.0


@dataclass
class Session:
    """One connection as a component's user, collecting the permission violations the server reports."""

    nc: NatsClient
    violations: list[str] = field(default_factory=list)

    async def violation_about(self, subject: str) -> bool:
        """Whether the server reported a violation naming `subject` (waits briefly: it arrives asynchronously)."""
        deadline = time.monotonic() + DENIED_WAIT_SECONDS
        while time.monotonic() < deadline:
            # nats-py reports the server's notice in lower case.
            if any(f'"{subject.lower()}"' in text.lower() for text in self.violations):
                return True
            await asyncio.sleep(0.02)
        return False


async def open_session(stack: Endpoints, component: str) -> Session:
    session = Session(nc=NatsClient())

    async def on_error(exc: Exception) -> None:
        session.violations.append(str(exc))

    session.nc = await nats.connect(
        stack.nats_url, allow_reconnect=False, connect_timeout=2, error_cb=on_error, **stack.nats_login(component)
    )
    return session


async def publish_denied(session: Session, subject: str) -> bool:
    """A core publish (or a JetStream API request) to `subject` is refused by the server."""
    try:
        await session.nc.request(subject, b"{}", timeout=DENIED_WAIT_SECONDS)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        pass
    else:
        return False  # something answered: the request went through
    return await session.violation_about(subject)


async def subscribe_denied(session: Session, subject: str) -> bool:
    """A subscription to `subject` is refused by the server and receives nothing."""
    received: list[bytes] = []

    async def on_message(message: Msg) -> None:
        received.append(message.data)

    await session.nc.subscribe(subject, cb=on_message)
    await session.nc.flush()
    return await session.violation_about(subject) and not received


# (component, what it tries, subject) for every operation that must be refused.
DENIED_PUBLISH = [
    ("workers", "dispatch a job", messaging.dispatch_subject("TTS")),
    (
        "workers",
        "fetch a job event from the jobs service's consumer",
        f"$JS.API.CONSUMER.MSG.NEXT.{messaging.EVENTS_STREAM}.{messaging.EVENTS_CONSUMER}",
    ),
    ("workers", "create a consumer on the job events", f"$JS.API.CONSUMER.CREATE.{messaging.EVENTS_STREAM}"),
    ("workers", "read a stored job event", f"$JS.API.STREAM.MSG.GET.{messaging.EVENTS_STREAM}"),
    ("workers", "read a stored job event directly", f"$JS.API.DIRECT.GET.{messaging.EVENTS_STREAM}"),
    ("workers", "create a consumer on the project events", f"$JS.API.CONSUMER.CREATE.{messaging.PROJECTS_STREAM}"),
    (
        "workers",
        "fetch a project event",
        f"$JS.API.CONSUMER.MSG.NEXT.{messaging.PROJECTS_STREAM}.{messaging.PROJECTS_CONSUMER}",
    ),
    ("workers", "create a stream", "$JS.API.STREAM.CREATE.STOLEN"),
    ("workers", "change the dispatch stream", f"$JS.API.STREAM.UPDATE.{messaging.DISPATCH_STREAM}"),
    ("workers", "delete the dispatch stream", f"$JS.API.STREAM.DELETE.{messaging.DISPATCH_STREAM}"),
    ("workers", "purge the events stream", f"$JS.API.STREAM.PURGE.{messaging.EVENTS_STREAM}"),
    (
        "workers",
        "delete another type's consumer",
        f"$JS.API.CONSUMER.DELETE.{messaging.DISPATCH_STREAM}.{messaging.worker_consumer('TTS')}",
    ),
    (
        "workers",
        "look up the revocations bucket",
        f"$JS.API.STREAM.INFO.{messaging.kv_stream(messaging.REVOCATIONS_BUCKET)}",
    ),
    (
        "workers",
        "read a revocation",
        f"$JS.API.DIRECT.GET.{messaging.kv_stream(messaging.REVOCATIONS_BUCKET)}.{messaging.revocation_subject('x')}",
    ),
    ("workers", "revoke a session", messaging.revocation_subject("forged")),
    ("workers", "raise a cancel flag", f"$KV.{messaging.CANCEL_BUCKET}.some-job"),
    ("workers", "broadcast a job change to watchers", messaging.changes_subject("some-job")),
    ("workers", "publish a project event", messaging.PROJECT_DELETED_SUBJECT),
    ("workers", "list the streams", "$JS.API.STREAM.NAMES"),
    ("jobs", "publish a worker event", messaging.events_subject("some-job")),
    (
        "jobs",
        "fetch a worker's dispatch",
        f"$JS.API.CONSUMER.MSG.NEXT.{messaging.DISPATCH_STREAM}.{messaging.worker_consumer('TTS')}",
    ),
    ("jobs", "revoke a session", messaging.revocation_subject("forged")),
    ("jobs", "publish a project event", messaging.PROJECT_DELETED_SUBJECT),
    ("jobs", "delete a stream", f"$JS.API.STREAM.DELETE.{messaging.EVENTS_STREAM}"),
    ("projects", "dispatch a job", messaging.dispatch_subject("STT")),
    ("projects", "publish a worker event", messaging.events_subject("some-job")),
    ("projects", "revoke a session", messaging.revocation_subject("forged")),
    (
        "projects",
        "fetch a job event",
        f"$JS.API.CONSUMER.MSG.NEXT.{messaging.EVENTS_STREAM}.{messaging.EVENTS_CONSUMER}",
    ),
    ("projects", "create the dispatch stream", f"$JS.API.STREAM.CREATE.{messaging.DISPATCH_STREAM}"),
    ("auth", "dispatch a job", messaging.dispatch_subject("TTS")),
    ("auth", "publish a project event", messaging.PROJECT_DELETED_SUBJECT),
    ("auth", "raise a cancel flag", f"$KV.{messaging.CANCEL_BUCKET}.some-job"),
    ("auth", "fetch a job event", f"$JS.API.CONSUMER.MSG.NEXT.{messaging.EVENTS_STREAM}.{messaging.EVENTS_CONSUMER}"),
]

# (component, what it tries, subject) for subscriptions that must be refused.
DENIED_SUBSCRIBE = [
    ("workers", "listen to job events", "jobs.events.>"),
    ("workers", "listen to project events", "projects.events.>"),
    ("workers", "listen to revocations", f"$KV.{messaging.REVOCATIONS_BUCKET}.>"),
    ("workers", "listen to job changes", f"{messaging.CHANGES_PREFIX}.*"),
    ("workers", "listen to every reply", "_INBOX.>"),
    ("workers", "listen to the jobs service's replies", f"{messaging.inbox_prefix('jobs')}.>"),
    ("workers", "listen to everything", ">"),
    ("jobs", "listen to dispatches", "jobs.dispatch.>"),
    ("jobs", "listen to the workers' replies", f"{messaging.inbox_prefix('workers')}.>"),
    ("projects", "listen to job events", "jobs.events.>"),
    ("auth", "listen to job events", "jobs.events.>"),
]


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{component}: {action}" for component, action, _ in cases]


@pytest.fixture(scope="module")
def tally(figures: Figures) -> Iterator[dict[str, int]]:
    counts = {"denied": 0, "allowed": 0}
    yield counts
    figures.add(f"{counts['denied']} operations denied as expected, {counts['allowed']} allowed as expected")


def _run(stack: Endpoints, component: str, probe: Callable[[Session], Awaitable[bool]]) -> bool:
    async def go() -> bool:
        session = await open_session(stack, component)
        try:
            return await probe(session)
        finally:
            await session.nc.close()

    return asyncio.run(go())


@pytest.mark.parametrize(("component", "action", "subject"), DENIED_PUBLISH, ids=_ids(DENIED_PUBLISH))
def test_publish_is_denied(stack: Endpoints, tally: dict[str, int], component: str, action: str, subject: str) -> None:
    assert _run(stack, component, lambda s: publish_denied(s, subject)), f"{component} could {action} ({subject})"
    tally["denied"] += 1


@pytest.mark.parametrize(("component", "action", "subject"), DENIED_SUBSCRIBE, ids=_ids(DENIED_SUBSCRIBE))
def test_subscribe_is_denied(
    stack: Endpoints, tally: dict[str, int], component: str, action: str, subject: str
) -> None:
    assert _run(stack, component, lambda s: subscribe_denied(s, subject)), f"{component} could {action} ({subject})"
    tally["denied"] += 1


def test_a_worker_dispatch_never_reaches_the_stream(stack: Endpoints, tally: dict[str, int]) -> None:
    """Beyond the violation notice: a dispatch a worker tries to publish is not stored."""
    subject = messaging.dispatch_subject("NO_SUCH_TYPE")

    async def stored() -> int:
        admin = await open_session(stack, "admin")
        try:
            info = await admin.nc.jetstream().stream_info(messaging.DISPATCH_STREAM, subjects_filter=subject)
            return (info.state.subjects or {}).get(subject, 0)
        finally:
            await admin.nc.close()

    async def forge(session: Session) -> bool:
        try:
            await session.nc.jetstream().publish(subject, b"forged", timeout=DENIED_WAIT_SECONDS)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return await session.violation_about(subject)
        return False

    assert _run(stack, "workers", forge)
    assert asyncio.run(stored()) == 0
    tally["denied"] += 1


@pytest.mark.parametrize("credentials", ["anonymous", "wrong password", "unknown user"])
def test_connections_without_valid_credentials_are_refused(
    stack: Endpoints, tally: dict[str, int], credentials: str
) -> None:
    login = {
        "anonymous": {},
        "wrong password": {"user": "workers", "password": "not-the-password"},
        "unknown user": {"user": "intruder", "password": "whatever"},
    }[credentials]

    async def attempt() -> None:
        nc = await nats.connect(
            stack.nats_url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0, **login
        )
        await nc.close()

    with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
        asyncio.run(attempt())
    tally["denied"] += 1


def test_a_component_with_a_wrong_password_stops_at_once(stack: Endpoints, tally: dict[str, int]) -> None:
    """A service or worker with a wrong password exits with the reason instead of retrying for ever."""
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="refused user workers"):
        asyncio.run(messaging.connect(stack.nats_url, "test-wrong-password", "workers", "not-the-password"))
    assert time.monotonic() - started < 5
    tally["denied"] += 1


def test_each_component_can_do_its_own_work(stack: Endpoints, tally: dict[str, int]) -> None:
    """Read-only samples of what each user needs (the rest of the suite exercises the writes)."""

    async def worker(session: Session) -> bool:
        js = session.nc.jetstream()
        await js.stream_info(messaging.DISPATCH_STREAM)
        await js.consumer_info(messaging.DISPATCH_STREAM, messaging.worker_consumer("TTS"))
        cancels = await js.key_value(messaging.CANCEL_BUCKET)
        with pytest.raises(KeyNotFoundError):
            await cancels.get(str(uuid.uuid4()))
        return not session.violations

    async def service(session: Session) -> bool:
        kv = await session.nc.jetstream().key_value(messaging.REVOCATIONS_BUCKET)
        with pytest.raises(KeyNotFoundError):
            await kv.get(messaging.revocation_key(str(uuid.uuid4())))
        return not session.violations

    async def jobs(session: Session) -> bool:
        js = session.nc.jetstream()
        await js.consumer_info(messaging.EVENTS_STREAM, messaging.EVENTS_CONSUMER)
        await js.consumer_info(messaging.DISPATCH_STREAM, messaging.worker_consumer("STT"))
        return await service(session)

    checks: list[tuple[str, Callable[[Session], Awaitable[bool]]]] = [
        ("workers", worker),
        ("jobs", jobs),
        ("projects", service),
        ("auth", service),
    ]
    for component, check in checks:
        assert _run(stack, component, check), component
        tally["allowed"] += 1


def test_every_component_has_a_user(stack: Endpoints) -> None:
    assert sorted(stack.nats_passwords) == sorted(COMPONENTS)
    assert len(set(stack.nats_passwords.values())) == len(COMPONENTS)
