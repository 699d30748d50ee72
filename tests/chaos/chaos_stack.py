"""The chaos suite's own stack: its settings, how it runs, and the handle its tests receive.

Shorter limits than the session stack, so that every fault heals within seconds. The fixture that starts it
lives in conftest.py; tests import the handle and the settings from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from services.devstack.stack import Endpoints, LocalStack, StackConfig
from tests.support import ADMIN_PASSWORD, TEST_SERVICE_ENV, Accounts

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


def running(state_dir: Path) -> Iterator[Chaos]:
    """Start the chaos stack with its state in `state_dir`, yield clients of it, stop it afterwards."""
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
