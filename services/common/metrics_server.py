"""The /metrics endpoint, with a /healthz beside it for processes that report their own liveness."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEALTH_PATH = "/healthz"


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape or probe on stderr (the process logs JSON there)."""

    def log_message(self, format: str, *args: object) -> None:
        return


def health_app(healthy: Callable[[], str | None], metrics: WSGIApplication) -> WSGIApplication:
    """GET /healthz answers 200, or 503 with the reason `healthy()` gives; every other path is `metrics`."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return metrics(environ, start_response)
        problem = healthy()
        status = "200 OK" if problem is None else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(problem or "ok").encode()]

    return app


def serve_metrics_and_health(port: int, host: str, healthy: Callable[[], str | None]) -> WSGIServer:
    """Serve /metrics and /healthz on host:port from a daemon thread; `healthy` returns None or a problem."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host, port, health_app(healthy, make_wsgi_app()), Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
