"""Input URLs: what may be fetched, and the fetch itself against a server on this machine."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.common.blobs import LocalBlobStore
from services.workers.engines.base import BadInput
from services.workers.inputs import UrlPolicy, check_url, fetch_url, gather_inputs, parse_networks, refusal

LOOPBACK = parse_networks("127.0.0.0/8")
BODY = b"RIFF....WAVEfake audio" * 100


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.5", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "address"),
    ],
)
def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    reason = refusal(ipaddress.ip_address(address))

    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_admitted(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_admits_loopback_and_nothing_else() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), LOOPBACK) is not None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.wav", "gopher://x/", "example.com/a"])
def test_schemes_other_than_http_are_refused(url: str) -> None:
    with pytest.raises(BadInput, match="use http or https"):
        check_url(url)


def test_http_and_https_urls_pass_the_scheme_check() -> None:
    assert check_url("https://example.com/a.wav").host == "example.com"
    assert check_url("http://127.0.0.1:8080/a").port == 8080


def test_a_malformed_allow_list_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/99'")):
        parse_networks("127.0.0.0/8, 10.0.0.0/99")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/audio.wav": (200, {}, BODY),
            "/missing": (404, {}, b""),
            "/hop": (302, {"Location": "/audio.wav"}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
        }
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An HTTP server on the loopback interface."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url: str, tmp_path: Path, allow: str = "127.0.0.0/8", max_bytes: int = 1 << 20) -> Path:
    return asyncio.run(fetch_url(url, tmp_path, UrlPolicy(max_bytes, 5.0, parse_networks(allow))))


def test_a_loopback_url_is_refused_without_the_allow_list(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=re.escape("loopback address 127.0.0.1, which is not allowed")):
        fetch(f"{server}/audio.wav", tmp_path, allow="")


def test_an_allowed_url_is_downloaded(server: str, tmp_path: Path) -> None:
    path = fetch(f"{server}/audio.wav", tmp_path)

    assert path.name == "audio.wav"
    assert path.read_bytes() == BODY


def test_redirects_are_followed_and_checked_again(server: str, tmp_path: Path) -> None:
    assert fetch(f"{server}/hop", tmp_path).read_bytes() == BODY
    with pytest.raises(BadInput, match="link-local"):
        fetch(f"{server}/to-metadata", tmp_path)
    with pytest.raises(BadInput, match="redirected more than 3 times"):
        fetch(f"{server}/loop", tmp_path)


def test_content_over_the_size_limit_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="larger than the limit of 100 bytes"):
        fetch(f"{server}/audio.wav", tmp_path, max_bytes=100)


def test_a_client_error_is_bad_input(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="answered 404"):
        fetch(f"{server}/missing", tmp_path)


def test_blob_inputs_are_downloaded_in_order_and_a_missing_one_is_bad_input(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "a.wav"
    source.write_bytes(b"first")
    store.put_file("inputs/one/a.wav", source)
    policy = UrlPolicy(100, 1.0)

    paths = asyncio.run(gather_inputs(store, ["inputs/one/a.wav"], "", tmp_path / "in", policy))

    assert [p.read_bytes() for p in paths] == [b"first"]
    with pytest.raises(BadInput, match="inputs/none is not in the blob store"):
        asyncio.run(gather_inputs(store, ["inputs/none"], "", tmp_path / "in2", policy))
