"""What an anonymous or hostile client can hold of the gateway: bodies, slow headers, content types, path ids.

Issue 13, findings 3 and 9: four anonymous 200 MiB bodies once took Envoy from 154 MiB to 1,432 MiB, a
client that never finished its headers held its connection 95 s or more, `text/plain` bodies were read as
JSON, and a body `id` won over the path's on PATCH.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil

from gateway.render import GatewayLimits
from services.devstack.stack import Endpoints, LocalStack
from tests.figures import Figures
from tests.support import Accounts, make_project, tts_job, unique

MIB = 1024 * 1024
BIG_BODY = 200 * MIB
CHUNK = MIB
LIMITS = GatewayLimits()


class CountingBody:
    """A body streamed from a generator (the test never holds it), counting what the server let through."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        # Valid JSON as far as it goes, one endless string: the transcoder parses as bytes arrive.
        chunk = b'{"name": "' + b"a" * (CHUNK - 10)
        while self.sent < self.size:
            self.sent += len(chunk)
            yield chunk
            chunk = b"a" * CHUNK


def _envoy(local_stack: LocalStack) -> psutil.Process:
    process = psutil.Process(local_stack.supervisor.process("envoy").pid)
    if process.name() != "envoy":  # the parent-death launcher may still sit in front of it
        process = next(p for p in process.children(recursive=True) if p.name() == "envoy")
    return process


def _post_big(gateway_url: str, headers: dict[str, str]) -> tuple[int | None, int, float]:
    """POST a 200 MiB JSON body; the status (None if the gateway cut the upload), bytes sent and seconds."""
    body = CountingBody(BIG_BODY)
    started = time.perf_counter()
    status: int | None = None
    try:
        reply = httpx.post(
            f"{gateway_url}/api/projects/",
            content=body,
            headers={**headers, "content-type": "application/json"},
            timeout=60,
        )
        status = reply.status_code
    except httpx.TransportError:
        # Envoy answers and closes while the client is still writing: the upload is cut short.
        pass
    return status, body.sent, time.perf_counter() - started


def _big_posts_peak(
    local_stack: LocalStack, headers: dict[str, str]
) -> tuple[list[tuple[int | None, int, float]], int]:
    """Four concurrent 200 MiB bodies; their outcomes and Envoy's peak RSS growth over the baseline."""
    stack = local_stack.endpoints
    assert stack is not None
    envoy = _envoy(local_stack)
    baseline = envoy.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, envoy.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(lambda _: _post_big(stack.gateway_url, headers), range(4)))
    finally:
        done.set()
        sampler.join()
    return outcomes, peak - baseline


def test_anonymous_huge_bodies_are_refused_on_their_headers(local_stack: LocalStack, figures: Figures) -> None:
    outcomes, growth = _big_posts_peak(local_stack, {})
    for status, sent, seconds in outcomes:
        assert status in (401, None), status
        assert sent < 32 * MIB, f"the gateway read {sent / MIB:.0f} MiB of an anonymous body"
        assert seconds < 10
    assert growth < 32 * MIB, f"Envoy grew {growth / MIB:.0f} MiB"
    figures.record(
        anonymous_4x200MiB_status=sorted(str(s) for s, _, _ in outcomes),
        most_sent_MiB=round(max(s for _, s, _ in outcomes) / MIB, 1),
        slowest_s=round(max(t for _, _, t in outcomes), 2),
        envoy_rss_growth_MiB=round(growth / MIB, 1),
    )


def test_a_signed_in_huge_json_body_is_413_after_the_json_limit(
    local_stack: LocalStack, accounts: Accounts, figures: Figures
) -> None:
    editor = accounts.create("editor")
    outcomes, growth = _big_posts_peak(local_stack, editor.headers)
    for status, sent, seconds in outcomes:
        assert status in (413, None), status
        assert sent < LIMITS.max_json_body_bytes + 32 * MIB
        assert seconds < 20
    assert 413 in {s for s, _, _ in outcomes}
    assert growth < 64 * MIB, f"Envoy grew {growth / MIB:.0f} MiB"
    figures.record(
        signed_in_4x200MiB_status=sorted(str(s) for s, _, _ in outcomes),
        json_limit_MiB=LIMITS.max_json_body_bytes / MIB,
        envoy_rss_growth_MiB=round(growth / MIB, 1),
    )


def test_a_json_body_under_the_limit_still_passes(http: httpx.Client, accounts: Accounts) -> None:
    # The largest legitimate body: a TTS text of 100,000 characters.
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], "é" * 100_000)
    assert job["id"]


def test_a_client_that_never_finishes_its_headers_is_cut_off(stack: Endpoints, figures: Figures) -> None:
    with socket.create_connection(
        ("127.0.0.1", stack.gateway_port), timeout=LIMITS.request_headers_timeout_seconds * 3
    ) as conn:
        conn.sendall(b"POST /api/projects/ HTTP/1.1\r\nHost: gateway\r\nContent-Length: 10\r\n")
        started = time.perf_counter()
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
        held = time.perf_counter() - started
    assert held < LIMITS.request_headers_timeout_seconds + 3, held
    figures.record(
        partial_headers_closed_after_s=round(held, 1),
        request_headers_timeout_s=LIMITS.request_headers_timeout_seconds,
        answer=received.split(b"\r\n", 1)[0].decode() or "(closed)",
    )


def test_a_text_plain_body_holding_json_is_refused(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    name = unique("plain")
    reply = http.post(
        "/api/projects/", content=f'{{"name": "{name}"}}', headers={**editor.headers, "content-type": "text/plain"}
    )
    assert reply.status_code == 415, reply.text
    assert reply.json()["code"] == 3
    listed = http.get("/api/projects/", headers=editor.headers).json()
    assert name not in {p["name"] for p in listed["projects"]}
    # The same body as JSON is accepted.
    ok = http.post("/api/projects/", json={"name": name}, headers=editor.headers)
    assert ok.status_code == 200, ok.text


def test_a_body_id_that_differs_from_the_path_is_refused(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    mine = tts_job(http, editor, project["id"], "mine")
    other = tts_job(http, editor, project["id"], "other")
    # A path header of the client's own cannot hide the path it asked for: the transcoder writes it.
    forged = {**editor.headers, "x-envoy-original-path": f"/api/jobs/{other['id']}/"}
    reply = http.patch(f"/api/jobs/{mine['id']}/", json={"id": other["id"], "description": "moved"}, headers=forged)
    assert reply.status_code == 400, reply.text
    assert "differs from the path" in reply.json()["message"]
    assert http.get(f"/api/jobs/{other['id']}/", headers=editor.headers).json()["description"] != "moved"
    # Naming the same id in the body, or none, is fine.
    same = http.patch(
        f"/api/jobs/{mine['id']}/", json={"id": mine["id"], "description": "kept"}, headers=editor.headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["description"] == "kept"
