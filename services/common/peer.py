"""The client's network address, as the gateway saw it.

Envoy resolves the client's address itself (its own peer, or the hop a configured number of trusted proxies
saw: gateway/render.py) and writes it into `x-aiorch-client-address` over any copy the client sent. A service
believes that header only when its own peer is a gateway network (`AIORCH_TRUSTED_PROXIES`); services listen
on loopback or the cluster network, where only the gateway reaches them. `X-Forwarded-For` is never read: its
hops are whatever the client wrote, plus what each proxy appended.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The same name as gateway/render.py's CLIENT_ADDRESS_HEADER (tests/unit/test_gateway_routes.py checks it).
CLIENT_ADDRESS_HEADER = "x-aiorch-client-address"


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


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str, metadata: Iterable[tuple[str, Any]], gateways: Sequence[Network]) -> str:
    """The address a request came from: the gateway's client-address header if the peer is a gateway, else the peer.

    A header that is not one IP address is ignored, so nothing but an address reaches logs and throttle keys.
    """
    direct = peer_ip(peer)
    direct_ip = _ip(direct)
    if direct_ip is None or not any(direct_ip in net for net in gateways):
        return direct
    for key, value in metadata:
        if key == CLIENT_ADDRESS_HEADER:
            forwarded = _ip(value.decode() if isinstance(value, bytes) else str(value))
            return str(forwarded) if forwarded is not None else direct
    return direct
