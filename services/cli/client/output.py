"""How commands print: tables for people, JSON (the message as proto3 JSON, snake_case) for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from rich.console import Console

# Width for tables when stdout is not a terminal, so ids are never wrapped in logs and pipes.
PIPE_WIDTH = 200


class OutputFormat(StrEnum):
    """The `--output` choices."""

    # Aligned, human-readable.
    TABLE = "table"
    # One JSON document (or one JSON object per line for streams); stable field names for scripts.
    JSON = "json"


def message_dict(message: Message) -> dict[str, Any]:
    """The message as proto3 JSON with the proto field names and every field, set or not.

    Every field is present so scripts can index it without checking; enums are their names
    ("TTS", "RUNNING"), timestamps RFC 3339, 64-bit integers strings, as the REST API gives them.
    """
    from google.protobuf.json_format import MessageToDict  # noqa: PLC0415 - keeps `aiorch --help` fast

    fields = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    # In the order of the proto (MessageToDict puts unset fields last), so output reads the same every time.
    return {field.name: fields[field.name] for field in message.DESCRIPTOR.fields if field.name in fields}


def console() -> Console:
    """A console on stdout; wide when stdout is a pipe or file."""
    from rich.console import Console  # noqa: PLC0415

    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def print_json(document: object, *, lines: bool = False) -> None:
    """Print `document` as JSON: indented, or on one line (`lines`) for streams of objects."""
    typer.echo(json.dumps(document, separators=(",", ":")) if lines else json.dumps(document, indent=2))
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def print_record(message: Message, output: OutputFormat) -> None:
    """Print one object: as JSON, or a two-column table of its fields."""
    fields = message_dict(message)
    if output is OutputFormat.JSON:
        print_json(fields)
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in fields.items():
        table.add_row(name, _cell(value))
    console().print(table)


def print_page(response: Message, items: Sequence[Message], columns: Sequence[str], output: OutputFormat) -> None:
    """Print a list response: the whole response as JSON, or a table of `columns` of its items and
    where the next page starts."""
    if output is OutputFormat.JSON:
        print_json(message_dict(response))
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column.upper(), no_wrap=column == "id")
    for item in items:
        fields = message_dict(item)
        table.add_row(*(_cell(fields.get(column, "")) for column in columns))
    out = console()
    out.print(table)
    summary = message_dict(response)
    total = summary.get("total_size")
    if total is not None:
        out.print(f"{len(items)} of {total}")
    if summary.get("next_page_token"):
        out.print(f"next page: --page-token {summary['next_page_token']}")


def print_done(text: str, document: dict[str, Any], output: OutputFormat) -> None:
    """Print the outcome of an action without a message of its own: `text`, or `document` as JSON."""
    if output is OutputFormat.JSON:
        print_json(document)
    else:
        typer.echo(text)
