"""AIP-158 page tokens: opaque to clients, bound to the query that issued them."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

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


def read_page(page_size: int, page_token: str, query: object) -> Page:
    """Turn a request's page_size and page_token into a Page.

    `query` holds the request's filters: a token issued for other filters is refused,
    as AIP-158 asks, instead of silently returning a page of a different list.
    """
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return Page(offset=0, size=size)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
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
    data = {"o": page.offset + returned, "q": _fingerprint(query)}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
