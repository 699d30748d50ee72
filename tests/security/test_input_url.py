"""Input URLs: what may be fetched, and the fetch itself against a server on this machine.

Private, loopback, link-local and other non-public addresses, redirects to them, non-http schemes and
a host whose name resolves differently on a second look (DNS rebinding) are all refused; the allow-list
opens loopback for the tests. The name is resolved once, every address is checked, and the connection
goes to the checked address. A refusal tells the user nothing of how the name resolved (issue 13, finding 9):
the reason, with the address, is in the worker's log and on the exception for operators.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest
from structlog.testing import capture_logs

from services.common.blobs import LocalBlobStore
from services.workers import inputs
from services.workers.engines.base import BadInput
from services.workers.inputs import (
    NOT_REACHABLE,
    IPAddress,
    UnreachableUrl,
    UrlPolicy,
    check_url,
    fetch_url,
    gather_inputs,
    parse_networks,
    refusal,
)
from tests.figures import Figures

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
        port = cast("ThreadingHTTPServer", self.server).server_port
        routes = {
            "/audio.wav": (200, {}, BODY),
            "/missing": (404, {}, b""),
            "/hop": (302, {"Location": "/audio.wav"}, b""),
            "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
            "/to-other-loopback": (
                302,
                {"Location": f"http://127.0.0.2:{port}/a"},
                b"",
            ),
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


def refused(url: str, tmp_path: Path, allow: str = "") -> UnreachableUrl:
    """The refusal of `url`, after checking that its user-visible text is the generic one."""
    with pytest.raises(UnreachableUrl) as caught:
        fetch(url, tmp_path, allow=allow)
    assert str(caught.value) == NOT_REACHABLE
    return caught.value


def test_a_loopback_url_is_refused_without_the_allow_list(server: str, tmp_path: Path) -> None:
    refusal_ = refused(f"{server}/audio.wav", tmp_path)

    assert "loopback address 127.0.0.1, which is not allowed" in refusal_.detail


@pytest.mark.parametrize(
    ("address", "kind"), [("10.0.0.5", "private"), ("169.254.169.254", "link-local"), ("127.0.0.1", "loopback")]
)
def test_a_refusal_tells_the_user_nothing_of_how_the_name_resolved(
    address: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    # Given an internal name that resolves to an internal address
    monkeypatch.setattr(inputs, "resolve", _Rebinder(first=[address], later=[address]))
    # When a job's input_url names it
    with capture_logs() as logged:
        refusal_ = refused("http://billing.internal.test/a.wav", tmp_path)
    # Then the user-visible text names neither the address nor its kind; the log and the exception do
    assert address not in str(refusal_)
    assert kind not in str(refusal_)
    assert f"{kind} address {address}" in refusal_.detail
    assert [(e["event"], e["host"]) for e in logged if address in e.get("reason", "")] == [
        ("input_url refused", "billing.internal.test")
    ]
    figures.add(f"input_url refusal of a {kind} address: the user reads only {NOT_REACHABLE!r}")


def test_a_name_that_does_not_resolve_reads_the_same_as_a_refused_one(tmp_path: Path) -> None:
    # Otherwise the difference would tell which internal names exist.
    unresolvable = refused("http://no-such-host.invalid/a.wav", tmp_path)

    assert "cannot be resolved" in unresolvable.detail


def test_an_allowed_url_is_downloaded(server: str, tmp_path: Path) -> None:
    path = fetch(f"{server}/audio.wav", tmp_path)

    assert path.name == "audio.wav"
    assert path.read_bytes() == BODY


def test_redirects_are_followed_and_checked_again(server: str, tmp_path: Path) -> None:
    assert fetch(f"{server}/hop", tmp_path).read_bytes() == BODY
    assert "link-local" in refused(f"{server}/to-metadata", tmp_path, allow="127.0.0.0/8").detail
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


def test_redirects_to_other_schemes_and_unlisted_addresses_are_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="scheme 'file' is not allowed"):
        fetch(f"{server}/to-file", tmp_path)
    assert "loopback address 127.0.0.2" in refused(f"{server}/to-other-loopback", tmp_path, allow="127.0.0.1/32").detail


class _Rebinder:
    """A resolver hook: the first look gives `first`, every later look gives `later`."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.first = [ipaddress.ip_address(a) for a in first]
        self.later = [ipaddress.ip_address(a) for a in later]
        self.looks = 0

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.looks += 1
        return self.first if self.looks == 1 else self.later


def _port(server: str) -> str:
    return server.rsplit(":", 1)[1]


def test_a_rebinding_host_is_fetched_from_the_address_that_was_checked(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    # Given a name that first resolves to the allowed loopback server, then to a private address
    rebinder = _Rebinder(first=["127.0.0.1"], later=["10.0.0.1"])
    monkeypatch.setattr(inputs, "resolve", rebinder)
    # When it is fetched (the name exists nowhere else: only a pinned connection can reach the server)
    path = fetch(f"http://rebind.test:{_port(server)}/audio.wav", tmp_path, allow="127.0.0.1/32")
    # Then the name was looked up once and the bytes came from the checked address
    assert path.read_bytes() == BODY
    assert rebinder.looks == 1
    figures.add("DNS rebinding: 1 lookup per URL, connection pinned to the checked address")


def test_a_host_with_any_refused_address_is_refused(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "resolve", _Rebinder(first=["93.184.216.34", "10.0.0.1"], later=["93.184.216.34"]))
    assert "private address 10.0.0.1" in refused(f"http://mixed.test:{_port(server)}/audio.wav", tmp_path).detail


def test_a_host_that_rebinds_to_a_public_address_later_is_still_refused_now(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebinder = _Rebinder(first=["169.254.169.254"], later=["93.184.216.34"])
    monkeypatch.setattr(inputs, "resolve", rebinder)
    assert "link-local" in refused(f"http://metadata.test:{_port(server)}/audio.wav", tmp_path).detail
    assert rebinder.looks == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.0.0.1/",
        "http://[::ffff:7f00:1]/",
        "http://0.0.0.0/",
        "http://[fd00::1]/",
        "http://localhost/",
    ],
)
def test_disguised_internal_addresses_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        fetch(url, tmp_path, allow="")
