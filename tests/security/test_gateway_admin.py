"""Envoy's admin interface (no authentication) is loopback-only; Prometheus gets one read-only path of it;
the connection cap of the overload manager holds, and monitoring still gets through it.

Issue 13, finding 7: `POST /logging` on the admin port turned on debug logs that printed bearer tokens, and
the Kubernetes base bound the admin port to 0.0.0.0. A gateway is started here as the pod runs it: the stats
listener on every address, the admin interface on loopback, and both are probed from a non-loopback address.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import httpx
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.render import KNOWN_UPSTREAMS, GatewayConfig, GatewayLimits, render, upstream
from services.auth.keys import public_jwk
from services.devstack.probes import envoy_ready
from services.devstack.stack import DESCRIPTOR, VENV_BIN, Endpoints, free_port
from services.devstack.supervisor import wait_until
from tests.figures import Figures

# A small connection cap for this gateway, so the test can fill it.
MAX_CONNECTIONS = 8
# Admin endpoints an attacker would use: log levels, shutdown, config and secrets, counters reset.
DANGEROUS = [
    ("POST", "/logging?level=debug"),
    ("POST", "/quitquitquit"),
    ("GET", "/config_dump"),
    ("POST", "/reset_counters"),
]


def _outside_address() -> str:
    """An IPv4 address of this host that is not loopback: where another pod or host would connect."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    pytest.skip("this host has no non-loopback IPv4 address to probe from")


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def pod_gateway(stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    """A second Envoy rendered like the Kubernetes gateway (stats listener on), in front of the stack's services."""
    folder = tmp_path_factory.mktemp("pod-gateway")
    jwks = folder / "jwks.json"
    key = load_pem_public_key(stack.public_key.read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    jwks.write_text(json.dumps({"keys": [public_jwk(key)]}))
    config = GatewayConfig(
        gateway_port=free_port(),
        admin_port=free_port(),
        descriptor_path=DESCRIPTOR,
        jwks_path=jwks,
        upstreams=[upstream(name, "127.0.0.1", int(stack.grpc[name].rsplit(":", 1)[1])) for name in KNOWN_UPSTREAMS],
        stats_port=free_port(),
        limits=GatewayLimits(max_connections=MAX_CONNECTIONS),
    )
    config_file = folder / "envoy.yaml"
    config_file.write_text(render(config))
    envoy = subprocess.Popen(
        [str(VENV_BIN / "envoy"), "-c", str(config_file), "--disable-hot-restart", "--log-level", "warn"],
        stdout=(folder / "envoy.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: envoy_ready(config.admin_port), 30, "the pod-like Envoy")
        yield config
    finally:
        envoy.terminate()
        envoy.wait(10)


def test_the_admin_interface_is_unreachable_from_outside_loopback(
    stack: Endpoints, pod_gateway: GatewayConfig, figures: Figures
) -> None:
    outside = _outside_address()
    assert _refused(outside, pod_gateway.admin_port)
    assert _refused(outside, stack.gateway_admin_port)
    # The interface itself is still there for someone on the host (the pod's own processes).
    assert httpx.get(f"http://127.0.0.1:{pod_gateway.admin_port}/ready").status_code == 200
    figures.add(f"admin port refused from {outside} (pod-like gateway and local stack); answers on 127.0.0.1")


def test_the_stats_listener_serves_prometheus_and_ready_only(pod_gateway: GatewayConfig, figures: Figures) -> None:
    base = f"http://{_outside_address()}:{pod_gateway.stats_port}"
    stats = httpx.get(f"{base}/stats/prometheus")
    assert stats.status_code == 200
    assert "envoy_server_live" in stats.text
    assert httpx.get(f"{base}/ready").status_code == 200
    refused = {f"{verb} {path}": httpx.request(verb, f"{base}{path}").status_code for verb, path in DANGEROUS}
    assert set(refused.values()) == {404}, refused
    assert httpx.post(f"{base}/stats/prometheus").status_code == 404
    # Nothing the refused calls asked for happened: the log level is unchanged.
    levels = httpx.get(f"http://127.0.0.1:{pod_gateway.admin_port}/logging").text
    assert ": debug" not in levels, levels[:300]
    figures.add(f"stats listener: /stats/prometheus and /ready 200; {', '.join(refused)} all 404")


def _answers(port: int) -> bool:
    """Whether a new connection to the gateway gets an HTTP answer (rather than being closed unanswered)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            conn.sendall(b"GET /api/profiles/ HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1")
    except OSError:
        return False


def _gateway_stat(config: GatewayConfig, suffix: str) -> int:
    """A counter or gauge of the gateway listener (`listener.0.0.0.0_<port>.<suffix>`) from the admin interface."""
    name = f"listener.{config.listen_address}_{config.gateway_port}.{suffix}"
    for line in httpx.get(f"http://127.0.0.1:{config.admin_port}/stats", params={"filter": name}).text.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


def test_connections_past_the_cap_are_refused_and_monitoring_still_gets_through(
    pod_gateway: GatewayConfig, figures: Figures
) -> None:
    assert _answers(pod_gateway.gateway_port)
    held = [socket.create_connection(("127.0.0.1", pod_gateway.gateway_port)) for _ in range(MAX_CONNECTIONS)]
    try:
        # Once Envoy has accepted every held connection, the next one is over the cap.
        wait_until(lambda: _gateway_stat(pod_gateway, "downstream_cx_active") >= MAX_CONNECTIONS, 15, "the flood")
        assert not _answers(pod_gateway.gateway_port)
        assert _gateway_stat(pod_gateway, "downstream_global_cx_overflow") >= 1
        assert httpx.get(f"http://127.0.0.1:{pod_gateway.stats_port}/stats/prometheus").status_code == 200
    finally:
        for conn in held:
            conn.close()
    wait_until(lambda: _answers(pod_gateway.gateway_port), 15, "a connection after the flood")
    figures.add(f"{MAX_CONNECTIONS} idle connections fill the cap: the next is closed unanswered, stats still 200")
