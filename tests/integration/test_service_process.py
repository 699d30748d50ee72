"""The service process itself: real token expiry, metrics, health and graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import jwt
import pytest
from aiorch.auth.v1 import tokens_pb2, tokens_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devstack.stack import Endpoints, free_port
from services.devstack.supervisor import Supervisor, wait_until
from tests.support import ADMIN_PASSWORD, TEST_SERVICE_ENV

AIORCH = str(Path(sys.executable).parent / "aiorch")


def _answers(address: str) -> bool:
    """Whether the process answers health checks at all: NOT_SERVING counts too, unlike probes.grpc_serving."""
    try:
        with grpc.insecure_channel(address) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.RpcError:
        return False
    return True


@dataclass
class Replica:
    """A service process started by a test."""

    address: str
    process: subprocess.Popen[bytes]


def start_auth_replica(stack: Endpoints, supervisor: Supervisor, name: str, **settings: str) -> Replica:
    """Another auth replica on the stack's database, with its keys unless `settings` say otherwise."""
    port = free_port()
    env = {
        **os.environ,
        **TEST_SERVICE_ENV,
        "DATABASE_URL": stack.database_url,
        # The auth service announces revoked sessions on NATS and follows them.
        **stack.nats_env("auth"),
        "AIORCH_GRPC_HOST": "127.0.0.1",
        "AIORCH_GRPC_PORT": str(port),
        "AIORCH_METRICS_PORT": "0",
        "AIORCH_JWT_PUBLIC_KEY_FILE": str(stack.public_key),
        "AIORCH_JWT_PRIVATE_KEY_FILE": str(stack.private_key),
        "AIORCH_DRAIN_DELAY_SECONDS": "0",
        **settings,
    }
    process = supervisor.start(name, [AIORCH, "serve", "auth"], env=env)
    address = f"127.0.0.1:{port}"
    wait_until(lambda: _answers(address), 60, f"the {name} replica")
    return Replica(address, process)


@pytest.fixture
def short_lived_auth(stack: Endpoints, tmp_path: Path) -> Iterator[Replica]:
    """A second auth replica whose access tokens live three seconds (room for a loaded machine)."""
    supervisor = Supervisor(tmp_path)
    try:
        yield start_auth_replica(stack, supervisor, "auth-short", AIORCH_ACCESS_TOKEN_TTL_SECONDS="3")
    finally:
        supervisor.stop_all()


def test_an_access_token_expires_after_its_lifetime(short_lived_auth: Replica) -> None:
    with grpc.insecure_channel(short_lived_auth.address) as channel:
        tokens = tokens_pb2_grpc.TokenServiceStub(channel)
        pair = tokens.ObtainToken(tokens_pb2.ObtainTokenRequest(username="admin", password=ADMIN_PASSWORD))
        tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=pair.access))
        time.sleep(4.1)
        with pytest.raises(grpc.RpcError) as err:
            tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=pair.access))
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "expired" in (err.value.details() or "")
        # The refresh token outlives it and buys a fresh pair.
        assert tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=pair.refresh)).access


def test_sigterm_drains_and_stops_the_service(short_lived_auth: Replica) -> None:
    short_lived_auth.process.send_signal(signal.SIGTERM)
    assert short_lived_auth.process.wait(timeout=15) == 0
    assert not _answers(short_lived_auth.address)


def test_metrics_count_rpcs_by_method_and_code(stack: Endpoints, accounts: object) -> None:
    with grpc.insecure_channel(stack.grpc["auth"]) as channel, pytest.raises(grpc.RpcError):
        tokens_pb2_grpc.TokenServiceStub(channel).VerifyToken(tokens_pb2.VerifyTokenRequest(token="bad"))
    text = httpx.get(f"http://127.0.0.1:{stack.metrics['auth']}/metrics").text
    assert (
        'grpc_server_handled_total{grpc_code="UNAUTHENTICATED",grpc_method="VerifyToken",'
        'grpc_service="aiorch.auth.v1.TokenService",grpc_type="unary"}'
    ) in text
    assert 'grpc_server_handling_seconds_bucket{grpc_method="VerifyToken"' in text


def test_a_rotated_signing_key_keeps_earlier_tokens_valid(stack: Endpoints, tmp_path: Path) -> None:
    # Given: an auth replica that signs with a new key and still accepts the previous one.
    new_private, new_public = tmp_path / "new.pem", tmp_path / "new.pub"
    subprocess.run([AIORCH, "generate-keys", "--private", str(new_private), "--public", str(new_public)], check=True)
    supervisor = Supervisor(tmp_path)
    try:
        address = start_auth_replica(
            stack,
            supervisor,
            "auth-rotated",
            AIORCH_JWT_PRIVATE_KEY_FILE=str(new_private),
            AIORCH_JWT_PUBLIC_KEY_FILE=str(new_public),
            AIORCH_JWT_PREVIOUS_PUBLIC_KEY_FILES=str(stack.public_key),
        ).address
        with grpc.insecure_channel(stack.grpc["auth"]) as old, grpc.insecure_channel(address) as new:
            old_tokens, new_tokens = tokens_pb2_grpc.TokenServiceStub(old), tokens_pb2_grpc.TokenServiceStub(new)
            login = tokens_pb2.ObtainTokenRequest(username="admin", password=ADMIN_PASSWORD)
            before = old_tokens.ObtainToken(login)
            # When: the token signed before the rotation reaches the rotated replica.
            new_tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=before.access))
            after = new_tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=before.refresh))
            # Then: it is accepted, its refresh buys a pair signed with the new key, and the JWKS holds both.
            kids = [k.kid for k in new_tokens.GetJwks(tokens_pb2.GetJwksRequest()).keys]
            assert len(kids) == 2
            assert jwt.get_unverified_header(after.access)["kid"] == kids[0]
            assert jwt.get_unverified_header(before.access)["kid"] == kids[1]
            with pytest.raises(grpc.RpcError):
                old_tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=after.access))
    finally:
        supervisor.stop_all()
    printed = subprocess.run(
        [AIORCH, "jwks", str(new_public), str(stack.public_key)], capture_output=True, text=True, check=True
    )
    assert [k["kid"] for k in json.loads(printed.stdout)["keys"]] == kids
