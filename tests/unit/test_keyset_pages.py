"""Keyset page tokens and sort keys: no network, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select

from services.common.errors import InvalidArgument
from services.common.keyset import SortKey
from services.common.pagination import next_keyset_token, read_keyset_page
from services.jobs.models import Job

QUERY = {"p": "project", "s": "PENDING"}


def test_a_first_page_starts_at_the_top() -> None:
    page = read_keyset_page(0, "", QUERY)
    assert (page.size, page.after) == (50, None)


def test_the_next_token_carries_the_last_rows_key() -> None:
    last = ("2026-11-30T10:00:00+00:00", str(uuid.uuid4()))
    token = next_keyset_token(last, has_more=True, query=QUERY)
    assert read_keyset_page(10, token, QUERY).after == last


def test_the_last_page_has_no_next_token() -> None:
    assert next_keyset_token(("a", str(uuid.uuid4())), has_more=False, query=QUERY) == ""


def test_a_token_of_other_filters_is_refused() -> None:
    token = next_keyset_token(("a", str(uuid.uuid4())), has_more=True, query=QUERY)
    with pytest.raises(InvalidArgument, match="does not belong"):
        read_keyset_page(10, token, {**QUERY, "s": "FAILED"})


@pytest.mark.parametrize("token", ["not base64 at all!", "W10", "eyJrIjogM30"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        read_keyset_page(10, token, QUERY)


def test_a_token_with_a_bad_key_is_refused_when_read() -> None:
    key = SortKey(Job.created_at, Job.id, descending=True)
    with pytest.raises(InvalidArgument, match="page_token"):
        key.after(select(Job), ("yesterday", str(uuid.uuid4())))


def test_newest_first_pages_continue_below_the_last_row() -> None:
    key = SortKey(Job.created_at, Job.id, descending=True)
    statement = key.order(key.after(select(Job), (datetime.now(UTC).isoformat(), str(uuid.uuid4()))))
    sql = str(statement.compile(dialect=create_engine("postgresql+psycopg2://").dialect))
    assert "(jobs.jobs.created_at, jobs.jobs.id) < (" in sql
    assert sql.endswith("ORDER BY jobs.jobs.created_at DESC, jobs.jobs.id DESC")
