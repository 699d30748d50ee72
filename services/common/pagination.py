"""AIP-158 page tokens: opaque to clients, bound to the query that issued them.

Two kinds: an offset (short lists) and a key, the last row's sort value and id (long lists: keyset pages).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    """Where a page starts and how long it is."""

    offset: int
    size: int


def _fingerprint(query: object) -> str:
    blob = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _page_size(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _decode(page_token: str) -> dict[str, Any]:
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError as exc:
        raise InvalidArgument("page_token is not valid") from exc
    if not isinstance(data, dict):
        raise InvalidArgument("page_token is not valid")
    return data


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def read_page(page_size: int, page_token: str, query: object) -> Page:
    """Turn a request's page_size and page_token into a Page.

    `query` holds the request's filters: a token issued for other filters is refused,
    as AIP-158 asks, instead of silently returning a page of a different list.
    """
    size = _page_size(page_size)
    if not page_token:
        return Page(offset=0, size=size)
    data = _decode(page_token)
    try:
        offset = int(data["o"])
        fingerprint = str(data["q"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token is not valid") from exc
    if offset < 0 or fingerprint != _fingerprint(query):
        raise InvalidArgument("page_token does not belong to this query")
    return Page(offset=offset, size=size)


def next_page_token(page: Page, returned: int, has_more: bool, query: object) -> str:
    """The token of the page after `page`, or "" when it was the last."""
    if not has_more:
        return ""
    return _encode({"o": page.offset + returned, "q": _fingerprint(query)})


@dataclass(frozen=True)
class KeysetPage:
    """A page that starts after a row: `after` holds that row's sort value and id (None: the first page).

    Unlike an offset, a key finds its place through an index, so page 1,000 costs what page 1 does,
    and rows inserted meanwhile neither repeat nor skip rows on later pages.
    """

    size: int
    after: tuple[str, str] | None


def read_keyset_page(page_size: int, page_token: str, query: object) -> KeysetPage:
    """Turn page_size and page_token into a KeysetPage; a token of other filters is refused (AIP-158)."""
    size = _page_size(page_size)
    if not page_token:
        return KeysetPage(size=size, after=None)
    data = _decode(page_token)
    try:
        key, row_id = data["k"]
        after = (str(key), str(row_id))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token is not valid") from exc
    if data.get("q") != _fingerprint(query):
        raise InvalidArgument("page_token does not belong to this query")
    return KeysetPage(size=size, after=after)


def next_keyset_token(last: tuple[str, str] | None, has_more: bool, query: object) -> str:
    """The token of the page after the one whose last row's (sort value, id) is `last`; "" after the last page."""
    if not has_more or last is None:
        return ""
    return _encode({"k": list(last), "q": _fingerprint(query)})
