"""Prometheus metrics shared by every process, and the /metrics endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_service", "grpc_method", "grpc_type"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC until the server sent its status.",
    ["grpc_service", "grpc_method", "grpc_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def serve_metrics(port: int, host: str) -> None:
    """Expose /metrics on `port` in a background thread; 0 turns it off."""
    if port:
        start_http_server(port, addr=host)
