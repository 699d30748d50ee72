"""A real Prometheus (Debian's `prometheus` package) scrapes the local stack: every service, every worker and
Envoy's own stats. After a few TTS jobs, the job counters, the latency histograms, the queue gauges and every
metric the Grafana dashboard reads come back through Prometheus's HTTP API, and every dashboard and alert
expression is valid PromQL for this Prometheus.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from services.common import messaging
from services.common.queues import QueueState, read_queues
from services.devstack.stack import Endpoints, free_port
from services.devstack.supervisor import Supervisor, wait_until
from tests.observability_config import (
    CNPG_METRICS,
    DCGM_METRICS,
    ENVOY_METRICS,
    NATS_EXPORTER_METRICS,
    alert_rules,
    dashboard_exprs,
    promql_metric_names,
    rule_groups,
)
from tests.support import Accounts, make_project, scraped, tts_job, wait_for, watch_sse

JOBS = 3
WAIT_SECONDS = 30.0
T = TypeVar("T")


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=10)

    def close(self) -> None:
        self._http.close()

    def api(self, path: str, **params: str) -> Any:
        reply = self._http.get(f"/api/v1/{path}", params=params)
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", f"{path} {params}: {reply.text}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant vector's samples."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr} gave a {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float:
        """The single sample of `expr`; AssertionError when there is none (or several)."""
        result = self.query(expr)
        assert len(result) == 1, f"{expr} gave {len(result)} samples: {result}"
        return float(result[0]["value"][1])


def eventually(check: Callable[[], T], what: str, timeout: float = WAIT_SECONDS) -> T:
    """`check()` once it stops raising AssertionError; fails with its last message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}, after {timeout:.0f} s: {exc}") from exc
        time.sleep(0.5)


def scrape_config(stack: Endpoints) -> dict[str, Any]:
    """Every process of the stack, and Envoy's admin /stats/prometheus, once a second."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "aiorch",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"process": name}}
                    for name, port in stack.metrics.items()
                ],
            },
            {
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{stack.gateway_admin_port}"]}],
            },
        ],
    }


@pytest.fixture(scope="module")
def prometheus(stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus scraping the stack, every target scraped at least once; stopped after the module."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: install Debian's prometheus package (`make venv` does as root)")
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(stack), sort_keys=False))
    port = free_port()
    supervisor = Supervisor(home / "logs")
    supervisor.start(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        cwd=home,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: _ready(prometheus.url), 30, "Prometheus")
        expected = len(stack.metrics) + 1
        eventually(lambda: _all_up(prometheus, expected), "every target up", timeout=WAIT_SECONDS)
        yield prometheus
    except BaseException:
        log = home / "logs" / "prometheus.log"
        print(log.read_text() if log.exists() else "no Prometheus log")
        raise
    finally:
        prometheus.close()
        supervisor.stop_all()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _all_up(prometheus: Prometheus, expected: int) -> None:
    targets = prometheus.api("targets", state="active")["activeTargets"]
    health = {target["scrapeUrl"]: (target["health"], target["lastError"]) for target in targets}
    assert len(health) == expected, health
    assert all(state == "up" for state, _ in health.values()), health


def test_prometheus_scrapes_the_stack_and_reads_jobs_rpcs_queues_and_envoy(
    prometheus: Prometheus, stack: Endpoints, http: httpx.Client, accounts: Accounts
) -> None:
    jobs_port = stack.metrics["jobs"]
    completed_before = scraped(jobs_port, "aiorch_jobs_finished_total", type="TTS", state="COMPLETED")
    created_before = scraped(jobs_port, "aiorch_jobs_created_total", type="TTS")

    editor = accounts.create("editor")
    project = make_project(http, editor)
    # The first job watched to its end (the watch-stream gauge gets a series). The others start once
    # Prometheus has scraped the series the first one created, so they show up in rate() and increase() too.
    first = tts_job(http, editor, project["id"], "Observability check number 0.")
    assert watch_sse(http, editor, first["id"])[-1]["status"] == "COMPLETED"

    def first_scraped() -> None:
        assert prometheus.value('sum(grpc_server_handling_seconds_count{grpc_method="CreateJob"})') >= 1

    eventually(first_scraped, "the first CreateJob scraped")
    jobs = [first, *(tts_job(http, editor, project["id"], f"Observability check number {i}.") for i in range(1, JOBS))]
    for job in jobs:
        wait_for(http, editor, job["id"], {"COMPLETED"})

    # Job counters, summed over replicas as the docs say.
    def counters() -> None:
        created = prometheus.value('sum(aiorch_jobs_created_total{type="TTS"})')
        assert created >= created_before + JOBS, f"created {created}, {created_before} before"
        done = prometheus.value('sum(aiorch_jobs_finished_total{type="TTS", state="COMPLETED"})')
        assert done >= completed_before + JOBS, f"completed {done}, {completed_before} before"

    eventually(counters, "the TTS job counters")

    # Latency histograms: the buckets are there, and quantiles over them are numbers.
    def histograms() -> None:
        buckets = prometheus.query('grpc_server_handling_seconds_bucket{grpc_method="CreateJob", grpc_type="unary"}')
        assert buckets, "no CreateJob latency buckets"
        assert {b["metric"]["grpc_service"] for b in buckets} == {"aiorch.jobs.v1.JobService"}
        for expr in (
            'grpc_server_handling_seconds_bucket{grpc_method="CreateJob"}',
            'aiorch_job_queue_wait_seconds_bucket{type="TTS"}',
            'aiorch_job_run_seconds_bucket{type="TTS", state="COMPLETED"}',
            'aiorch_worker_run_seconds_bucket{type="TTS"}',
        ):
            # Since the process started (a series' first scrape may already hold every observation).
            seconds = prometheus.value(f"histogram_quantile(0.99, sum by (le) ({expr}))")
            assert math.isfinite(seconds) and seconds > 0, f"p99 of {expr} is {seconds}"
        # As the dashboard and the alerts ask: over a recent window, by service and method.
        recent = prometheus.query(
            "histogram_quantile(0.99, sum by (grpc_service, grpc_method, le) "
            '(rate(grpc_server_handling_seconds_bucket{grpc_method="CreateJob"}[1m])))'
        )
        assert len(recent) == 1, recent
        seconds = float(recent[0]["value"][1])
        assert math.isfinite(seconds) and 0 < seconds < 30, f"recent p99 of CreateJob is {seconds}"

    eventually(histograms, "the latency histograms")

    # Queue gauges of the jobs service, and a worker consumer for TTS.
    def queues() -> None:
        assert prometheus.value('max(aiorch_queue_depth{type="TTS"})') >= 0
        assert prometheus.value('max(aiorch_queue_in_flight{type="TTS"})') >= 0
        assert prometheus.value('max(aiorch_queue_consumer_present{type="TTS"})') == 1
        assert prometheus.value('sum(aiorch_outbox_published_total{service="jobs"})') >= JOBS
        assert prometheus.value('max(aiorch_outbox_backlog{service="jobs"})') >= 0

    eventually(queues, "the queue and outbox gauges")

    # Envoy's own statistics, through the gateway's listener.
    def envoy() -> None:
        total = prometheus.value('sum(envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="gateway"})')
        assert total >= JOBS + 2, f"Envoy counted {total} requests"
        ok = prometheus.value('sum(envoy_http_downstream_rq_xx{envoy_response_code_class="2"})')
        assert ok > 0

    eventually(envoy, "Envoy's statistics")
    _all_up(prometheus, len(stack.metrics) + 1)

    # Every metric of aiorch and Envoy the dashboard reads has series now (the local stack runs no NATS
    # exporter, CloudNativePG or GPU), and every panel, alert and recording expression is valid PromQL.
    names = {name for expr in dashboard_exprs() for name in promql_metric_names(expr)}
    assert names >= ENVOY_METRICS
    names -= NATS_EXPORTER_METRICS | CNPG_METRICS | DCGM_METRICS

    def dashboard() -> None:
        missing = sorted(name for name in names if not prometheus.query(f"group({name})"))
        assert not missing, f"no series of {missing}"

    eventually(dashboard, "every metric of the dashboard")
    for expr in dashboard_exprs():
        # The dashboard's variables at "All".
        query = expr.replace("$__rate_interval", "1m").replace("$cluster", ".*").replace("$namespace", ".*")
        prometheus.api("query", query=query)
    for rule in (rule for group in rule_groups() for rule in group["rules"]):
        prometheus.api("query", query=rule["expr"])


def test_the_scrape_config_lists_every_process_once(stack: Endpoints) -> None:
    config = scrape_config(stack)
    targets = [t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]]
    assert len(targets) == len(set(targets)) == len(stack.metrics) + 1


@pytest.mark.usefixtures("workers_stopped")
def test_with_no_worker_the_queue_fills_and_the_no_worker_expression_names_the_type(
    prometheus: Prometheus, http: httpx.Client, accounts: Accounts
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], "Nobody will read this until the workers are back.")
    rule = next(rule for rule in alert_rules() if rule["alert"] == "AiorchNoWorkerForType")

    def stuck() -> None:
        assert prometheus.value('max(aiorch_queue_depth{type="TTS"})') >= 1
        assert prometheus.value('max(aiorch_queue_pulls_waiting{type="TTS"})') == 0
        # The alert's condition, before its `for:`: the stopped workers' busy gauges are gone.
        firing = {sample["metric"]["type"] for sample in prometheus.query(rule["expr"])}
        assert "TTS" in firing, firing

    eventually(stuck, "the TTS queue without workers")
    assert http.get(f"/api/jobs/{job['id']}/", headers=editor.headers).json()["status"] == "PENDING"


async def _queue_without_consumer(stack: Endpoints, job_type: str) -> QueueState:
    admin = stack.nats_env("admin")
    nc = await messaging.connect(
        stack.nats_url, "test-observability", admin.get("AIORCH_NATS_USER", ""), admin.get("AIORCH_NATS_PASSWORD", "")
    )
    js = nc.jetstream()
    subject = messaging.dispatch_subject(job_type)
    try:
        for i in range(2):
            await js.publish(subject, b"{}", headers={"Nats-Msg-Id": f"{job_type}-{i}-{uuid.uuid4()}"})
        return (await read_queues(js, [job_type]))[job_type]
    finally:
        await js.purge_stream(messaging.DISPATCH_STREAM, subject=subject)
        await nc.close()


def test_a_type_no_worker_ever_consumed_counts_its_messages_in_the_stream(stack: Endpoints) -> None:
    state = asyncio.run(_queue_without_consumer(stack, "NO_SUCH_WORKER"))
    assert state == QueueState(depth=2, in_flight=0, pulls_waiting=0, consumer_present=False)
