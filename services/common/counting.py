"""Row counts for list pages (AIP-158 total_size): exact while cheap, the planner's estimate beyond.

Counting every one of a million matching rows costs more than the page itself; AIP-158 lets an API
answer an estimate, and PostgreSQL's planner has one ready.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

# Up to this many rows total_size is exact.
EXACT_COUNT_LIMIT = 10_000


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, with its parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXPLAIN (FORMAT JSON) {compiler.process(element.statement, **kw)}"


def count_rows(session: Session, statement: Select[Any], exact_limit: int = EXACT_COUNT_LIMIT) -> int:
    """How many rows `statement` selects: exact up to `exact_limit`, else the planner's estimate (never less)."""
    capped = select(func.count()).select_from(statement.limit(exact_limit + 1).subquery())
    counted = session.scalar(capped) or 0
    if counted <= exact_limit:
        return counted
    plan = session.execute(_Explain(statement.order_by(None))).scalar_one()
    return max(counted, int(plan[0]["Plan"]["Plan Rows"]))
