"""gRPC server start-up shared by every service: health, reflection, interceptors, graceful drain."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import uvloop
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.api_keys import ApiKeyView
from services.common.collector import settle_garbage_collector
from services.common.config import ServiceSettings
from services.common.field_limits import check_field_limits
from services.common.identity import TokenVerifier, load_public_keys
from services.common.interceptors import (
    Authenticator,
    AuthInterceptor,
    ErrorInterceptor,
    MetricsInterceptor,
    RequestCheckInterceptor,
)
from services.common.logging import get_logger
from services.common.metrics import serve_metrics
from services.common.path_binding import check_transcoded_path
from services.common.request_text import check_request_text
from services.common.revocations import RevocationView

log = get_logger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# A service that cannot read the revoked sessions in this time exits (and is restarted) rather than serve.
REVOCATIONS_LOAD_TIMEOUT_SECONDS = 60.0


# Every request message of every service passes these before a handler runs (a refusal: INVALID_ARGUMENT).
REQUEST_CHECKS = (
    lambda call, request, context: check_request_text(request),  # no NUL: PostgreSQL cannot store it
    lambda call, request, context: check_field_limits(request),  # no text over its field's limit
    # a REST body cannot name another object than its path
    lambda call, request, context: check_transcoded_path(call.method, request, context.invocation_metadata()),
)


@dataclass(frozen=True)
class Servicer:
    """One gRPC service to mount: its full name, the servicer, and the generated add_*_to_server."""

    name: str
    implementation: object
    register: Callable[[Any, aio.Server], None]


@dataclass
class ServiceApp:
    """A service process: what it mounts, which methods need no token, what runs beside the server."""

    name: str
    servicers: Sequence[Servicer]
    # Revoked token families; `background` must include the task that follows the bucket (`view.run`).
    revocations: RevocationView
    # The live API keys; `background` must include the task that follows their bucket.
    api_keys: ApiKeyView
    public_methods: frozenset[str] = frozenset()
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run when draining starts, before in-flight calls get their grace (e.g. end long streams).
    on_drain: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)


def make_authenticator(settings: ServiceSettings, revocations: RevocationView, api_keys: ApiKeyView) -> Authenticator:
    """The one way a service turns bearer credentials into callers (gRPC and the jobs service's HTTP edge)."""
    keys = load_public_keys(settings.jwt_public_key_file, settings.jwt_previous_public_key_files)
    return Authenticator(TokenVerifier(keys, settings.jwt_issuer, settings.jwt_audience), revocations, api_keys)


def build_server(app: ServiceApp, settings: ServiceSettings) -> tuple[aio.Server, Any]:
    """A server with every servicer, health and reflection mounted, not yet started."""
    server = aio.server(
        interceptors=[
            MetricsInterceptor(),
            ErrorInterceptor(),
            AuthInterceptor(make_authenticator(settings, app.revocations, app.api_keys), app.public_methods),
            RequestCheckInterceptor(REQUEST_CHECKS),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    for servicer in app.servicers:
        servicer.register(servicer.implementation, server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in app.servicers]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return server, health_servicer


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine on uvloop (libuv) instead of asyncio's own loop.

    Measured with `python -m bench`: the loop's own overhead (wakeups from database threads, socket
    callbacks) is a visible share of a short unary call, and uvloop took it down (docs/performance.md).
    """
    uvloop.run(main)


async def run_service(app: ServiceApp, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop taking calls and let in-flight ones finish."""
    # Handlers run database calls in the default executor (asyncio.to_thread). Its default size,
    # min(32, CPUs + 4), is 6 threads on two cores: fewer than the connections the pool may lend
    # (make_engine: pool_size + as many overflow), so calls queued for a thread beside idle connections.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=2 * settings.db_pool_size, thread_name_prefix="aiorch-db")
    )
    server, health_servicer = build_server(app, settings)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    server.add_insecure_port(address)
    serve_metrics(settings.metrics_port, settings.grpc_host)
    tasks = [asyncio.create_task(job()) for job in app.background]
    # Fail closed: no call is served before every revoked session and every live key is known.
    await app.revocations.wait_loaded(REVOCATIONS_LOAD_TIMEOUT_SECONDS)
    await app.api_keys.wait_loaded(REVOCATIONS_LOAD_TIMEOUT_SECONDS)
    await server.start()
    for name in ["", *(s.name for s in app.servicers)]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("service started", service=app.name, grpc=address, metrics_port=settings.metrics_port)
    settle_garbage_collector()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("draining", service=app.name, grace_seconds=settings.shutdown_grace_seconds)
    # Readiness probes and Envoy's health checks see NOT_SERVING first and stop routing here.
    await health_servicer.enter_graceful_shutdown()
    await asyncio.sleep(settings.drain_delay_seconds)
    for hook in app.on_drain:
        await hook()
    await server.stop(settings.shutdown_grace_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for hook in app.on_shutdown:
        await hook()
    log.info("stopped", service=app.name)
