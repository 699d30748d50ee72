"""Drain the gateway before its pod stops: the Kubernetes preStop hook of the gateway container.

Envoy closes its listeners at once on SIGTERM, cutting every call in flight. This runs first, through the
loopback admin interface (it has no authentication, so it is reachable only from inside the pod):

1. ``/healthcheck/fail``: ``/ready`` answers 503, so the readiness probe and load balancers take the pod out,
   and Envoy asks every client to reconnect elsewhere (``connection: close`` on HTTP/1.1, GOAWAY on HTTP/2).
2. After ``unready_seconds`` (for endpoints and load balancers to catch up; new connections are still
   served meanwhile), ``/drain_listeners?graceful``: the listeners close after Envoy's ``--drain-time-s``.
3. Wait until the listeners are closed and no client connection is left, or ``drain_seconds`` have passed;
   then the kubelet sends SIGTERM, and whatever is still open (a quiet watch stream) is cut; its client
   reconnects to another pod.

Only the standard library: the gateway image carries Python for gateway/render.py and nothing else.
"""

from __future__ import annotations

import argparse
import re
import time
import urllib.request

# The public listeners' connection managers (gateway/envoy.yaml.tmpl and render.py's redirect listener).
ACTIVE_CONNECTIONS = re.compile(r"^http\.(gateway|http_redirect)\.downstream_cx_active: (\d+)$", re.MULTILINE)
# Counts the listeners Envoy closed; all close together once the graceful drain time has passed.
LISTENERS_STOPPED = re.compile(r"^listener_manager\.listener_stopped: (\d+)$", re.MULTILINE)


def _admin(admin_port: int, path: str, *, method: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - a fixed loopback http URL
        text: str = reply.read().decode()
        return text


def active_connections(admin_port: int) -> int:
    """Client connections open on the public listeners."""
    stats = _admin(admin_port, "/stats?filter=downstream_cx_active", method="GET")
    return sum(int(count) for _, count in ACTIVE_CONNECTIONS.findall(stats))


def listeners_stopped(admin_port: int) -> bool:
    """Whether Envoy has closed its listeners (after ``/drain_listeners?graceful`` and its drain time)."""
    match = LISTENERS_STOPPED.search(_admin(admin_port, "/stats?filter=listener_stopped", method="GET"))
    return bool(match and int(match.group(1)))


def drain(admin_port: int, *, unready_seconds: float, drain_seconds: float, poll_seconds: float = 0.5) -> int:
    """Fail health, wait, drain the listeners; wait until they are closed and the clients gone.

    Returns the client connections still open when it gave up (0: a clean drain).
    """
    _admin(admin_port, "/healthcheck/fail", method="POST")
    time.sleep(unready_seconds)
    _admin(admin_port, "/drain_listeners?graceful", method="POST")
    deadline = time.monotonic() + drain_seconds
    while time.monotonic() < deadline:
        left = active_connections(admin_port)
        if not left and listeners_stopped(admin_port):
            return 0
        time.sleep(poll_seconds)
    return active_connections(admin_port)


def main() -> None:
    """The preStop hook: ``python -m gateway.drain --admin-port 9901 --unready-seconds 10 --drain-seconds 20``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--unready-seconds", type=float, required=True)
    parser.add_argument("--drain-seconds", type=float, required=True)
    args = parser.parse_args()
    drain(args.admin_port, unready_seconds=args.unready_seconds, drain_seconds=args.drain_seconds)


if __name__ == "__main__":
    main()
