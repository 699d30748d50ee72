"""A real worker's /healthz: healthy while its consumer fetches, unhealthy once NATS is gone for good."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from urllib.error import HTTPError, URLError

import pytest

from services.devstack.stack import free_port
from services.devstack.supervisor import wait_until
from services.workers.liveness import STALE_AFTER_SECONDS
from tests.worker_process import start_worker

# Starts its own nats-server and worker process: no fixture of the session stack says so, hence explicit.
pytestmark = pytest.mark.stack


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
            return int(reply.status)
    except HTTPError as error:
        return int(error.code)
    except (URLError, OSError):
        return 0


def test_healthz_fails_once_the_consumer_has_not_fetched_for_the_stale_time(tmp_path: Path) -> None:
    port = free_port()
    worker = start_worker(tmp_path, "tts", AIORCH_METRICS_PORT=str(port), AIORCH_METRICS_HOST="127.0.0.1")
    try:
        wait_until(lambda: _healthz(port) == 200, 10, "the worker's /healthz answering 200")
        # The port stays open (a TCP probe would pass) while the fetch loop can no longer complete a fetch.
        worker.supervisor.stop("nats")
        wait_until(lambda: _healthz(port) == 503, STALE_AFTER_SECONDS + 15, "/healthz answering 503", interval=1)
        assert worker.supervisor.process("worker").poll() is None, "the worker still runs: only the probe sees it"
    finally:
        worker.stop()
