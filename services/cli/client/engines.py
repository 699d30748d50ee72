"""`aiorch engines`: what this deployment's workers can do, per job type."""

from __future__ import annotations

import typer

from services.cli.client.errors import reported
from services.cli.client.options import DEFAULT_SERVER, OutputOption, ServerOption
from services.cli.client.output import OutputFormat, console, message_dict, print_json


def engines(server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """List per job type the engines, models, languages, voices and translation pairs the workers have now."""
    from aiorch.jobs.v1 import engines_pb2, types_pb2  # noqa: PLC0415 - keeps `aiorch --help` fast
    from rich.table import Table  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        answer = session.unary(session.engines.ListEngines, engines_pb2.ListEnginesRequest())
        if output is OutputFormat.JSON:
            print_json(message_dict(answer))
            return
        table = Table("type", "workers", "models", "voices", "languages", "pairs")
        for entry in answer.engines:
            pairs = [f"{p.source}>{p.target}" + (f" (via {p.via})" if p.via else "") for p in entry.pairs]
            table.add_row(
                types_pb2.JobType.Name(entry.type),
                str(entry.workers),
                ", ".join(entry.models),
                ", ".join(f"{v.name} ({'/'.join(v.languages)}, {v.sex})" for v in entry.voices),
                _languages(list(entry.languages)),
                ", ".join(pairs),
            )
        console().print(table)
        if not answer.engines:
            typer.echo("no worker has reported yet")


def _languages(languages: list[str], shown: int = 12) -> str:
    more = " ..." if len(languages) > shown else ""
    return f"{len(languages)}: {', '.join(languages[:shown])}{more}"
