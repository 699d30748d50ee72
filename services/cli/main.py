"""`aiorch`: one command inside every image for running and operating the platform."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.client import account, engines, jobs, keys, projects
from services.common.errors import DomainError

if TYPE_CHECKING:
    from services.auth.profiles import ProfileDirectory

# The exit codes of the user commands (services/cli/client/errors.py, docs/cli.md).
EXIT_CODES = (
    "Exit codes: 0 ok; 1 other error, or the watched job FAILED; 2 usage error; "
    "3 not logged in, session expired or UNAUTHENTICATED; 4 the watched job was CANCELLED; "
    "5 NOT_FOUND; 6 PERMISSION_DENIED; 7 INVALID_ARGUMENT; 8 FAILED_PRECONDITION; 9 ALREADY_EXISTS; "
    "10 RESOURCE_EXHAUSTED; 11 UNAVAILABLE or DEADLINE_EXCEEDED. See docs/cli.md."
)

app = typer.Typer(
    help="aiorch: use the platform (login, projects, jobs), run services, migrate the database, manage users, "
    "start the local stack.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
dev = typer.Typer(help="Developer commands.", no_args_is_help=True)
app.add_typer(dev, name="dev")

# User commands, against a server's gateway (AIORCH_SERVER); the modules import gRPC only when run.
app.command(rich_help_panel="User")(account.login)
app.command(rich_help_panel="User")(account.logout)
app.command(rich_help_panel="User")(account.whoami)
app.add_typer(projects.app, name="projects", rich_help_panel="User")
app.add_typer(jobs.app, name="jobs", rich_help_panel="User")
app.add_typer(keys.app, name="keys", rich_help_panel="User")
app.command(rich_help_panel="User")(engines.engines)

# Each service's composition root: a module with `Settings` and `async build_app(settings)`.
SERVICE_MODULES = {
    "auth": "services.auth.app",
    "projects": "services.projects.app",
    "jobs": "services.jobs.app",
}
SERVICES = tuple(SERVICE_MODULES)
# Services whose schema this release migrates, in dependency order.
MIGRATED_SERVICES = SERVICES


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _directory() -> ProfileDirectory:
    from services.auth.app import passwords_from  # noqa: PLC0415 - keeps `aiorch --help` fast
    from services.auth.profiles import ProfileDirectory  # noqa: PLC0415
    from services.common.config import AuthSettings  # noqa: PLC0415
    from services.common.db import Database, make_engine  # noqa: PLC0415

    settings = AuthSettings()
    return ProfileDirectory(Database(make_engine(settings.database_url, 1)), passwords_from(settings))


def _password(password: str | None, env: str) -> str:
    if password:
        return password
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        _fail(f"give --password or set {env}")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def serve(service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]) -> None:
    """Run one service in the foreground until SIGTERM (configured by AIORCH_* variables)."""
    import importlib  # noqa: PLC0415

    from services.common.logging import configure_logging  # noqa: PLC0415
    from services.common.server import run_on_uvloop, run_service  # noqa: PLC0415

    if service not in SERVICE_MODULES:
        _fail(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", 2)
    module = importlib.import_module(SERVICE_MODULES[service])
    settings = module.Settings()
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> None:
        await run_service(await module.build_app(settings), settings)

    run_on_uvloop(main())


@app.command()
def worker(
    types: Annotated[
        str | None, typer.Option(help="Comma-separated job types, e.g. stt,tts (default: AIORCH_WORKER_TYPES).")
    ] = None,
) -> None:
    """Run a worker pool: one durable consumer per job type, until SIGTERM."""
    from services.common.config import WorkerSettings  # noqa: PLC0415
    from services.common.logging import configure_logging  # noqa: PLC0415
    from services.workers.main import run_workers  # noqa: PLC0415

    settings = WorkerSettings()
    if types:
        settings = settings.model_copy(update={"worker_types": types})
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run_workers(settings))
    except ValueError as exc:
        _fail(str(exc), 2)


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="Services to migrate (default: all).")] = None,
) -> None:
    """Bring each service's database schema to the latest revision."""
    from services.common.config import ServiceSettings  # noqa: PLC0415
    from services.common.migrations import upgrade  # noqa: PLC0415

    chosen = services or list(MIGRATED_SERVICES)
    unknown = set(chosen) - set(MIGRATED_SERVICES)
    if unknown:
        _fail(f"no migrations for {', '.join(sorted(unknown))}", 2)
    url = ServiceSettings().database_url
    for service in chosen:
        upgrade(service, url)
        typer.echo(f"migrated {service}")


@app.command("create-user")
def create_user(
    username: str,
    role: Annotated[str, typer.Option(help="admin, editor or viewer.")] = "viewer",
    email: Annotated[str, typer.Option(help="Contact address.")] = "",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: Annotated[str | None, typer.Option(help="Password (else AIORCH_NEW_PASSWORD, else a prompt).")] = None,
) -> None:
    """Create a user."""
    from services.auth.profiles import NewProfile  # noqa: PLC0415

    secret = _password(password, "AIORCH_NEW_PASSWORD")
    try:
        view = _directory().create(None, NewProfile(username, role, secret, email, name))
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"created {view.username} ({view.role.value}) id={view.id}")


@app.command("set-role")
def set_role(username: str, role: str) -> None:
    """Change a user's role."""
    try:
        view = _directory().set_role(username, role)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"{view.username} is now {view.role.value}")


@app.command("set-password")
def set_password(
    username: str,
    password: Annotated[
        str | None, typer.Option(help="New password (else AIORCH_NEW_PASSWORD, else a prompt).")
    ] = None,
) -> None:
    """Set a user's password; their sessions end."""
    secret = _password(password, "AIORCH_NEW_PASSWORD")
    try:
        _directory().set_password(None, username, "", secret)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"password of {username} changed")


@app.command()
def deactivate(username: str) -> None:
    """Deactivate a user: no login, no refresh, sessions revoked."""
    try:
        _directory().set_active(username, active=False)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"{username} deactivated")


@app.command()
def activate(username: str) -> None:
    """Let a deactivated user log in again."""
    try:
        _directory().set_active(username, active=True)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"{username} activated")


@app.command("bootstrap-admin")
def bootstrap_admin(
    username: Annotated[str, typer.Option(help="Login name of the first admin.")] = "admin",
) -> None:
    """Create the first admin if missing (password: AIORCH_ADMIN_PASSWORD, else generated and printed)."""
    given = os.environ.get("AIORCH_ADMIN_PASSWORD") or None
    try:
        password = _directory().ensure_admin(username, given)
    except DomainError as exc:
        _fail(exc.message)
    if password is None:
        typer.echo(f"user {username} exists")
    elif given:
        typer.echo(f"created admin {username} with the password from AIORCH_ADMIN_PASSWORD")
    else:
        typer.echo(f"created admin {username} with generated password: {password}")


@app.command("generate-keys")
def generate_keys(
    private: Annotated[Path, typer.Option(help="Where to write the private key (PEM).")],
    public: Annotated[Path, typer.Option(help="Where to write the public key (PEM).")],
    jwks: Annotated[Path | None, typer.Option(help="Also write the public key as a JWKS (for Envoy).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Create the Ed25519 key pair that signs tokens (and the JWKS the gateway verifies with)."""
    import json  # noqa: PLC0415

    from services.auth.keys import generate_key_pair  # noqa: PLC0415

    if private.exists() and not force:
        _fail(f"{private} exists; pass --force to replace it")
    key = generate_key_pair(private, public)
    if jwks is not None:
        jwks.write_text(json.dumps({"keys": [key.jwk()]}))
    typer.echo(f"wrote {private} and {public} (kid {key.kid})")


@app.command()
def requeue(
    job_ids: Annotated[list[str] | None, typer.Argument(help="PENDING job ids to dispatch again.")] = None,
    pending_older_than: Annotated[
        int | None, typer.Option(help="Instead: every job PENDING for longer than this many seconds.")
    ] = None,
) -> None:
    """Dispatch PENDING jobs again (e.g. after JetStream lost its store); the jobs service publishes them."""
    import uuid  # noqa: PLC0415
    from datetime import timedelta  # noqa: PLC0415

    from services.common.config import JobsSettings  # noqa: PLC0415
    from services.common.db import Database, make_engine  # noqa: PLC0415
    from services.jobs.requeue import requeue as requeue_jobs  # noqa: PLC0415

    if bool(job_ids) == (pending_older_than is not None):
        _fail("give job ids or --pending-older-than, not both", 2)
    try:
        ids = [uuid.UUID(j) for j in job_ids or []]
    except ValueError:
        _fail("job ids are UUIDs", 2)
    age = timedelta(seconds=pending_older_than) if pending_older_than is not None else None
    db = Database(make_engine(JobsSettings().database_url, 1))
    try:
        done = requeue_jobs(db, ids, age)
    except DomainError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    typer.echo(f"requeued {len(done)} job(s)")
    for job_id in done:
        typer.echo(str(job_id))


@app.command()
def queue() -> None:
    """Show each job type's queue: messages waiting, in flight at workers, and workers pulling."""
    from services.common.config import ProcessSettings  # noqa: PLC0415
    from services.common.queues import queue_report  # noqa: PLC0415

    try:
        states = asyncio.run(queue_report(ProcessSettings()))
    except ConnectionError as exc:
        _fail(str(exc))
    typer.echo(f"{'type':<15}{'waiting':>9}{'in flight':>11}{'pulling':>9}")
    for job_type, state in states.items():
        typer.echo(f"{job_type:<15}{state.depth:>9}{state.in_flight:>11}{state.pulls_waiting:>9}")


@app.command()
def jwks(
    public_keys: Annotated[list[Path], typer.Argument(help="PEM public keys; the signing key's first.")],
) -> None:
    """Print a JWKS of public keys (for the gateway), e.g. the new and the previous key during a rotation."""
    import json  # noqa: PLC0415

    from services.auth.keys import public_jwk  # noqa: PLC0415
    from services.common.identity import load_public_key  # noqa: PLC0415

    try:
        keys = [public_jwk(load_public_key(path)) for path in public_keys]
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"keys": keys}))


@dev.command("up")
def dev_up() -> None:
    """Start Postgres, NATS, every service and Envoy locally in the foreground; Ctrl-C stops them all.

    Reads AIORCH_STATE_DIR (default .state), AIORCH_GATEWAY_PORT (default 8080),
    DATABASE_URL and NATS_URL (use those servers instead of starting them) and
    AIORCH_ADMIN_PASSWORD (the first admin's password).
    """
    from services.devstack.stack import run_foreground  # noqa: PLC0415

    raise typer.Exit(run_foreground())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `aiorch` console script."""
    app(args=argv)
