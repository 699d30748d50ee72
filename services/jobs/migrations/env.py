"""Alembic environment of the jobs schema."""

from alembic import context
from sqlalchemy import create_engine

from services.common.migrations import configure_context
from services.jobs.models import SCHEMA, Base

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None
with create_engine(url).connect() as connection:
    configure_context(connection, Base.metadata, SCHEMA)
