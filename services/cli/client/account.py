"""`aiorch login`, `logout` and `whoami`: the user's session with a server."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.client.errors import CliError, ExitCode, reported
from services.cli.client.options import DEFAULT_SERVER, OutputOption, ServerOption
from services.cli.client.output import OutputFormat, print_done, print_record

if TYPE_CHECKING:
    from services.cli.client.session import Session


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on stdin", ExitCode.USAGE)
        return password
    if not sys.stdin.isatty():
        raise CliError("stdin is not a terminal; pass the password with --password-stdin", ExitCode.USAGE)
    return str(typer.prompt("Password", hide_input=True))


def login(
    username: Annotated[str | None, typer.Argument(help="Login name (else a prompt).", show_default=False)] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Log in and keep the tokens in the user's config dir (refreshed automatically)."""
    from aiorch.auth.v1 import profiles_pb2, tokens_pb2  # noqa: PLC0415 - keeps `aiorch --help` fast

    from services.cli.client.credentials import Credentials, CredentialStore  # noqa: PLC0415
    from services.cli.client.session import CALL_TIMEOUT_SECONDS, Session  # noqa: PLC0415

    with reported():
        if username is None:
            if password_stdin or not sys.stdin.isatty():
                raise CliError("give the username as an argument", ExitCode.USAGE)
            username = str(typer.prompt("Username"))
        password = _read_password(password_stdin)
        store = CredentialStore()
        previous = store.get(server)
        with Session(server, store, Credentials(username, "", "")) as session:
            pair = session.tokens.ObtainToken(
                tokens_pb2.ObtainTokenRequest(username=username, password=password), timeout=CALL_TIMEOUT_SECONDS
            )
            session.credentials = Credentials(username, pair.access, pair.refresh)
            store.put(server, session.credentials)
            if previous is not None:
                # The file keeps one session per server: the replaced one should not stay valid unseen.
                _revoke(session, previous.refresh)
            me = session.unary(session.profiles.GetProfile, profiles_pb2.GetProfileRequest(id="me"))
        if output is OutputFormat.JSON:
            print_record(me, output)
        else:
            typer.echo(f"logged in to {server} as {me.username} ({me.role})")


def _revoke(session: Session, refresh: str) -> None:
    """Revoke a refresh token's session on the server (`TokenService.RevokeToken`)."""
    import grpc  # noqa: PLC0415
    from aiorch.auth.v1 import tokens_pb2  # noqa: PLC0415

    from services.cli.client.session import CALL_TIMEOUT_SECONDS  # noqa: PLC0415

    try:
        session.tokens.RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=refresh), timeout=CALL_TIMEOUT_SECONDS)
    except grpc.RpcError as exc:
        # An expired or already revoked session is over anyway.
        if exc.code() is not grpc.StatusCode.UNAUTHENTICATED:
            raise


def logout(server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """End the session: the server revokes the refresh token, and the stored tokens are removed."""
    from services.cli.client.credentials import CredentialStore  # noqa: PLC0415
    from services.cli.client.session import Session  # noqa: PLC0415

    with reported():
        store = CredentialStore()
        stored = store.get(server)
        if stored is None:
            print_done(f"not logged in to {server}", {"server": server, "logged_out": False}, output)
            return
        with Session(server, store, stored) as session:
            _revoke(session, stored.refresh)
        store.remove(server)
        print_done(f"logged out of {server}", {"server": server, "logged_out": True}, output)


def whoami(server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show the logged-in user's profile."""
    from aiorch.auth.v1 import profiles_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        me = session.unary(session.profiles.GetProfile, profiles_pb2.GetProfileRequest(id="me"))
        print_record(me, output)
