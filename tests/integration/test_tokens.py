"""Logins and tokens over gRPC, straight to the auth service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc

from services.common.peer import CLIENT_ADDRESS_HEADER
from services.devstack.stack import Endpoints
from tests.support import TEST_SERVICE_ENV, Accounts, forge, own_address, unique

Code = grpc.StatusCode


@pytest.fixture
def tokens(auth_channel: grpc.Channel) -> tokens_pb2_grpc.TokenServiceStub:
    return tokens_pb2_grpc.TokenServiceStub(auth_channel)


def refresh(tokens: tokens_pb2_grpc.TokenServiceStub, token: str) -> tokens_pb2.TokenPair:
    return tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=token))


def verify(tokens: tokens_pb2_grpc.TokenServiceStub, token: str) -> None:
    tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=token))


def test_login_issues_tokens_with_the_documented_claims(accounts: Accounts, stack: Endpoints) -> None:
    user = accounts.create("editor")
    claims = jwt.decode(user.access, options={"verify_signature": False})
    assert {"sub", "role", "jti", "iat", "exp", "iss", "aud"} <= claims.keys()
    assert claims["sub"] == user.id
    assert claims["role"] == "editor"
    assert claims["exp"] - claims["iat"] == int(TEST_SERVICE_ENV["AIORCH_ACCESS_TOKEN_TTL_SECONDS"])
    header = jwt.get_unverified_header(user.access)
    assert header["alg"] == "EdDSA"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    address = own_address()
    with pytest.raises(grpc.RpcError) as wrong:
        accounts.login(user.username, "not the password", address)
    with pytest.raises(grpc.RpcError) as unknown:
        accounts.login(unique("ghost"), "not the password", address)
    assert wrong.value.code() is unknown.value.code() is Code.UNAUTHENTICATED
    assert wrong.value.details() == unknown.value.details()


def test_refresh_rotates_the_pair(accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub) -> None:
    user = accounts.create("viewer")
    pair = refresh(tokens, user.refresh)
    assert pair.refresh != user.refresh
    assert pair.access != user.access
    verify(tokens, pair.access)


def test_reusing_a_spent_refresh_token_revokes_its_family(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    rotated = refresh(tokens, user.refresh)
    with pytest.raises(grpc.RpcError) as reuse:
        refresh(tokens, user.refresh)
    assert reuse.value.code() is Code.UNAUTHENTICATED
    # The thief's use revoked the legitimate holder's newer token too.
    with pytest.raises(grpc.RpcError) as after:
        refresh(tokens, rotated.refresh)
    assert after.value.code() is Code.UNAUTHENTICATED


def test_other_logins_survive_a_reuse_in_one_family(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    other_login = accounts.login(user.username, user.password)
    refresh(tokens, user.refresh)
    with pytest.raises(grpc.RpcError):
        refresh(tokens, user.refresh)
    assert refresh(tokens, other_login.refresh).access


def test_logout_revokes_the_refresh_token(accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub) -> None:
    user = accounts.create("editor")
    tokens.RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=user.refresh))
    with pytest.raises(grpc.RpcError) as err:
        refresh(tokens, user.refresh)
    assert err.value.code() is Code.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError):
        verify(tokens, user.refresh)


def test_verify_accepts_a_valid_token_and_refuses_garbage(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    verify(tokens, user.access)
    verify(tokens, user.refresh)
    with pytest.raises(grpc.RpcError) as err:
        verify(tokens, "not-a-token")
    assert err.value.code() is Code.UNAUTHENTICATED


def test_deactivated_user_cannot_log_in_refresh_or_verify(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub, auth_channel: grpc.Channel
) -> None:
    user = accounts.create("editor")
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    profiles.DeleteProfile(profiles_pb2.DeleteProfileRequest(id=user.id), metadata=accounts.admin.metadata)
    for attempt in (
        lambda: accounts.login(user.username, user.password, own_address()),
        lambda: refresh(tokens, user.refresh),
        lambda: verify(tokens, user.access),
    ):
        with pytest.raises(grpc.RpcError) as err:
            attempt()
        assert err.value.code() is Code.UNAUTHENTICATED


def test_repeated_failures_throttle_the_username_with_a_retry_hint(accounts: Accounts) -> None:
    user = accounts.create("viewer")
    address = own_address()
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as err:
            accounts.login(user.username, "wrong password", address)
        assert err.value.code() is Code.UNAUTHENTICATED
    # Locked: even the right password is refused until the window passes.
    with pytest.raises(grpc.RpcError) as locked:
        accounts.login(user.username, user.password, address)
    assert locked.value.code() is Code.RESOURCE_EXHAUSTED
    trailers = {item.key: item.value for item in locked.value.trailing_metadata() or ()}
    assert 1 <= int(trailers["retry-after"]) <= 60


def test_repeated_failures_from_one_address_throttle_that_address_only(
    tokens: tokens_pb2_grpc.TokenServiceStub, accounts: Accounts
) -> None:
    attacker = ((CLIENT_ADDRESS_HEADER, "198.51.100.77"),)
    for _ in range(10):
        with pytest.raises(grpc.RpcError):
            tokens.ObtainToken(
                tokens_pb2.ObtainTokenRequest(username=unique("spray"), password="guess guess"),
                metadata=attacker,
            )
    with pytest.raises(grpc.RpcError) as locked:
        tokens.ObtainToken(
            tokens_pb2.ObtainTokenRequest(username=unique("spray"), password="guess guess"), metadata=attacker
        )
    assert locked.value.code() is Code.RESOURCE_EXHAUSTED
    user = accounts.create("viewer")
    elsewhere = ((CLIENT_ADDRESS_HEADER, "198.51.100.78"),)
    assert tokens.ObtainToken(
        tokens_pb2.ObtainTokenRequest(username=user.username, password=user.password), metadata=elsewhere
    ).access


def test_jwks_publishes_the_key_that_verifies_access_tokens(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    jwks = tokens.GetJwks(tokens_pb2.GetJwksRequest())
    (key,) = jwks.keys
    public = jwt.PyJWK({"kty": key.kty, "crv": key.crv, "x": key.x}, algorithm="EdDSA")
    claims = jwt.decode(user.access, public.key, algorithms=["EdDSA"], audience="aiorch")
    assert jwt.get_unverified_header(user.access)["kid"] == key.kid
    assert claims["sub"] == user.id


def test_an_access_token_cannot_be_used_as_a_refresh_token(
    accounts: Accounts, tokens: tokens_pb2_grpc.TokenServiceStub
) -> None:
    user = accounts.create("viewer")
    with pytest.raises(grpc.RpcError) as err:
        refresh(tokens, user.access)
    assert err.value.code() is Code.UNAUTHENTICATED


def test_an_expired_refresh_token_is_refused(stack: Endpoints, tokens: tokens_pb2_grpc.TokenServiceStub) -> None:
    token = forge(
        stack.private_key,
        {"typ": "refresh", "jti": str(uuid.uuid4()), "fam": str(uuid.uuid4())},
        issued=datetime.now(UTC) - timedelta(days=8),
        lifetime=timedelta(days=7),
    )
    with pytest.raises(grpc.RpcError) as err:
        refresh(tokens, token)
    assert err.value.code() is Code.UNAUTHENTICATED
    assert "expired" in (err.value.details() or "")
