"""The client's network address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """Comma-separated CIDRs, e.g. "127.0.0.1/32,10.0.0.0/8"."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def peer_ip(peer: str) -> str:
    """The IP in a gRPC peer string such as "ipv4:127.0.0.1:5000" or "ipv6:%5B::1%5D:5000"."""
    kind, _, rest = unquote(peer).partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return rest or peer


def client_address(peer: str, metadata: Iterable[tuple[str, Any]], trusted: Sequence[Network]) -> str:
    """The address a request came from: the proxy's last X-Forwarded-For hop if the peer is trusted."""
    direct = peer_ip(peer)
    try:
        direct_ip = ipaddress.ip_address(direct)
    except ValueError:
        return direct
    if not any(direct_ip in net for net in trusted):
        return direct
    for key, value in metadata:
        if key == "x-forwarded-for":
            text = value.decode() if isinstance(value, bytes) else str(value)
            hops = [h.strip() for h in text.split(",") if h.strip()]
            if hops:
                return hops[-1][:64]
    return direct
