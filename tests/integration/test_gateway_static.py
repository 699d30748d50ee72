"""The gateway serves built browser files (console, API docs) itself, byte for byte, GET only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.render import DEFAULT_PORTS, GatewayConfig, StaticSite, parse_static_sites, render, upstream
from services.devstack.probes import envoy_ready
from services.devstack.stack import VENV_BIN, free_port
from services.devstack.supervisor import wait_until

# Starts its own Envoy: no fixture of the session stack says so, hence explicit.
pytestmark = pytest.mark.stack

PNG_BYTES = bytes(range(256)) * 400  # binary, larger than Envoy's default 4 KiB direct-response limit


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    (root / "console" / "assets").mkdir(parents=True)
    (root / "console" / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "console" / "assets" / "app-1a2b.js").write_text("console.log('hi')")
    (root / "console" / "assets" / "logo.png").write_bytes(PNG_BYTES)
    (root / "api").mkdir()
    (root / "api" / "openapi.json").write_text('{"openapi": "3.0.3"}')
    return root


@pytest.fixture(scope="module")
def gateway(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("envoy")
    jwks = state / "jwks.json"
    keys = ["--private", str(state / "k.pem"), "--public", str(state / "k.pub"), "--jwks", str(jwks)]
    subprocess.run([str(VENV_BIN / "aiorch"), "generate-keys", *keys], check=True, capture_output=True)
    port, admin = free_port(), free_port()
    config = state / "envoy.yaml"
    config.write_text(
        render(
            GatewayConfig(
                gateway_port=port,
                admin_port=admin,
                descriptor_path=Path(__file__).parents[2] / "gen" / "descriptor.pb",
                jwks_path=jwks,
                upstreams=[upstream(name, "127.0.0.1", p) for name, p in DEFAULT_PORTS.items()],
                listen_address="127.0.0.1",
                static_sites=[StaticSite("/", site)],
            )
        )
    )
    envoy = subprocess.Popen(
        [str(VENV_BIN / "envoy"), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: envoy_ready(admin), 30, "Envoy")
        yield f"http://127.0.0.1:{port}"
    finally:
        envoy.terminate()
        envoy.wait(10)


@pytest.mark.parametrize("path", ["/console", "/console/", "/console/index.html"])
def test_a_folder_answers_with_its_index(gateway: str, path: str) -> None:
    reply = httpx.get(gateway + path)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    assert "<title>console</title>" in reply.text


def test_hashed_assets_are_cached_for_good_and_binary_files_arrive_intact(gateway: str) -> None:
    script = httpx.get(gateway + "/console/assets/app-1a2b.js")
    image = httpx.get(gateway + "/console/assets/logo.png")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert image.content == PNG_BYTES
    assert image.headers["content-type"] == "image/png"


def test_a_document_beside_the_api_is_served_as_json(gateway: str) -> None:
    reply = httpx.get(gateway + "/api/openapi.json")
    assert reply.json() == {"openapi": "3.0.3"}
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_writes_and_unknown_files_get_json_errors(gateway: str) -> None:
    for reply in (httpx.post(gateway + "/console/"), httpx.get(gateway + "/console/missing.js")):
        assert reply.status_code == 404
        assert reply.json()["code"] == 5


def test_static_site_lists_parse_and_bad_ones_are_refused() -> None:
    assert parse_static_sites("/console/=/srv/console, /=/srv/web") == [
        StaticSite("/console", Path("/srv/console")),
        StaticSite("/", Path("/srv/web")),
    ]
    assert parse_static_sites("") == []
    for bad in ("console=/srv", "/console", "/console="):
        with pytest.raises(ValueError, match="expected /prefix=/directory"):
            parse_static_sites(bad)
