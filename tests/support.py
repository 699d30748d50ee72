"""Test helpers: the test stack's settings, users with unique names, tokens, token forgery, views of a running stack.

Test modules import shared constants and helpers from here (or from a named support module next to them),
never from a conftest.py or from another test module: tests/unit/test_test_layout.py checks it.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import jwt
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from services.common.peer import CLIENT_ADDRESS_HEADER

if TYPE_CHECKING:
    from services.devstack.stack import LocalStack

PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "admin-password-for-tests"

# Cheap hashing keeps the suite fast; production defaults are in services/common/config.py.
TEST_SERVICE_ENV = {
    "AIORCH_ARGON2_TIME_COST": "1",
    "AIORCH_ARGON2_MEMORY_KIB": "1024",
    "AIORCH_ARGON2_PARALLELISM": "1",
    "AIORCH_LOGIN_MAX_FAILURES_PER_USER": "5",
    "AIORCH_LOGIN_MAX_FAILURES_PER_ADDRESS": "10",
    "AIORCH_LOGIN_FAILURE_WINDOW_SECONDS": "60",
    # Tokens made at the start (the admin's, module fixtures' users) outlive the whole session: the run is
    # far shorter than an hour. Expiry itself is tested on a replica with a 3 s lifetime.
    "AIORCH_ACCESS_TOKEN_TTL_SECONDS": "3600",
    # A dead worker's job comes back after two seconds instead of thirty.
    "AIORCH_WORKER_ACK_WAIT_SECONDS": "2",
    # Tests serve inputs from a local HTTP server.
    "AIORCH_WORKER_INPUT_ALLOW_NETWORKS": "127.0.0.0/8",
    "AIORCH_MAX_UPLOAD_BYTES": str(5 * 1024 * 1024),
}


@dataclass(frozen=True)
class User:
    """A user created for one test, with a fresh token pair."""

    id: str
    username: str
    role: str
    password: str
    access: str
    refresh: str

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        """gRPC call metadata carrying the access token."""
        return (("authorization", f"Bearer {self.access}"),)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers carrying the access token."""
        return {"authorization": f"Bearer {self.access}"}


# Failed logins count per client address across the whole session's stack (AIORCH_LOGIN_MAX_FAILURES_PER_ADDRESS
# within its window), so a test that fails logins on purpose does so from an address of its own.
_ADDRESSES = itertools.count(1)


def own_address() -> str:
    """A client address no other test uses (TEST-NET-2, 198.51.100.0/24 is the login tests'; this is 198.18/15)."""
    n = next(_ADDRESSES)
    return f"198.18.{n // 250}.{n % 250 + 1}"


def own_loopback() -> str:
    """A loopback source address no other test uses, for failed logins through the gateway."""
    n = next(_ADDRESSES)
    return f"127.77.{n // 250}.{n % 250 + 1}"


def gateway_client_from(gateway_url: str, source: str) -> httpx.Client:
    """An HTTP client to the gateway whose connections come from the loopback address `source`."""
    return httpx.Client(base_url=gateway_url, transport=httpx.HTTPTransport(local_address=source), timeout=10)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Accounts:
    """Creates users through the real API, as the admin."""

    def __init__(self, channel: grpc.Channel, admin_password: str) -> None:
        self.tokens = tokens_pb2_grpc.TokenServiceStub(channel)
        self.profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
        self.admin_password = admin_password
        self._admin: User | None = None

    def login(self, username: str, password: str, address: str = "") -> tokens_pb2.TokenPair:
        """A token pair for the credentials; `address` is the client address the auth service counts it on."""
        metadata = ((CLIENT_ADDRESS_HEADER, address),) if address else ()
        request = tokens_pb2.ObtainTokenRequest(username=username, password=password)
        return self.tokens.ObtainToken(request, metadata=metadata)

    @property
    def admin(self) -> User:
        """The bootstrap admin, logged in once."""
        if self._admin is None:
            pair = self.login("admin", self.admin_password)
            me = self.profiles.GetProfile(
                profiles_pb2.GetProfileRequest(id="me"),
                metadata=(("authorization", f"Bearer {pair.access}"),),
            )
            self._admin = User(me.id, "admin", "admin", self.admin_password, pair.access, pair.refresh)
        return self._admin

    def create(self, role: str, password: str = PASSWORD) -> User:
        """A new user with `role`, logged in."""
        username = unique(role)
        profile = self.profiles.CreateProfile(
            profiles_pb2.CreateProfileRequest(username=username, role=role, password=password, name=role.title()),
            metadata=self.admin.metadata,
        )
        pair = self.login(username, password)
        return User(profile.id, username, role, password, pair.access, pair.refresh)


def forge(
    private_key_file: Path,
    claims: dict[str, Any] | None = None,
    *,
    algorithm: str = "EdDSA",
    key: Any = None,
    lifetime: timedelta = timedelta(minutes=5),
    issued: datetime | None = None,
) -> str:
    """A token signed like the real ones (or with another key/algorithm), with claims overridden."""
    now = issued or datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iss": "aiorch",
        "aud": "aiorch",
        "typ": "access",
        "jti": str(uuid.uuid4()),
        "fam": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    payload.update(claims or {})
    signing_key: Any = key if key is not None else load_pem_private_key(private_key_file.read_bytes(), None)
    return jwt.encode(payload, signing_key, algorithm=algorithm)


def make_project(http: Any, user: User, name: str | None = None) -> dict[str, Any]:
    """A project owned by `user`, created over REST."""
    reply = http.post("/api/projects/", json={"name": name or unique("project")}, headers=user.headers)
    assert reply.status_code == 200, reply.text
    project: dict[str, Any] = reply.json()
    return project


def tts_job(http: Any, user: User, project_id: str, text: str, voice: str = "espeak", **extra: Any) -> dict[str, Any]:
    """A TTS job created over REST, spoken by espeak-ng unless `voice` says otherwise ("" : the default voice).

    The platform tests create hundreds of throwaway jobs on the session stack's two workers; with the neural
    voice (seconds each on a loaded machine) their backlog made later tests' jobs wait minutes to start.
    """
    params = {"text": text, **({"voice": voice} if voice else {})}
    body = {"project_id": project_id, "type": "TTS", "params": {"tts": params}, **extra}
    reply = http.post("/api/jobs/", json=body, headers=user.headers)
    assert reply.status_code == 200, reply.text
    job: dict[str, Any] = reply.json()
    return job


def watch_sse(http: Any, user: User, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every job state a REST watcher receives (Server-Sent Events) until the stream ends."""
    states: list[dict[str, Any]] = []
    with http.stream("GET", f"/api/jobs/{job_id}/watch", headers=user.headers, timeout=timeout) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data: "):
                states.append(json.loads(line[len("data: ") :])["job"])
    return states


def wait_for(http: Any, user: User, job_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    """Poll a job over REST until it is in one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = http.get(f"/api/jobs/{job_id}/", headers=user.headers).json()
        if job.get("status") in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job.get('status')}, not {states}, after {timeout} s")
        time.sleep(0.1)


def long_text(sentences: int = 300) -> str:
    """A text that takes the TTS engine a while (many sentences, so cancel checkpoints come often); spoken by
    espeak-ng (voice "espeak") it runs for seconds, by the neural voice for minutes."""
    return " ".join(f"This is sentence number {i} of a long story about a patient robot." for i in range(sentences))


def upload(http: Any, user: User, filename: str, content: bytes, content_type: str) -> Any:
    """POST /api/files/ with a raw body; the response, for the caller to judge."""
    return http.post(
        "/api/files/",
        params={"filename": filename},
        content=content,
        headers={**user.headers, "content-type": content_type},
    )


def file_job(http: Any, user: User, project_id: str, job_type: str, params: dict[str, Any], file_id: str) -> Any:
    """POST /api/jobs/ for a job on an uploaded input; the response, for the caller to judge."""
    return http.post(
        "/api/jobs/",
        json={"project_id": project_id, "type": job_type, "params": params, "input_file_id": file_id},
        headers=user.headers,
    )


def worker_names(stack: LocalStack) -> list[str]:
    """The supervisor names of the stack's workers."""
    return [name for name in stack.supervisor.names() if name.startswith("worker")]


@contextmanager
def stopped_workers(stack: LocalStack) -> Iterator[None]:
    """No worker runs inside the block (jobs stay PENDING); they come back after it."""
    names = worker_names(stack)
    for name in names:
        stack.supervisor.stop(name)
    try:
        yield
    finally:
        for name in names:
            stack.supervisor.restart(name)


def cancel_jobs(http: Any, user: User, job_ids: Iterable[str]) -> None:
    """Cancel jobs a test made only to look at, so the session stack's workers never spend time on them
    (a job of 100,000 characters keeps a worker busy for most of an hour)."""
    for job_id in job_ids:
        reply = http.post(f"/api/jobs/{job_id}/cancel/", json={}, headers=user.headers)
        assert reply.status_code == 200, reply.text[:300]


def stored_results(database_url: str, job_id: str) -> int:
    """How many results the jobs database holds for a job (a job that finished once has one)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM jobs.results WHERE job_id = :j")
            return int(connection.execute(query, {"j": job_id}).scalar_one())
    finally:
        engine.dispose()


def scraped(port: int, metric: str, **labels: str) -> float:
    """A sample's value read straight from a process's /metrics (0 when absent)."""
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@contextmanager
def postgres_state_dir(name: str) -> Iterator[Path]:
    """A state dir for a stack or a PostgreSQL server, removed afterwards, outside pytest's temporary root.

    Run as root, PostgreSQL runs as its own system user, which must pass through every parent of its data
    dir. Every pytest session that starts (another terminal's, or a test's own) makes /tmp/pytest-of-<user>
    private to its owner again, and a server below it then loses its data dir (PANIC: could not open
    pg_control: Permission denied) and every later test fails on "the database is unavailable".
    """
    with tempfile.TemporaryDirectory(prefix=f"aiorch-{name}-", ignore_cleanup_errors=True) as state_dir:
        yield Path(state_dir)
