"""Brute force on login is throttled without letting anyone lock others out, and no answer tells whether a
username exists.

The calls go straight to the auth service from 127.0.0.1, a gateway network, with the gateway's
x-aiorch-client-address header naming a documentation address per test, so the address throttle lands there
and not on the 127.0.0.1 the rest of the suite logs in from. (Through Envoy the header is always the real
peer: tests/security/test_client_address.py.)
"""

from __future__ import annotations

import statistics
import time

import grpc
import httpx
from aiorch.auth.v1 import tokens_pb2, tokens_pb2_grpc

from services.common.config import AuthSettings
from services.common.peer import CLIENT_ADDRESS_HEADER
from tests.figures import Figures
from tests.support import Accounts, unique

# tests/conftest.py: 5 failures per username, 10 per address, within 60 s.
PER_USER, PER_ADDRESS = 5, 10
# The default of AIORCH_LOGIN_MAX_ADDRESSES_PER_ACCOUNT (services/common/config.py).
PER_ACCOUNT_ADDRESSES = AuthSettings.model_fields["login_max_addresses_per_account"].default
ROUNDS = 4  # below the per-user limit, so the wrong-password case never gets throttled


class _Answer:
    """What a login answered: an HTTP-like status, the message and the retry-after hint."""

    def __init__(self, status: int, message: str = "", retry_after: str = "") -> None:
        self.status_code = status
        self.message = message
        self.retry_after = retry_after


HTTP_OF = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.RESOURCE_EXHAUSTED: 429}


def _login(channel: grpc.Channel, username: str, password: str, address: str) -> _Answer:
    stub = tokens_pb2_grpc.TokenServiceStub(channel)
    try:
        stub.ObtainToken(
            tokens_pb2.ObtainTokenRequest(username=username, password=password),
            metadata=((CLIENT_ADDRESS_HEADER, address),),
        )
    except grpc.RpcError as err:
        trailers = {item.key: item.value for item in err.trailing_metadata() or ()}
        return _Answer(HTTP_OF.get(err.code(), 500), err.details() or "", str(trailers.get("retry-after", "")))
    return _Answer(200)


def test_guessing_one_users_password_is_throttled_after_a_few_tries(
    auth_channel: grpc.Channel, accounts: Accounts, figures: Figures
) -> None:
    victim = accounts.create("viewer")
    answers = [
        _login(auth_channel, victim.username, f"guess {i}", "198.51.100.21").status_code for i in range(PER_USER + 3)
    ]
    assert answers[:PER_USER] == [401] * PER_USER
    assert set(answers[PER_USER:]) == {429}
    # The guessing address waits, even with the right password...
    locked = _login(auth_channel, victim.username, victim.password, "198.51.100.21")
    assert locked.status_code == 429
    retry_after = int(locked.retry_after)
    assert 1 <= retry_after <= 60
    # ...but the owner, from anywhere else, is not locked out by it.
    assert _login(auth_channel, victim.username, victim.password, "198.51.100.22").status_code == 200
    figures.add(
        f"one username from one address: {PER_USER} wrong guesses answered 401, then 429 for that address "
        f"(Retry-After {retry_after} s); the owner from another address 200"
    )


def test_a_guess_from_many_addresses_locks_the_account_for_everyone(
    auth_channel: grpc.Channel, accounts: Accounts, figures: Figures
) -> None:
    victim = accounts.create("viewer")
    # One wrong guess each from more addresses than the account allows (AIORCH_LOGIN_MAX_ADDRESSES_PER_ACCOUNT).
    answers = [
        _login(auth_channel, victim.username, "guess", f"203.0.113.{i}").status_code
        for i in range(1, PER_ACCOUNT_ADDRESSES + 3)
    ]
    assert answers[:PER_ACCOUNT_ADDRESSES] == [401] * PER_ACCOUNT_ADDRESSES
    assert set(answers[PER_ACCOUNT_ADDRESSES:]) == {429}
    locked = _login(auth_channel, victim.username, victim.password, "198.51.100.23")
    assert locked.status_code == 429
    figures.add(
        f"one username from {PER_ACCOUNT_ADDRESSES} addresses: locked for everyone (Retry-After {locked.retry_after} s)"
    )


def test_spraying_many_usernames_from_one_address_is_throttled(auth_channel: grpc.Channel, figures: Figures) -> None:
    answers = [
        _login(auth_channel, unique("spray"), "Winter2026!", "198.51.100.31").status_code
        for _ in range(PER_ADDRESS + 3)
    ]
    assert answers[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert set(answers[PER_ADDRESS:]) == {429}
    figures.add(f"one address, many usernames: {PER_ADDRESS} tries answered 401, then 429")


def test_a_wrong_password_and_an_unknown_user_look_alike(
    http: httpx.Client, auth_channel: grpc.Channel, accounts: Accounts, figures: Figures
) -> None:
    user = accounts.create("viewer")
    deactivated = accounts.create("viewer")
    http.delete(f"/api/profiles/{deactivated.id}/", headers=accounts.admin.headers).raise_for_status()
    cases = {
        "wrong password": (user.username, "not it"),
        "unknown user": (unique("ghost"), "not it"),
        "deactivated user": (deactivated.username, deactivated.password),
    }
    bodies = {}
    seconds: dict[str, list[float]] = {case: [] for case in cases}
    # Round-robin, so drift on a busy machine touches every case alike.
    for attempt in range(ROUNDS):
        for index, (case, (username, password)) in enumerate(cases.items()):
            started = time.perf_counter()
            reply = _login(auth_channel, username, password, f"198.51.100.{41 + index * ROUNDS + attempt}")
            seconds[case].append(time.perf_counter() - started)
            assert reply.status_code == 401, case
            bodies[case] = reply.message
    timings = {case: statistics.median(values) * 1000 for case, values in seconds.items()}
    assert len(set(bodies.values())) == 1, bodies
    # An unknown name still pays for a password hash, so timing does not tell either (loosely: noisy machine).
    assert max(timings.values()) < 5 * min(timings.values()) + 20, timings
    figures.add(
        "same 401 message for wrong password / unknown / deactivated user; median ms "
        + ", ".join(f"{case} {ms:.0f}" for case, ms in timings.items())
    )
