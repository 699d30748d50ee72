"""Alembic migrations, one schema (and one version table) per service."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import OperationalError

from services.common.logging import get_logger

SERVICES_DIR = Path(__file__).resolve().parent.parent
log = get_logger(__name__)


def alembic_config(service: str, database_url: str) -> Config:
    """The Alembic config of `service` (its scripts live in services/<service>/migrations)."""
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring `service`'s schema to `revision`."""
    command.upgrade(alembic_config(service, database_url), revision)


def configure_context(connection: Connection, metadata: MetaData, schema: str) -> None:
    """What every service's env.py does online: own schema, own version table, one transaction."""
    from alembic import context  # noqa: PLC0415 - only importable while Alembic runs env.py

    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=False,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


@dataclass(frozen=True)
class SchemaVersion:
    """Where a service's schema stands against the migrations this release ships."""

    service: str
    current: frozenset[str]  # revisions in the schema's version table (none before the first migration)
    heads: frozenset[str]  # the head revisions of this release's scripts
    known: frozenset[str]  # every revision this release's scripts know

    @property
    def behind(self) -> bool:
        """Whether the schema misses a migration this release needs.

        A revision the scripts do not know comes from a newer release (a rollback after a migration, or old
        pods during a rollout): migrations only add, so this code runs on it and the schema is not behind.
        """
        if self.current - self.known:
            return False
        return not self.heads <= self.current

    def describe(self) -> str:
        found = ", ".join(sorted(self.current)) or "no revision (never migrated)"
        return f"the {self.service} schema is at {found}; this release needs {', '.join(sorted(self.heads))}"


def schema_version(service: str, engine: Engine) -> SchemaVersion:
    """Read `service`'s version table and compare it with the scripts of this release."""
    scripts = ScriptDirectory.from_config(alembic_config(service, str(engine.url)))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table_schema": service})
        current = frozenset(context.get_current_heads())
    return SchemaVersion(
        service=service,
        current=current,
        heads=frozenset(scripts.get_heads()),
        known=frozenset(script.revision for script in scripts.walk_revisions()),
    )


class SchemaBehind(RuntimeError):
    """The database's schema is older than the code: `aiorch migrate` has not run for this release."""


async def wait_for_schema(service: str, engine: Engine, timeout: float, interval: float = 5.0) -> SchemaVersion | None:
    """Return once `service`'s schema has every migration of this release; raise SchemaBehind after `timeout`.

    A service calls this before it serves, so during a rollout its new pods stay unready (no gRPC server,
    no readiness) until the migrate Job has run, and exit with a clear message if it never does. A database
    that cannot be reached does not hold the start: the service serves as it does through any database
    outage (calls answer UNAVAILABLE until it is back), so a restart during an outage does not wait on it;
    None is returned then.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            version = await asyncio.to_thread(schema_version, service, engine)
        except OperationalError as exc:
            log.warning("schema not checked: the database is unreachable", service=service, error=str(exc.orig))
            return None
        if not version.behind:
            return version
        problem = version.describe()
        if time.monotonic() >= deadline:
            log.error(
                "refusing to serve; run `aiorch migrate` (the migrate Job) first", service=service, problem=problem
            )
            raise SchemaBehind(f"{problem}: run `aiorch migrate` (the migrate Job) first")
        log.warning("not serving yet; waiting for `aiorch migrate` (the migrate Job)", service=service, problem=problem)
        await asyncio.sleep(interval)
