"""Conversions between domain values and protobuf well-known types, used at the edge."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(moment: datetime | None) -> Timestamp | None:
    """A Timestamp for `moment` (None stays None, so the field stays unset)."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
