"""Alembic environment of the auth schema."""

from alembic import context
from sqlalchemy import create_engine

from services.auth.models import SCHEMA, Base
from services.common.migrations import configure_context

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None
with create_engine(url).connect() as connection:
    configure_context(connection, Base.metadata, SCHEMA)
