"""Pure pieces of the user CLI: the credential file, token expiry, exit codes, and names kept equal to the protos."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import pytest
from aiorch.jobs.v1 import types_pb2

from services.cli.client.credentials import Credentials, CredentialStore
from services.cli.client.errors import ExitCode, exit_code_for
from services.cli.client.jobs import JobStateName
from services.cli.client.session import token_expiry


def unsigned_token(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'EdDSA'})}.{part(claims)}.signature"


def test_the_store_keeps_one_private_session_per_server(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "aiorch")
    store.put("a:1", Credentials("alice", "access-a", "refresh-a"))
    store.put("b:2", Credentials("bob", "access-b", "refresh-b"))

    assert store.get("a:1") == Credentials("alice", "access-a", "refresh-a")
    assert store.get("b:2") == Credentials("bob", "access-b", "refresh-b")
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.directory.stat().st_mode & 0o777 == 0o700
    assert store.remove("a:1")
    assert store.get("a:1") is None
    assert not store.remove("a:1")
    assert store.get("b:2") is not None
    assert [p.name for p in store.directory.iterdir() if p.name.startswith(".credentials-")] == []


def test_the_config_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIORCH_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert CredentialStore().path == tmp_path / "xdg" / "aiorch" / "credentials.json"
    monkeypatch.setenv("AIORCH_CONFIG_DIR", str(tmp_path / "own"))
    assert CredentialStore().path == tmp_path / "own" / "credentials.json"


def test_token_expiry_reads_exp_and_tolerates_garbage() -> None:
    assert token_expiry(unsigned_token({"exp": 1_900_000_000})) == 1_900_000_000
    assert token_expiry(unsigned_token({"sub": "x"})) is None
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.%%%.c") is None


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, ExitCode.UNAUTHENTICATED),
        (grpc.StatusCode.NOT_FOUND, ExitCode.NOT_FOUND),
        (grpc.StatusCode.PERMISSION_DENIED, ExitCode.PERMISSION_DENIED),
        (grpc.StatusCode.INVALID_ARGUMENT, ExitCode.INVALID_ARGUMENT),
        (grpc.StatusCode.FAILED_PRECONDITION, ExitCode.FAILED_PRECONDITION),
        (grpc.StatusCode.ALREADY_EXISTS, ExitCode.ALREADY_EXISTS),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ExitCode.RESOURCE_EXHAUSTED),
        (grpc.StatusCode.UNAVAILABLE, ExitCode.UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ExitCode.UNAVAILABLE),
        (grpc.StatusCode.INTERNAL, ExitCode.ERROR),
    ],
)
def test_each_status_code_has_a_fixed_exit_code(code: grpc.StatusCode, exit_code: ExitCode) -> None:
    assert exit_code_for(code) is exit_code


def test_the_exit_codes_do_not_collide_with_the_watch_outcomes() -> None:
    assert len({code.value for code in ExitCode}) == len(ExitCode)
    assert (ExitCode.OK, ExitCode.ERROR, ExitCode.CANCELLED) == (0, 1, 4)


def test_the_state_choices_are_the_api_names() -> None:
    assert [s.value for s in JobStateName] == [n for n, number in types_pb2.JobState.items() if number]
