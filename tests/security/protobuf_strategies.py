"""Hypothesis strategies that build any protobuf message from its descriptor (test code, no library).

Strings mix plain text with values attackers like (ids, `me`, SQL and path metacharacters, NUL);
numbers reach their type's limits; enums take unknown values too (proto3 enums are open); nested
messages stop at a small depth so a message stays small.
"""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 3
NASTY_STRINGS = (
    "me",
    str(uuid.UUID(int=0)),
    str(uuid.uuid4()),
    "' OR '1'='1' --",
    "%",
    "_",
    "\\",
    "../../../etc/passwd",
    "\x00",
    "a" * 5000,
    "STT",
    "-created_at",
    "admin",
    "http://127.0.0.1:1/",
    "file:///etc/passwd",
)
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([low, high, 0, -1 if low < 0 else 1]), st.integers(low, high))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        return st.one_of(st.text(max_size=40), st.sampled_from(NASTY_STRINGS))
    if cpp in _INT_RANGES:
        return _integers(*_INT_RANGES[cpp])
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return st.booleans()
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if cpp == FieldDescriptor.CPPTYPE_FLOAT else 64)
    if cpp == FieldDescriptor.CPPTYPE_ENUM and field.enum_type is not None:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-5, 2**31 - 1))
    raise TypeError(f"no strategy for {field.full_name}")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _fill_map(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    entry = field.message_type
    assert entry is not None
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    target = getattr(message, field.name)
    for _ in range(draw(st.integers(0, 2))):
        key = draw(_scalar(key_field))
        if value_field.message_type is None:
            target[key] = draw(_scalar(value_field))
        elif depth < MAX_DEPTH:
            target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))


def _fill_message(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    kind = field.message_type
    if depth >= MAX_DEPTH or kind is None:
        return
    if field.is_repeated:
        for item in draw(st.lists(messages(kind, depth + 1), max_size=2)):
            getattr(message, field.name).add().CopyFrom(item)
    else:
        getattr(message, field.name).CopyFrom(draw(messages(kind, depth + 1)))


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    """A message of type `descriptor` with a random subset of its fields set."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if _is_map(field):
            _fill_map(draw, message, field, depth)
        elif field.message_type is not None:
            _fill_message(draw, message, field, depth)
        elif field.is_repeated:
            getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
        else:
            setattr(message, field.name, draw(_scalar(field)))
    return message
