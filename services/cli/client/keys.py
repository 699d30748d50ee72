"""`aiorch keys ...`: create, list and revoke API keys for programs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from services.cli.client.errors import reported
from services.cli.client.jobs import TIME_FORMATS, timestamp
from services.cli.client.options import DEFAULT_SERVER, OutputOption, PageSizeOption, PageTokenOption, ServerOption
from services.cli.client.output import OutputFormat, message_dict, print_done, print_json, print_page, print_record

app = typer.Typer(help="API keys for programs: create, list, revoke.", no_args_is_help=True)

LIST_COLUMNS = ("id", "prefix", "name", "role", "project_id", "active", "expires_at", "last_used_at")


@app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="What the key is for, 1-200 characters.", show_default=False)],
    role: Annotated[str, typer.Option(help="admin, editor or viewer, no higher than yours; default: yours.")] = "",
    project: Annotated[str, typer.Option(help="Limit the key to this one project (project id).")] = "",
    expires: Annotated[
        datetime | None, typer.Option(formats=TIME_FORMATS, show_default=False, help="When the key stops working.")
    ] = None,
    user: Annotated[str, typer.Option(help="Make the key for this user (admins; profile id).")] = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a key and print it once: store it now, it is not shown again."""
    from aiorch.auth.v1 import keys_pb2  # noqa: PLC0415 - keeps `aiorch --help` fast

    from services.cli.client.session import Session  # noqa: PLC0415

    request = keys_pb2.CreateApiKeyRequest(
        name=name, role=role, project_id=project, expires_at=timestamp(expires), user_id=user
    )
    with reported(), Session.resume(server) as session:
        answer = session.unary(session.keys.CreateApiKey, request)
        if output is OutputFormat.JSON:
            print_json({"key": message_dict(answer.key), "secret": answer.secret})
            return
        print_record(answer.key, output)
        typer.echo(f"\nsecret (shown once): {answer.secret}")


@app.command("list")
def list_keys(
    user: Annotated[str, typer.Option(help="Only this user's keys (admins; profile id).")] = "",
    include_revoked: Annotated[bool, typer.Option("--include-revoked", help="Also list revoked keys.")] = False,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List your keys (admins: everyone's), by prefix: the secret is never shown again."""
    from aiorch.auth.v1 import keys_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    request = keys_pb2.ListApiKeysRequest(
        user_id=user, include_revoked=include_revoked, page_size=page_size, page_token=page_token
    )
    with reported(), Session.resume(server) as session:
        page = session.unary(session.keys.ListApiKeys, request)
        print_page(page, page.keys, LIST_COLUMNS, output)


@app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Key id (the part after `aio_`).", show_default=False)],
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Revoke a key: every service refuses it within about a second."""
    from aiorch.auth.v1 import keys_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        session.unary(session.keys.RevokeApiKey, keys_pb2.RevokeApiKeyRequest(id=key_id.removeprefix("aio_")))
        print_done(f"revoked key {key_id}", {"id": key_id, "revoked": True}, output)
