"""Input files: from the blob store, or fetched from `input_url` with the checks a server-side fetch needs.

A URL fetch must not become a way into the cluster's own network: only http(s), every resolved address is
checked (private, loopback, link-local, multicast and reserved ones are refused unless an allow-list admits
them), the connection goes to the address that was checked (no second DNS answer can swap it), redirects are
followed by hand and checked again, and size and time are limited.

A refusal tells the user only that the URL is not reachable or not allowed: how a name resolves (or that it
does not) is a map of the internal network. The reason, with the address, goes to the worker's log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from services.common.blobs import BlobMissing, BlobStore
from services.common.logging import get_logger
from services.workers.engines.base import BadInput, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 3
ALLOWED_SCHEMES = ("http", "https")
_REDIRECTS = (301, 302, 303, 307, 308)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
# All the user learns when a host is refused, does not resolve, or cannot be reached.
NOT_REACHABLE = "input_url is not reachable or not allowed"

log = get_logger(__name__)


class UnreachableUrl(BadInput):
    """input_url's host is refused or cannot be resolved; `detail` (for the log only) says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(NOT_REACHABLE)
        self.detail = detail


def _unreachable(host: str, detail: str) -> UnreachableUrl:
    log.warning("input_url refused", host=host, reason=detail)
    return UnreachableUrl(detail)


@dataclass(frozen=True)
class UrlPolicy:
    """Limits of an input_url fetch."""

    max_bytes: int
    timeout_seconds: float
    allow_networks: tuple[IPNetwork, ...] = ()


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (`127.0.0.0/8,10.1.0.0/16`); ValueError names a malformed one."""
    networks: list[IPNetwork] = []
    for entry in text.split(","):
        if entry.strip():
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"bad network {entry.strip()!r} in the input allow-list: {exc}") from exc
    return tuple(networks)


def check_url(url: str) -> httpx.URL:
    """The parsed URL if it is an absolute http(s) URL with a host; BadInput otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BadInput(f"input_url {url!r} is not a valid URL") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise BadInput(f"input_url scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https")
    if not parsed.host:
        raise BadInput(f"input_url {url!r} has no host")
    return parsed


def refusal(address: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why an address may not be fetched from, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allow):
        return None
    for kind, flagged in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flagged:
            return f"{kind} address {address}"
    if not address.is_global:
        return f"non-public address {address}"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _unreachable(host, f"cannot be resolved: {exc.strerror}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_address(url: httpx.URL, allow: Sequence[IPNetwork]) -> IPAddress:
    """The address to connect to; UnreachableUrl if any address of the host is refused."""
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(url.host, port)
    for address in addresses:
        reason = refusal(address, allow)
        if reason is not None:
            raise _unreachable(url.host, f"resolves to a {reason}, which is not allowed")
    if not addresses:
        raise _unreachable(url.host, "has no address")
    return addresses[0]


def pinned_request(client: httpx.AsyncClient, url: httpx.URL, address: IPAddress) -> httpx.Request:
    """A GET of `url` sent to `address`, with the original Host header and TLS server name."""
    request = client.build_request(
        "GET", url.copy_with(host=str(address)), headers={"Host": url.netloc.decode("ascii")}
    )
    if url.scheme == "https":
        request.extensions["sni_hostname"] = url.host
    return request


def file_name(url: httpx.URL) -> str:
    """A safe local file name from the URL's last path segment."""
    name = _SAFE_NAME.sub("_", PurePosixPath(url.path).name).lstrip(".")
    return name[:100] or "input"


async def _save(response: httpx.Response, path: Path, max_bytes: int) -> None:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadInput(f"input_url content is larger than the limit of {max_bytes} bytes")
    size = 0
    with path.open("wb") as out:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise BadInput(f"input_url content is larger than the limit of {max_bytes} bytes")
            out.write(chunk)


async def fetch_url(url: str, directory: Path, policy: UrlPolicy) -> Path:
    """Download `url` into `directory`; BadInput for a refused or broken URL, TransientError for faults."""
    current = check_url(url)
    try:
        async with (
            asyncio.timeout(policy.timeout_seconds),
            # trust_env=False: a proxy from the environment would connect to a host we did not check.
            httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=policy.timeout_seconds) as client,
        ):
            for _ in range(MAX_REDIRECTS + 1):
                address = await checked_address(current, policy.allow_networks)
                response = await client.send(pinned_request(client, current, address), stream=True)
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = check_url(str(current.join(response.headers["location"])))
                        continue
                    if response.status_code >= 500 or response.status_code == 429:
                        raise TransientError(f"input_url answered {response.status_code}")
                    if response.status_code >= 400:
                        raise BadInput(f"input_url answered {response.status_code}")
                    path = directory / file_name(current)
                    await _save(response, path, policy.max_bytes)
                    return path
                finally:
                    await response.aclose()
    except TimeoutError as exc:
        raise TransientError(f"input_url download took longer than {policy.timeout_seconds:g} s") from exc
    except httpx.HTTPError as exc:
        # The transport's words can name the checked address or how the connection failed: log them only.
        log.warning("input_url fetch failed", host=current.host, error=str(exc) or type(exc).__name__)
        raise TransientError(NOT_REACHABLE) from exc
    raise BadInput(f"input_url redirected more than {MAX_REDIRECTS} times")


def _download(store: BlobStore, key: str, path: Path) -> None:
    try:
        store.download(key, path)
    except BlobMissing as exc:
        raise BadInput(f"input {key} is not in the blob store") from exc


async def gather_inputs(
    store: BlobStore, keys: Sequence[str], url: str, directory: Path, policy: UrlPolicy
) -> list[Path]:
    """The job's input files in order: its blob keys, else its URL, else none."""
    directory.mkdir(parents=True, exist_ok=True)
    if keys:
        paths: list[Path] = []
        for index, key in enumerate(keys):
            path = directory / f"{index}-{_SAFE_NAME.sub('_', PurePosixPath(key).name)}"
            await asyncio.to_thread(_download, store, key, path)
            paths.append(path)
        return paths
    if url:
        return [await fetch_url(url, directory, policy)]
    return []
