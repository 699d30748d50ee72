"""A worker's /healthz: alive while its consumers fetch or are busy, 503 once a fetch loop stalls."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from urllib.error import HTTPError

from services.common.metrics_server import serve_metrics_and_health
from services.devstack.stack import free_port
from services.workers.liveness import WorkerLiveness


@dataclass
class Loop:
    """A consumer's fetch-loop state, as TypeConsumer keeps it."""

    last_round: float
    saturated: bool = False


def test_a_worker_is_unhealthy_until_its_consumers_run() -> None:
    assert WorkerLiveness().problem() == "starting: consumers not running yet"


def test_a_consumer_that_fetched_recently_is_alive() -> None:
    liveness = WorkerLiveness(stale_after_seconds=30)
    liveness.running([Loop(last_round=time.monotonic() - 1)], lambda: True)
    assert liveness.problem() is None


def test_a_consumer_whose_fetch_loop_stalled_makes_the_worker_unhealthy() -> None:
    liveness = WorkerLiveness(stale_after_seconds=30)
    liveness.running([Loop(last_round=time.monotonic()), Loop(last_round=time.monotonic() - 45)], lambda: True)
    assert liveness.problem() == "a consumer's fetch loop has not come round for 45 s"


def test_a_consumer_busy_with_a_long_job_is_no_stall() -> None:
    liveness = WorkerLiveness(stale_after_seconds=30)
    liveness.running([Loop(last_round=time.monotonic() - 3600, saturated=True)], lambda: True)
    assert liveness.problem() is None


def test_a_connection_lost_for_longer_than_the_stale_time_makes_the_worker_unhealthy() -> None:
    # Fetches keep ending (with a timeout) while the client reconnects, so the loop alone looks alive.
    liveness = WorkerLiveness(stale_after_seconds=0.2)
    connection = {"up": False}
    loop = Loop(last_round=time.monotonic())
    liveness.running([loop], lambda: connection["up"])
    assert liveness.problem() is None  # first seen down now
    time.sleep(0.3)
    loop.last_round = time.monotonic()  # a fetch just ended with a timeout
    problem = liveness.problem()
    assert problem is not None and problem.startswith("no NATS connection for")
    connection["up"] = True
    assert liveness.problem() is None


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def test_the_metrics_server_answers_healthz_from_the_liveness_and_still_serves_metrics() -> None:
    liveness = WorkerLiveness(stale_after_seconds=30)
    loop = Loop(last_round=time.monotonic())
    port = free_port()
    server = serve_metrics_and_health(port, "127.0.0.1", liveness.problem)
    try:
        assert _get(port, "/healthz") == (503, "starting: consumers not running yet")
        liveness.running([loop], lambda: True)
        assert _get(port, "/healthz") == (200, "ok")
        loop.last_round -= 60
        status, body = _get(port, "/healthz")
        assert status == 503 and "has not come round" in body
        status, body = _get(port, "/metrics")
        assert status == 200 and "python_info" in body
    finally:
        server.shutdown()
        server.server_close()
