"""SQLAlchemy 2 engine and transactions on psycopg2.

Handlers run the synchronous domain code in a worker thread (`asyncio.to_thread`), so
the event loop that serves gRPC streams never blocks on the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, create_engine
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from services.common.errors import InvalidArgument, Unavailable

# psycopg2 refuses to send a string holding NUL: PostgreSQL text cannot store it.
_NUL_REFUSED = "cannot contain NUL"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def like_pattern(text: str) -> str:
    """A `%text%` ILIKE pattern in which the user's own % and _ match literally (escape is \\)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Base(DeclarativeBase):
    """Declarative base; each service's models set `__table_args__ = {"schema": ...}`."""

    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine whose pool checks connections before use, so a database restart heals itself."""
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


class Database:
    """Hands out sessions; one instance per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def transaction(self) -> AbstractContextManager[Session]:
        """A session whose work commits on success and rolls back on any error."""
        return self._translated(self._sessions.begin)

    def reading(self) -> AbstractContextManager[Connection]:
        """A Core connection in autocommit for one hot read: no ORM session, no BEGIN, no COMMIT or
        ROLLBACK round trips. Each statement sees its own snapshot, so use it for single statements."""
        return self._translated(lambda: self.engine.connect().execution_options(isolation_level="AUTOCOMMIT"))

    @staticmethod
    @contextmanager
    def _translated(opening: Callable[[], AbstractContextManager[Any]]) -> Iterator[Any]:
        """Open and enter a session or connection, mapping database errors (connecting included) to the domain's."""
        try:
            with opening() as handle:
                yield handle
        except OperationalError as exc:
            raise Unavailable("the database is unavailable, try again") from exc
        except DataError as exc:
            # A value the column cannot hold (out of range, malformed) is the caller's input, not our fault.
            raise InvalidArgument("a value is out of range or malformed for where it is stored") from exc
        except ValueError as exc:
            if _NUL_REFUSED in str(exc):
                raise InvalidArgument("text may not contain NUL (0x00) characters") from exc
            raise

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
