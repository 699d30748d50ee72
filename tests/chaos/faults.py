"""The faults: each breaks one part of the chaos stack while jobs are in flight, then brings it back.

A fault has two steps, `hit` and `heal`, both run in the test's own thread: a child started from a
thread that then ends would die with it (the supervisor arms a parent-death signal, which Linux ties
to the starting thread). Clients that keep creating jobs through an outage run in threads of their own.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import psycopg2
from sqlalchemy import create_engine, text

from services.devstack.probes import grpc_serving
from services.devstack.stack import LocalStack
from services.devstack.supervisor import wait_until
from tests.chaos.jobmix import Submission, create_all
from tests.support import User, worker_names

OUTAGE_SECONDS = 1.5
BACK_WITHIN_SECONDS = 60
CLIENTS_WITHIN_SECONDS = 120
PROJECTS_DOWN_CREATES = 5


@dataclass
class Round:
    """What one round of faults hits: its stack, its user and project, and the jobs created so far."""

    stack: LocalStack
    http: httpx.Client
    user: User
    project_id: str
    more_jobs: Callable[[int, str], list[dict[str, object]]]
    submission: Submission = field(default_factory=Submission)
    notes: list[str] = field(default_factory=list)
    # What a hit left for its heal: the worker it killed, the clients it started.
    killed: list[str] = field(default_factory=list)
    clients: list[threading.Thread] = field(default_factory=list)


@dataclass(frozen=True)
class Fault:
    """Break a part (`hit`), then bring it back and wait until it serves (`heal`)."""

    name: str
    hit: Callable[[Round], None]
    heal: Callable[[Round], None]
    # Creates the fault makes and expects refused (all others must be accepted, retried as needed).
    refuses: int = 0

    def inject(self, round_: Round, outage: float = OUTAGE_SECONDS) -> None:
        """Hit, leave the part down for `outage` seconds, heal; then wait for the clients it started."""
        self.hit(round_)
        time.sleep(outage)
        self.heal(round_)
        while round_.clients:
            round_.clients.pop().join(CLIENTS_WITHIN_SECONDS)


def _postgres_accepting(database_url: str) -> bool:
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    try:
        psycopg2.connect(dsn, connect_timeout=1).close()
    except psycopg2.OperationalError:
        return False
    return True


def _nats_accepting(nats_url: str) -> bool:
    # urlsplit, so that credentials in the URL (nats://user:secret@host:port) do not matter.
    address = urlsplit(nats_url.split(",", maxsplit=1)[0].strip())
    try:
        socket.create_connection((address.hostname or "127.0.0.1", address.port or 4222), timeout=0.5).close()
    except OSError:
        return False
    return True


def _back(stack: LocalStack, name: str) -> None:
    stack.supervisor.restart(name)
    ep = stack.endpoints
    assert ep is not None
    checks: dict[str, Callable[[], bool]] = {
        "postgres": lambda: _postgres_accepting(ep.database_url),
        "nats": lambda: _nats_accepting(ep.nats_url),
    }
    check = checks.get(name) or (lambda: grpc_serving(ep.grpc[name]))
    try:
        wait_until(check, BACK_WITHIN_SECONDS, name)
    except TimeoutError as exc:
        # The stack's state (and its logs) is removed after the suite: say here why the part stayed down.
        log = stack.state_dir / "logs" / f"{name}.log"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        raise TimeoutError(f"{exc}; the end of its log:\n" + "\n".join(tail)) from None


def _busy_worker(round_: Round, within: float = 10.0) -> str:
    """The supervisor name of a worker running one of the round's jobs now."""
    ep = round_.stack.endpoints
    assert ep is not None
    engine = create_engine(ep.database_url)
    pids = {round_.stack.supervisor.process(n).pid: n for n in worker_names(round_.stack)}
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                ids = connection.execute(
                    text("SELECT worker_id FROM jobs.jobs WHERE project_id = :p AND status = 'RUNNING'"),
                    {"p": round_.project_id},
                ).scalars()
                for worker_id in ids:
                    pid = int(worker_id.rsplit("-", 1)[1])
                    if pid in pids:
                        return pids[pid]
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("no worker was running a job of the round")


def _stopping(name: str) -> Callable[[Round], None]:
    def stop(round_: Round) -> None:
        round_.stack.supervisor.stop(name)

    return stop


def _restarting(name: str) -> Callable[[Round], None]:
    def restart(round_: Round) -> None:
        _back(round_.stack, name)

    return restart


def _kill_busy_worker(round_: Round) -> None:
    victim = _busy_worker(round_)
    round_.stack.supervisor.stop(victim, signal.SIGKILL)
    round_.killed.append(victim)
    round_.notes.append(f"killed {victim} mid-job")


def _restart_killed_workers(round_: Round) -> None:
    while round_.killed:
        round_.stack.supervisor.restart(round_.killed.pop())


# `kill -9` a worker in the middle of a job (JetStream hands its jobs to a worker after AckWait); it is started again.
kill_worker = Fault("kill_worker", _kill_busy_worker, _restart_killed_workers)


def _kill_jobs_and_keep_creating(round_: Round) -> None:
    round_.stack.supervisor.stop("jobs", signal.SIGKILL)
    bodies = round_.more_jobs(5, "during-jobs-kill")
    client = threading.Thread(
        target=create_all, args=(round_.http, round_.user, bodies, round_.submission), kwargs={"retry_for": 90}
    )
    client.start()
    round_.clients.append(client)


# `kill -9` the jobs service; clients keep creating (retrying with their request ids) until it is back.
kill_jobs_service = Fault("kill_jobs_service", _kill_jobs_and_keep_creating, _restarting("jobs"))


# Stop NATS (SIGTERM) and start it again on the same JetStream store.
restart_nats = Fault("restart_nats", _stopping("nats"), _restarting("nats"))

# Stop PostgreSQL (fast shutdown: every connection is cut) and start it again on the same data.
restart_postgres = Fault("restart_postgres", _stopping("postgres"), _restarting("postgres"))


def _stop_projects_while_creating(round_: Round) -> None:
    round_.stack.supervisor.stop("projects")
    refused_before = len(round_.submission.refused)
    bodies = round_.more_jobs(PROJECTS_DOWN_CREATES, "during-projects-stop")
    create_all(round_.http, round_.user, bodies, round_.submission)
    refused = round_.submission.refused[refused_before:]
    assert len(refused) == PROJECTS_DOWN_CREATES, (
        f"creates were accepted while the projects service was down: {refused}"
    )
    for status, body in refused:
        assert status == 503, body
        assert '"code":14' in body.replace(" ", ""), body
        assert "projects service" in body, body


# Stop the projects service while jobs are created: each create is refused as UNAVAILABLE and none is stored.
stop_projects_service = Fault(
    "stop_projects_service", _stop_projects_while_creating, _restarting("projects"), refuses=PROJECTS_DOWN_CREATES
)


def together(*faults: Fault) -> Fault:
    """Several faults at once: every part is down at the same time, then each comes back."""

    def hit(round_: Round) -> None:
        for fault in faults:
            fault.hit(round_)

    def heal(round_: Round) -> None:
        for fault in faults:
            fault.heal(round_)

    return Fault("+".join(f.name for f in faults), hit, heal, sum(f.refuses for f in faults))
