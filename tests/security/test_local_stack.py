"""The local stack (`make run`, the tests, the bench) is closed to other users of the machine (issue 13, finding 8).

PostgreSQL wants its password (no trust on loopback), stored media, keys and passwords are owner-only, and
nothing but the gateway listens beyond loopback.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

import httpx
import psutil
import psycopg2
import pytest
from sqlalchemy import make_url

from services.devstack.postgres import PASSWORD_FILE
from services.devstack.stack import Endpoints, LocalStack
from tests.figures import Figures
from tests.support import Accounts, make_project, tts_job, wait_for

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _endpoints(local_stack: LocalStack) -> Endpoints:
    assert local_stack.endpoints is not None
    return local_stack.endpoints


def test_postgres_refuses_a_connection_without_the_password(local_stack: LocalStack, figures: Figures) -> None:
    # Given the stack's PostgreSQL, as any local user would find it
    url = make_url(_endpoints(local_stack).database_url)
    # When a client connects as the superuser without a password, or with a wrong one
    for password in (None, "postgres", "wrong"):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(
                host="127.0.0.1",
                port=url.port,
                user="postgres",
                password=password,
                dbname="postgres",
                connect_timeout=3,
            ).close()
    # Then it is refused, and only the generated password gets in
    psycopg2.connect(
        host="127.0.0.1", port=url.port, user="postgres", password=url.password, dbname="postgres", connect_timeout=3
    ).close()
    figures.add("PostgreSQL: 3 of 3 connections without the password refused (scram-sha-256 on loopback TCP only)")


def test_the_postgres_password_is_not_the_same_for_every_stack(local_stack: LocalStack) -> None:
    stored = (local_stack.state_dir / PASSWORD_FILE).read_text().strip()

    assert len(stored) >= 24
    assert make_url(_endpoints(local_stack).database_url).password == stored


def test_state_files_holding_secrets_are_owner_only(local_stack: LocalStack) -> None:
    state = local_stack.state_dir
    secrets = [
        state / PASSWORD_FILE,
        state / "nats-passwords.json",
        state / "nats.conf",
        state / "keys" / "jwt-private.pem",
        *sorted((state / "logs").glob("*.log")),
    ]

    assert {path.name: _mode(path) for path in secrets} == {path.name: OWNER_ONLY_FILE for path in secrets}
    assert _mode(state / "keys") == OWNER_ONLY_DIR
    assert _mode(state / "logs") == OWNER_ONLY_DIR


def test_the_state_dir_admits_nobody_else(local_stack: LocalStack) -> None:
    # As root, PostgreSQL runs as its own user, whose group may pass through to its data dir (no listing).
    info = local_stack.state_dir.stat()
    expected = OWNER_ONLY_DIR | (stat.S_IXGRP if os.geteuid() == 0 else 0)

    assert stat.S_IMODE(info.st_mode) == expected
    assert stat.S_IMODE(info.st_mode) & stat.S_IRWXO == 0


def test_stored_inputs_and_results_are_owner_only(
    local_stack: LocalStack, http: httpx.Client, accounts: Accounts, figures: Figures
) -> None:
    # Given a finished job: its result was stored by a worker
    owner = accounts.create("editor")
    project = make_project(http, owner)
    job = tts_job(http, owner, project["id"], "Only the owner may read this.")
    # Long: the session stack's two workers may still be busy with jobs earlier tests left (Whisper base and
    # the neural voice take seconds each on a loaded machine), and this test is about file modes, not latency.
    wait_for(http, owner, job["id"], {"COMPLETED"}, timeout=600)
    # When every file and folder of the blob store is looked at
    blob_dir = _endpoints(local_stack).blob_dir
    files = [p for p in blob_dir.rglob("*") if p.is_file()]
    folders = [blob_dir, *(p for p in blob_dir.rglob("*") if p.is_dir())]
    # Then files are 0600 and folders 0700
    assert any(f"results/{job['id']}" in str(p) for p in files)
    assert {str(p): _mode(p) for p in files} == {str(p): OWNER_ONLY_FILE for p in files}
    assert {str(p): _mode(p) for p in folders} == {str(p): OWNER_ONLY_DIR for p in folders}
    figures.add(f"blob store: {len(files)} files 0600, {len(folders)} folders 0700")


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket bound to 127.0.0.1 shows as ::ffff:127.0.0.1
    return address.is_loopback


def _stack_processes(local_stack: LocalStack) -> dict[int, str]:
    """Every running process of the stack (PostgreSQL's backends included), by pid, named after its child.

    Children that earlier tests stopped for good (a second jobs replica) are not listening, so not looked at.
    """
    found: dict[int, str] = {}
    for name in local_stack.supervisor.running():
        try:
            process = psutil.Process(local_stack.supervisor.process(name).pid)
            family = (process, *process.children(recursive=True))
        except psutil.NoSuchProcess:
            continue  # ended between the listing and now: nothing of it listens
        for each in family:
            found[each.pid] = name
    return found


def test_nothing_but_the_gateway_listens_beyond_loopback(local_stack: LocalStack, figures: Figures) -> None:
    # Given every process the stack started
    processes = _stack_processes(local_stack)
    gateway_port = _endpoints(local_stack).gateway_port
    # When their listening sockets are listed
    listening = [
        (processes[c.pid], c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.pid in processes and c.status == psutil.CONN_LISTEN and isinstance(c.laddr, psutil._ntuples.addr)
    ]
    # Then each is on loopback, but the gateway's own port
    beyond = [
        entry
        for entry in listening
        if not _is_loopback(entry[1]) and not (entry[0] == "envoy" and entry[2] == gateway_port)
    ]
    assert beyond == []
    names = {entry[0] for entry in listening}
    assert {"postgres", "nats", "envoy", "auth", "projects", "jobs"} <= names
    assert any(name.startswith("worker-") for name in names), "the workers' metrics were not seen"
    figures.add(f"listeners: {len(listening)} sockets of {len(names)} stack processes, 0 beyond loopback")
