"""Alembic migrations, one schema (and one version table) per service."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text

SERVICES_DIR = Path(__file__).resolve().parent.parent


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
