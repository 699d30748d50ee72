"""The `aiorch` admin command, run as an operator would inside a container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt

from services.auth.keys import load_signing_key
from services.devstack.stack import Endpoints
from tests.support import TEST_SERVICE_ENV, unique

AIORCH = str(Path(sys.executable).parent / "aiorch")


def run(stack: Endpoints, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **TEST_SERVICE_ENV, "DATABASE_URL": stack.database_url}
    if password:
        env["AIORCH_NEW_PASSWORD"] = password
    return subprocess.run(
        [AIORCH, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_help_lists_the_admin_commands() -> None:
    out = subprocess.run([AIORCH, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("create-user", "set-role", "set-password", "deactivate", "migrate", "serve"):
        assert command in out


def test_operator_creates_promotes_resets_and_deactivates_a_user(stack: Endpoints, http: httpx.Client) -> None:
    name = unique("ops")
    created = run(stack, "create-user", name, "--role", "viewer", password="first password")
    assert created.returncode == 0, created.stderr
    assert http.post("/api/token/", json={"username": name, "password": "first password"}).status_code == 200

    assert run(stack, "set-role", name, "editor").returncode == 0
    assert run(stack, "set-password", name, password="second password").returncode == 0
    assert http.post("/api/token/", json={"username": name, "password": "first password"}).status_code == 401
    assert http.post("/api/token/", json={"username": name, "password": "second password"}).status_code == 200

    assert run(stack, "deactivate", name).returncode == 0
    assert http.post("/api/token/", json={"username": name, "password": "second password"}).status_code == 401


def test_errors_are_clear_and_exit_non_zero(stack: Endpoints) -> None:
    duplicate = run(stack, "create-user", "admin", "--role", "admin", password="whatever long")
    assert duplicate.returncode == 1
    assert "taken" in duplicate.stderr
    bad_role = run(stack, "set-role", "admin", "king")
    assert bad_role.returncode == 1
    assert "role must be one of" in bad_role.stderr


def test_migrate_is_idempotent(stack: Endpoints) -> None:
    result = run(stack, "migrate")
    assert result.returncode == 0, result.stderr
    assert "migrated auth" in result.stdout


def test_generate_keys_writes_a_pair_and_the_jwks_that_verifies_it(tmp_path: Path) -> None:
    private, public, jwks = tmp_path / "k.pem", tmp_path / "k.pub", tmp_path / "jwks.json"
    result = subprocess.run(
        [AIORCH, "generate-keys", "--private", str(private), "--public", str(public), "--jwks", str(jwks)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert private.stat().st_mode & 0o077 == 0
    token = jwt.encode({"sub": "x"}, load_signing_key(private).private, algorithm="EdDSA")
    (key,) = json.loads(jwks.read_text())["keys"]
    assert jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"])["sub"] == "x"
    again = subprocess.run(
        [AIORCH, "generate-keys", "--private", str(private), "--public", str(public)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert "--force" in again.stderr
