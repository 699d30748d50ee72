"""The prod gateway, run: HTTPS with its certificate, HTTP only redirects, HSTS, and a drain before it stops.

Envoy is rendered from the prod overlay's own gateway variables (tests/deploy/gateway_envoy.py), with a
test CA's certificate in place of cert-manager's and free loopback ports in place of the pod's.
"""

from __future__ import annotations

import http.client
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway import render as gateway_render
from services.devstack.supervisor import wait_until
from tests.deploy.gateway_envoy import (
    ENVOY,
    RunningGateway,
    connection_refused,
    prod_config_on_free_ports,
    prod_gateway_container,
    prod_gateway_env,
    start_gateway,
)
from tests.deploy.manifests import ROOT, kubectl

DRAIN_HOOK = ROOT / "gateway" / "drain.sh"

pytestmark = pytest.mark.skipif(
    kubectl() is None or not ENVOY.exists(), reason="needs kubectl (to render prod) and the venv's envoy"
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("gateway-tls"), [])
    yield running
    running.stop()


def _client(gateway: RunningGateway) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(gateway.certificate.ca_file))
    return httpx.Client(verify=context, follow_redirects=False, timeout=10)


def test_the_prod_config_passes_envoy_validation(tmp_path: Path) -> None:
    config, _ = prod_config_on_free_ports(tmp_path)
    config_file = tmp_path / "envoy.yaml"
    config_file.write_text(gateway_render.render(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config_file), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_https_serves_with_the_certificate_and_sends_hsts(gateway: RunningGateway) -> None:
    with _client(gateway) as client:
        reply = client.get(f"https://localhost:{gateway.https_port}/")
    assert reply.status_code == 200
    assert "aiorch" in reply.text
    hsts = reply.headers["strict-transport-security"]
    assert hsts.startswith("max-age=") and int(hsts.split(";")[0].removeprefix("max-age=")) >= 180 * 24 * 3600


def test_an_api_error_over_https_also_carries_hsts(gateway: RunningGateway) -> None:
    with _client(gateway) as client:
        reply = client.post(f"https://localhost:{gateway.https_port}/api/jobs", json={})
    assert reply.status_code == 401  # no token: refused by Envoy itself
    assert "strict-transport-security" in reply.headers


def test_a_client_that_does_not_trust_the_ca_is_refused(gateway: RunningGateway) -> None:
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=True) as client:
        client.get(f"https://localhost:{gateway.https_port}/")


def test_plain_http_to_the_tls_port_gets_no_answer(gateway: RunningGateway) -> None:
    with pytest.raises(httpx.TransportError), httpx.Client(timeout=5) as client:
        client.get(f"http://127.0.0.1:{gateway.https_port}/")


def test_http_redirects_permanently_to_https_keeping_the_path(gateway: RunningGateway) -> None:
    with httpx.Client(follow_redirects=False) as client:
        reply = client.get(f"http://localhost:{gateway.http_port}/api/jobs?page_size=5")
    assert reply.status_code in (301, 308)
    assert reply.headers["location"] == f"https://localhost:{gateway.https_port}/api/jobs?page_size=5"


def test_cors_allows_only_the_configured_origins(gateway: RunningGateway) -> None:
    (origin,) = gateway.config.cors_origins
    assert origin.startswith("https://") and origin != "*"
    preflight = {"access-control-request-method": "POST"}
    # A gRPC-web call's preflight: the CORS filter answers it before any service is asked.
    url = f"https://localhost:{gateway.https_port}/aiorch.auth.v1.TokenService/ObtainToken"
    with _client(gateway) as client:
        allowed = client.options(url, headers={**preflight, "origin": origin})
        other = client.options(url, headers={**preflight, "origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers.get("access-control-allow-origin") == origin
    assert "access-control-allow-origin" not in other.headers


# ---- drain (the preStop hook) -------------------------------------------------------------------------


def _hook_arguments() -> dict[str, str]:
    command = prod_gateway_container().spec["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "/usr/local/bin/gateway-drain"
    return dict(arg.removeprefix("--").split("=", 1) for arg in command[1:])


def test_draining_fails_health_first_tells_clients_to_reconnect_then_closes_the_listeners(tmp_path: Path) -> None:
    hook = _hook_arguments()
    args = prod_gateway_container().args
    # The prod hook and Envoy's drain settings, with the waits shortened for the test.
    assert args[args.index("--drain-strategy") + 1] == "immediate"
    running = start_gateway(tmp_path, ["--drain-time-s", "1", "--drain-strategy", "immediate"])
    try:
        # The hook reaches the admin interface the gateway container renders.
        assert hook["admin-port"] == prod_gateway_env()["AIORCH_GATEWAY_ADMIN_PORT"]
        context = ssl.create_default_context(cafile=str(running.certificate.ca_file))
        held = http.client.HTTPSConnection("localhost", running.https_port, context=context, timeout=10)
        held.request("GET", "/")
        first = held.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("connection") != "close"

        done = threading.Event()
        left: list[str] = []

        def run_hook() -> None:
            # The image's hook (gateway/drain.sh, installed as /usr/local/bin/gateway-drain), its waits shortened.
            hook_run = subprocess.run(
                [
                    str(DRAIN_HOOK),
                    f"--admin-port={running.config.admin_port}",
                    "--unready-seconds=1.5",
                    "--drain-seconds=10",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            left.append(f"{hook_run.returncode} {hook_run.stdout.strip()} {hook_run.stderr.strip()}".strip())
            done.set()

        threading.Thread(target=run_hook, daemon=True).start()
        # While unready: the readiness probe's /ready answers 503, and kept connections are told to close.
        ready = f"http://127.0.0.1:{running.config.stats_port}/ready"
        wait_until(lambda: httpx.get(ready, timeout=2).status_code == 503, 5, "/ready answering 503")
        held.request("GET", "/")
        second = held.getresponse()
        second.read()
        assert second.status == 200
        assert second.getheader("connection") == "close"
        held.close()
        assert done.wait(15), "the drain did not end"
        assert left == ["0 left 0"]
        assert connection_refused(running.https_port)
        assert connection_refused(running.http_port)
    finally:
        running.stop()
