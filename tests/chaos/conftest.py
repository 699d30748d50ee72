"""The chaos suite's own stack, so killing its parts never disturbs the session stack of the other tests.

It starts when the first chaos test runs and stops after the last one (package scope), on free
loopback ports like the session stack, with shorter limits so that every fault heals within seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from services.devstack.stack import Endpoints, LocalStack, StackConfig
from tests.conftest import ADMIN_PASSWORD, TEST_SERVICE_ENV
from tests.support import Accounts

CHAOS_ENV = {
    **TEST_SERVICE_ENV,
    # Tokens outlive the whole suite, whatever is restarted.
    "AIORCH_ACCESS_TOKEN_TTL_SECONDS": "900",
    # Several jobs per worker at once, so 50+ jobs are in flight on two workers.
    "AIORCH_WORKER_CONCURRENCY": "3",
    # A TTS attempt is stopped by its worker after 30 s; a silent one is reaped 20 s after that. The limit covers a
    # short job held up by a NATS restart on two busy cores (at 15 s one such round failed a job on its limit). The
    # grace covers how long a dead worker's job may wait for its redelivery to start elsewhere (AckWait, a restarted
    # NATS, a busy worker); with 5 s, a round killing a worker while NATS restarts reaped a live job.
    "AIORCH_WORKER_TIME_LIMITS": "TTS=30",
    "AIORCH_REAPER_INTERVAL_SECONDS": "1",
    "AIORCH_REAPER_GRACE_SECONDS": "20",
    # A watcher that does not read is ended after 3 s instead of 30.
    "AIORCH_WATCH_WRITE_TIMEOUT_SECONDS": "3",
}


@dataclass(frozen=True)
class Chaos:
    """The chaos stack and clients of it."""

    stack: LocalStack
    endpoints: Endpoints
    http: httpx.Client
    accounts: Accounts

    @property
    def gateway_grpc(self) -> str:
        """host:port of the gateway for gRPC clients."""
        return f"127.0.0.1:{self.endpoints.gateway_port}"


@pytest.fixture(scope="package")
def chaos() -> Iterator[Chaos]:
    """A stack of its own: Postgres, NATS, the services, two workers and Envoy."""
    # Not under pytest's temporary root: every pytest session that starts makes that root private to its
    # owner again, and PostgreSQL (run as its own system user) could not reach its data after a restart.
    with tempfile.TemporaryDirectory(prefix="aiorch-chaos-", ignore_cleanup_errors=True) as state_dir:
        yield from _running(Path(state_dir))


def _running(state_dir: Path) -> Iterator[Chaos]:
    local = LocalStack(
        StackConfig(
            state_dir=state_dir,
            gateway_port=0,
            admin_password=ADMIN_PASSWORD,
            service_env=CHAOS_ENV,
            log_to_files=True,
            durable_postgres=False,
            workers=2,
        )
    )
    endpoints = local.start()
    try:
        with (
            httpx.Client(base_url=endpoints.gateway_url, timeout=10) as http,
            grpc.insecure_channel(endpoints.grpc["auth"]) as auth_channel,
        ):
            yield Chaos(local, endpoints, http, Accounts(auth_channel, ADMIN_PASSWORD))
    finally:
        local.stop()
