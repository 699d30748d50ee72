"""A service refuses to serve on a schema older than its migrations (services/common/migrations.py
wait_for_schema, called by ServiceCore.start), so a rollout that outruns the migrate Job stays unready."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from services.common.db import make_engine
from services.common.migrations import SchemaBehind, alembic_config, schema_version, upgrade, wait_for_schema
from services.devstack.postgres import start_postgres
from services.devstack.stack import free_port
from services.devstack.supervisor import Supervisor
from tests.support import postgres_state_dir

AIORCH = str(Path(sys.executable).parent / "aiorch")
SERVICE = "jobs"  # the service with the most migrations


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    supervisor = Supervisor()
    with postgres_state_dir("schema-check") as state_dir:
        try:
            yield start_postgres(supervisor, state_dir, free_port(), durable=False)
        finally:
            supervisor.stop_all()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, 1)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SERVICE}" CASCADE'))
    yield engine
    engine.dispose()


def _one_behind_head() -> str:
    """The revision just before this release's head."""
    scripts = ScriptDirectory.from_config(alembic_config(SERVICE, ""))
    (head,) = scripts.get_heads()
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str), "the test needs a service with at least two migrations"
    return previous


def test_the_schema_is_behind_until_the_last_migration_ran(database_url: str, engine: Engine) -> None:
    assert schema_version(SERVICE, engine).behind, "a database never migrated"
    upgrade(SERVICE, database_url, _one_behind_head())
    behind = schema_version(SERVICE, engine)
    assert behind.behind and behind.current == {_one_behind_head()}
    upgrade(SERVICE, database_url)
    assert not schema_version(SERVICE, engine).behind


def test_a_schema_from_a_newer_release_is_not_behind(database_url: str, engine: Engine) -> None:
    """Old pods during a rollout (or a rollback) run on the newer schema: migrations only add."""
    upgrade(SERVICE, database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobs.alembic_version SET version_num = :v"), {"v": "9999_future"})
    assert not schema_version(SERVICE, engine).behind


def test_waiting_ends_when_the_migrate_job_has_run(database_url: str, engine: Engine) -> None:
    upgrade(SERVICE, database_url, _one_behind_head())

    async def scenario() -> None:
        waiting = asyncio.create_task(wait_for_schema(SERVICE, engine, timeout=60, interval=0.1))
        await asyncio.sleep(1.0)
        assert not waiting.done(), "it served on a schema one migration behind"
        await asyncio.to_thread(upgrade, SERVICE, database_url)
        version = await asyncio.wait_for(waiting, 10)
        assert version is not None
        assert not version.behind

    asyncio.run(scenario())


def test_waiting_gives_up_with_schema_behind(database_url: str, engine: Engine) -> None:
    upgrade(SERVICE, database_url, _one_behind_head())
    with pytest.raises(SchemaBehind, match="run `aiorch migrate`"):
        asyncio.run(wait_for_schema(SERVICE, engine, timeout=0.3, interval=0.1))


def test_the_service_process_one_migration_behind_exits_with_a_clear_line(database_url: str, engine: Engine) -> None:
    upgrade(SERVICE, database_url, _one_behind_head())
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AIORCH_SCHEMA_WAIT_SECONDS": "1",
        "AIORCH_GRPC_PORT": str(free_port()),
        "AIORCH_METRICS_PORT": "0",
        "AIORCH_LOG_FORMAT": "json",
        # Nothing listens here: the process must stop before it ever connects to NATS.
        "NATS_URL": f"nats://127.0.0.1:{free_port()}",
    }
    ran = subprocess.run([AIORCH, "serve", SERVICE], env=env, capture_output=True, text=True, timeout=60, check=False)
    output = ran.stdout + ran.stderr
    assert ran.returncode != 0, output
    assert "refusing to serve" in output, output
    assert _one_behind_head() in output, "the log line names the schema's revision"
    assert "SchemaBehind" in output, "it stopped for another reason (it must stop before connecting to NATS)"


def test_an_unreachable_database_does_not_hold_the_start() -> None:
    # A service restarted during a database outage serves (answering UNAVAILABLE) instead of waiting for it.
    unreachable = create_engine(f"postgresql+psycopg2://nobody:none@127.0.0.1:{free_port()}/nothing")
    started = time.monotonic()
    assert asyncio.run(wait_for_schema(SERVICE, unreachable, timeout=60, interval=0.1)) is None
    assert time.monotonic() - started < 30
