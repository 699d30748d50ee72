"""Conversions between domain values and protobuf well-known types, used at the edge."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument


def to_timestamp(moment: datetime | None) -> Timestamp | None:
    """A Timestamp for `moment` (None stays None, so the field stays unset)."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def from_timestamp(stamp: Timestamp, field: str) -> datetime:
    """The UTC moment of a client's Timestamp; INVALID_ARGUMENT for one outside years 1-9999."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is not a valid time (years 1 to 9999)") from None
