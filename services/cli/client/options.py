"""Options several user commands take: which server, how to print, which page of a list."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.client.output import OutputFormat

DEFAULT_SERVER = "localhost:8080"

ServerOption = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="AIORCH_SERVER",
        help="The gateway's gRPC address: host:port (plaintext) or https://host[:port] (TLS).",
        show_default=True,
    ),
]
OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", case_sensitive=False, help="table for people, json for scripts."),
]
PageSizeOption = Annotated[
    int, typer.Option(help="At most this many (server default 50, at most 500).", show_default=False)
]
PageTokenOption = Annotated[str, typer.Option(help="Where the previous page said the next one starts.")]
