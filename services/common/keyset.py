"""Keyset pages in SQL: order by (sort column, id) and start after the last row's pair.

The id breaks ties in the sort column's own direction, so (column, id) orders every row once
and a row-value comparison finds where the next page starts through a composite index.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from services.common.errors import InvalidArgument


@dataclass(frozen=True)
class SortKey:
    """A sort column, its direction, and the id column that breaks ties."""

    column: InstrumentedAttribute[Any]
    id_column: InstrumentedAttribute[uuid.UUID]
    descending: bool

    def order(self, statement: Select[Any]) -> Select[Any]:
        """`statement` ordered by (column, id) in this key's direction."""
        if self.descending:
            return statement.order_by(self.column.desc(), self.id_column.desc())
        return statement.order_by(self.column.asc(), self.id_column.asc())

    def after(self, statement: Select[Any], key: tuple[str, str]) -> Select[Any]:
        """`statement` limited to the rows after the row whose (sort value, id) as text is `key`."""
        value, row_id = self._parse(key)
        pair: ColumnElement[Any] = tuple_(self.column, self.id_column)
        bound = tuple_(value, row_id)
        return statement.where(pair < bound if self.descending else pair > bound)

    def of(self, row: Any) -> tuple[str, str]:
        """A row's (sort value, id) as text, for the next page token."""
        value = getattr(row, self.column.key)
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        return text, str(getattr(row, self.id_column.key))

    def _parse(self, key: tuple[str, str]) -> tuple[Any, uuid.UUID]:
        text, row_id = key
        try:
            value: Any = datetime.fromisoformat(text) if isinstance(self.column.type, DateTime) else text
            return value, uuid.UUID(row_id)
        except ValueError as exc:
            raise InvalidArgument("page_token is not valid") from exc
