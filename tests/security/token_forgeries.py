"""Forged and misused access tokens: each function makes one from a running stack's keys and an admin's token.

Every one of them must be refused as UNAUTHENTICATED, by every service (tests/security/test_tokens.py) and
through the gateway (tests/e2e/test_gateway.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

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


def not_yet_valid(stack: Endpoints, accounts: Accounts) -> str:
    return forge(stack.private_key, {"sub": accounts.admin.id, "nbf": int(time.time()) + 3600})


def issued_in_the_future(stack: Endpoints, accounts: Accounts) -> str:
    return forge(stack.private_key, {"sub": accounts.admin.id}, issued=datetime.now(UTC) + timedelta(hours=1))


def without_a_session(stack: Endpoints, accounts: Accounts) -> str:
    claims = jwt.decode(accounts.admin.access, options={"verify_signature": False})
    del claims["fam"]  # correctly signed, but no token family that a logout could revoke
    key = load_pem_private_key(stack.private_key.read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return jwt.encode(claims, key, algorithm="EdDSA")


def wrong_issuer(stack: Endpoints, accounts: Accounts) -> str:
    return forge(stack.private_key, {"sub": accounts.admin.id, "iss": "someone-else"})


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
    not_yet_valid,
    issued_in_the_future,
    without_a_session,
    wrong_issuer,
    wrong_audience,
    refresh_as_access,
]
