"""Forged and broken access tokens are refused by the service itself, not only by the gateway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.devstack.stack import Endpoints
from tests.support import Accounts, forge


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def alg_none(stack: Endpoints, accounts: Accounts) -> str:
    claims = jwt.decode(accounts.admin.access, options={"verify_signature": False})
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def hs256_with_public_key(stack: Endpoints, accounts: Accounts) -> str:
    claims = jwt.decode(accounts.admin.access, options={"verify_signature": False})
    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    signature = hmac.new(stack.public_key.read_bytes(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def foreign_key(stack: Endpoints, accounts: Accounts) -> str:
    return forge(stack.private_key, {"sub": accounts.admin.id}, key=Ed25519PrivateKey.generate())


def tampered_role(stack: Endpoints, accounts: Accounts) -> str:
    viewer = accounts.create("viewer")
    header, body, signature = viewer.access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "admin"
    return f"{header}.{_b64(claims)}.{signature}"


def expired(stack: Endpoints, accounts: Accounts) -> str:
    return forge(
        stack.private_key,
        {"sub": accounts.admin.id},
        issued=datetime.now(UTC) - timedelta(hours=1),
        lifetime=timedelta(minutes=15),
    )


def wrong_audience(stack: Endpoints, accounts: Accounts) -> str:
    return forge(stack.private_key, {"sub": accounts.admin.id, "aud": "someone-else"})


def refresh_as_access(stack: Endpoints, accounts: Accounts) -> str:
    return accounts.admin.refresh


ATTACKS: list[Callable[[Endpoints, Accounts], str]] = [
    alg_none,
    hs256_with_public_key,
    foreign_key,
    tampered_role,
    expired,
    wrong_audience,
    refresh_as_access,
]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_forged_tokens_are_unauthenticated_at_the_service(
    attack: Callable[[Endpoints, Accounts], str],
    stack: Endpoints,
    accounts: Accounts,
    auth_channel: grpc.Channel,
) -> None:
    token = attack(stack, accounts)
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    with pytest.raises(grpc.RpcError) as err:
        profiles.ListProfiles(profiles_pb2.ListProfilesRequest(), metadata=(("authorization", f"Bearer {token}"),))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_correctly_signed_token_passes(stack: Endpoints, accounts: Accounts, auth_channel: grpc.Channel) -> None:
    token = forge(stack.private_key, {"sub": accounts.admin.id})
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    reply = profiles.GetProfile(
        profiles_pb2.GetProfileRequest(id="me"), metadata=(("authorization", f"Bearer {token}"),)
    )
    assert reply.username == "admin"


def test_a_call_without_a_token_is_unauthenticated(auth_channel: grpc.Channel) -> None:
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    with pytest.raises(grpc.RpcError) as err:
        profiles.ListProfiles(profiles_pb2.ListProfilesRequest())
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
