"""`aiorch worker`: one durable consumer per job type, until SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket

from services.common import messaging
from services.common.blobs import open_blob_store
from services.common.collector import settle_garbage_collector
from services.common.config import WorkerSettings
from services.common.job_types import NAMES as JOB_TYPE_NAMES
from services.common.logging import get_logger
from services.common.loops import run_forever
from services.common.metrics_server import serve_metrics_and_health
from services.workers.cancel import CancelFlags
from services.workers.consumer import TypeConsumer, consumer_config
from services.workers.container_memory import container_memory_limit
from services.workers.engines.registry import create_engine, parse_engine_overrides, parse_job_types
from services.workers.input_limits import InputLimits
from services.workers.inputs import UrlPolicy, parse_networks
from services.workers.liveness import WorkerLiveness
from services.workers.offers import offers, report_offers
from services.workers.runtime import JobRunner, RuntimeConfig
from services.workers.timelimit import parse_time_limits

log = get_logger(__name__)

# After the grace, how long handing back may take (a log event and a nak per job, retried while NATS reconnects).
HAND_BACK_SECONDS = 10.0
OPENCV_PIXELS_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"


def runtime_config(settings: WorkerSettings) -> RuntimeConfig:
    """The runtime's view of the settings; ValueError for a malformed limit or network."""
    time_limits = parse_time_limits(settings.worker_time_limits)
    unknown = sorted(set(time_limits) - set(JOB_TYPE_NAMES))
    if unknown:
        raise ValueError(
            f"time limit for unknown job type {', '.join(unknown)}; choose from {', '.join(JOB_TYPE_NAMES)}"
        )
    return RuntimeConfig(
        worker_id=settings.worker_id or f"{socket.gethostname()}-{os.getpid()}",
        ack_wait_seconds=settings.worker_ack_wait_seconds,
        max_deliver=settings.worker_max_deliver,
        default_time_limit=settings.worker_time_limit_seconds,
        time_limits=time_limits,
        url_policy=UrlPolicy(
            max_bytes=settings.worker_input_max_bytes,
            timeout_seconds=settings.worker_input_timeout_seconds,
            allow_networks=parse_networks(settings.worker_input_allow_networks),
        ),
        input_limits=InputLimits(
            max_pixels=settings.worker_input_max_pixels,
            max_seconds=settings.worker_input_max_seconds,
            # Same TYPE=SECONDS form as the time limits.
            max_seconds_by_type=parse_time_limits(settings.worker_input_max_seconds_by_type),
        ),
        memory_limit_mib=settings.worker_engine_memory_mib,
        # Same TYPE=NUMBER form as the time limits, in MiB.
        memory_limits_mib=parse_time_limits(settings.worker_engine_memory_mib_by_type),
        container_memory_bytes=container_memory_limit(),
        engine_processes=len(parse_job_types(settings.worker_types)) * settings.worker_concurrency,
    )


def limit_opencv_image_pixels(max_pixels: int) -> None:
    """Make OpenCV refuse images over `max_pixels` before decoding them (a decompression bomb never reaches memory).

    OpenCV reads the variable when it is imported, so this runs before the engines (and their processes,
    which inherit the environment) are created.
    """
    os.environ[OPENCV_PIXELS_ENV] = str(max_pixels)


async def run_workers(settings: WorkerSettings) -> None:
    """Run until SIGTERM or SIGINT, then stop fetching, let running jobs finish and hand back the rest.

    Raises ValueError for an unknown job type or a malformed setting, before connecting anywhere.
    """
    limit_opencv_image_pixels(settings.worker_input_max_pixels)
    job_types = parse_job_types(settings.worker_types)
    config = runtime_config(settings)
    overrides = parse_engine_overrides(settings.worker_engines)
    engines = {job_type: create_engine(job_type, overrides) for job_type in job_types}
    store = open_blob_store(settings)
    liveness = WorkerLiveness()
    if settings.metrics_port:
        # /healthz beside /metrics: the pod's probes ask whether the consumers still fetch.
        serve_metrics_and_health(settings.metrics_port, settings.metrics_host, liveness.problem)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    nc = await messaging.connect(
        settings.nats_url,
        f"aiorch-worker-{config.worker_id}",
        settings.nats_user,
        settings.nats_password.get_secret_value(),
    )
    try:
        js = nc.jetstream()
        # The jobs service creates these; workers may not create or change streams, so they wait.
        await messaging.wait_for_streams(
            js, [messaging.DISPATCH_STREAM, messaging.EVENTS_STREAM, messaging.kv_stream(messaging.CANCEL_BUCKET)]
        )
        runner = JobRunner(js, CancelFlags(await js.key_value(messaging.CANCEL_BUCKET)), store, engines, config)
        consumers = [
            TypeConsumer(
                js,
                consumer_config(
                    job_type,
                    settings.worker_ack_wait_seconds,
                    settings.worker_max_deliver,
                    settings.worker_concurrency,
                ),
                runner,
                settings.worker_concurrency,
            )
            for job_type in job_types
        ]
        for consumer in consumers:
            await consumer.open()
        # What this worker's engines have, for the engine catalog (read from what is installed, once).
        report = await asyncio.to_thread(offers, job_types, overrides)
        reporting = asyncio.create_task(
            run_forever("engine offers", functools.partial(report_offers, js, config.worker_id, report))
        )
        log.info("worker ready", worker_id=config.worker_id, types=job_types, concurrency=settings.worker_concurrency)
        settle_garbage_collector()
        liveness.running(consumers, lambda: nc.is_connected)
        await asyncio.gather(*(consumer.run(stopping) for consumer in consumers))

        in_flight = {task for consumer in consumers for task in consumer.in_flight}
        log.info("worker stopping", running=len(in_flight), grace_seconds=settings.shutdown_grace_seconds)
        if in_flight:
            _, still_running = await asyncio.wait(in_flight, timeout=settings.shutdown_grace_seconds)
            if still_running:
                runner.hand_back_all()
                await asyncio.wait(still_running, timeout=config.stop_grace_seconds + HAND_BACK_SECONDS)
        reporting.cancel()
        for consumer in consumers:
            await consumer.close()
        runner.close()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await nc.drain()
    log.info("worker stopped")
