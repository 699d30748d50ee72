"""Refuse request text that PostgreSQL cannot store: a NUL character in any string of the request.

PostgreSQL `text` and `jsonb` hold no NUL (U+0000); psycopg2 refuses such a parameter with a ValueError,
which would surface as INTERNAL. Checking every request once, before any handler runs, turns it into
INVALID_ARGUMENT naming the field, for every method of every service alike (filters and search terms included).
"""

from __future__ import annotations

from google.protobuf.message import Message

from services.common import errors

NUL = "\x00"


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The dotted name of the first string (or map key) in `message` holding a NUL character, if any."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = list(value.items())
            values = [item for _, item in items]
            if any(isinstance(key, str) and NUL in key for key, _ in items):
                return name
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, str) and NUL in item:
                return name
            if isinstance(item, Message):
                found = nul_field(item, f"{name}.")
                if found:
                    return found
    return None


def check_request_text(request: Message) -> None:
    """Raise InvalidArgument when a string of the request holds a NUL character."""
    field = nul_field(request)
    if field is not None:
        raise errors.InvalidArgument(f"{field} must not contain NUL (\\u0000) characters")
