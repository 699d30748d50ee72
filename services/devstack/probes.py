"""Readiness probes of a stack's parts, for the stack itself and for the tests that break and heal them."""

from __future__ import annotations

import urllib.request
from urllib.error import URLError

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_serving(address: str, timeout: float = 1) -> bool:
    """Whether the gRPC server at host:port answers its health check with SERVING."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def envoy_ready(admin_port: int) -> bool:
    """Whether the Envoy whose admin interface listens on this loopback port is ready to serve."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as reply:
            return bool(reply.status == 200)
    except (URLError, OSError):
        return False
