"""Whose address a login counts against: the client's own, as Envoy saw it, never one the client wrote.

Issue 13, finding 5: every client reached auth with the gateway's address, so 12 anonymous bad logins with
random usernames locked admin out for five minutes; and auth believed `X-Forwarded-For` from any local peer.
Two clients are simulated by binding the client socket to different loopback addresses.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.common.peer import CLIENT_ADDRESS_HEADER, client_address, parse_networks
from services.devstack.stack import Endpoints
from tests.figures import Figures
from tests.support import ADMIN_PASSWORD, TEST_SERVICE_ENV, Accounts, unique

PER_ADDRESS = int(TEST_SERVICE_ENV["AIORCH_LOGIN_MAX_FAILURES_PER_ADDRESS"])
PER_USER = int(TEST_SERVICE_ENV["AIORCH_LOGIN_MAX_FAILURES_PER_USER"])
GATEWAYS = parse_networks("127.0.0.1/32,::1/128")


def _client(stack: Endpoints, source: str) -> httpx.Client:
    """An HTTP client to the gateway whose connections come from `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=stack.gateway_url, transport=transport, timeout=10)


@pytest.fixture
def attacker(stack: Endpoints) -> Iterator[httpx.Client]:
    with _client(stack, "127.0.0.2") as client:
        yield client


def _bad_login(client: httpx.Client, headers: dict[str, str] | None = None) -> int:
    body = {"username": unique("spray"), "password": "Winter2026!"}
    return client.post("/api/token/", json=body, headers=headers or {}).status_code


def test_one_address_spraying_usernames_does_not_lock_admin_out_elsewhere(
    stack: Endpoints, attacker: httpx.Client, figures: Figures
) -> None:
    answers = [_bad_login(attacker) for _ in range(PER_ADDRESS + 3)]
    assert answers[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert set(answers[PER_ADDRESS:]) == {429}
    with _client(stack, "127.0.0.3") as admin_client:
        reply = admin_client.post("/api/token/", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert reply.status_code == 200, reply.text
    # The attacker itself still waits, whatever username it tries next.
    locked = attacker.post("/api/token/", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    figures.add(
        f"{len(answers)} bad logins with random usernames from 127.0.0.2: {answers.count(401)}x401 then "
        f"{answers.count(429)}x429; admin from 127.0.0.3 answered {reply.status_code}"
    )


def test_guessing_one_users_password_does_not_lock_its_owner_out_elsewhere(
    stack: Endpoints, accounts: Accounts, figures: Figures
) -> None:
    victim = accounts.create("viewer")
    with _client(stack, "127.0.0.5") as guesser:
        guesses = [
            guesser.post("/api/token/", json={"username": victim.username, "password": f"guess {i}"}).status_code
            for i in range(PER_USER + 2)
        ]
    assert guesses[:PER_USER] == [401] * PER_USER
    assert set(guesses[PER_USER:]) == {429}
    with _client(stack, "127.0.0.6") as owner:
        reply = owner.post("/api/token/", json={"username": victim.username, "password": victim.password})
    assert reply.status_code == 200, reply.text
    figures.add(
        f"{len(guesses)} guesses of one password from 127.0.0.5: {guesses.count(401)}x401 then 429 there; "
        f"the owner from 127.0.0.6 answered {reply.status_code}"
    )


def test_forwarding_headers_a_client_sends_are_not_believed(stack: Endpoints, figures: Figures) -> None:
    answers = []
    with _client(stack, "127.0.0.4") as client:
        for index in range(PER_ADDRESS + 2):
            # A fresh claimed address each time: if either header were believed, no address would fill up.
            claimed = f"198.51.100.{100 + index}"
            forged = {"x-forwarded-for": claimed, CLIENT_ADDRESS_HEADER: claimed, "x-real-ip": claimed}
            answers.append(_bad_login(client, forged))
    assert answers[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert set(answers[PER_ADDRESS:]) == {429}
    figures.add(
        f"forged X-Forwarded-For / {CLIENT_ADDRESS_HEADER}: still counted on the real 127.0.0.4 "
        f"(429 after {PER_ADDRESS})"
    )


def test_the_client_address_header_is_believed_only_from_a_gateway_network() -> None:
    metadata = [(CLIENT_ADDRESS_HEADER, "198.51.100.7")]
    assert client_address("ipv4:127.0.0.1:40000", metadata, GATEWAYS) == "198.51.100.7"
    # Anyone else reaching a service directly keeps its own address, header or not.
    assert client_address("ipv4:127.0.0.5:40000", metadata, GATEWAYS) == "127.0.0.5"
    assert client_address("ipv4:10.1.2.3:40000", metadata, GATEWAYS) == "10.1.2.3"


def test_x_forwarded_for_is_never_believed_even_from_the_gateway() -> None:
    metadata = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")]
    assert client_address("ipv4:127.0.0.1:40000", metadata, GATEWAYS) == "127.0.0.1"


def test_a_client_address_header_that_is_not_an_address_is_ignored() -> None:
    metadata = [(CLIENT_ADDRESS_HEADER, "198.51.100.7, 10.0.0.1 <script>")]
    assert client_address("ipv4:127.0.0.1:40000", metadata, GATEWAYS) == "127.0.0.1"
