"""The user's stored sessions: one access/refresh token pair per server, in a file only they can read."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from services.cli.client.errors import CliError

CONFIG_DIR_ENV = "AIORCH_CONFIG_DIR"
CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    """A logged-in session on one server."""

    username: str
    access: str
    refresh: str


def config_dir() -> Path:
    """`AIORCH_CONFIG_DIR`, else the platform's config dir (`$XDG_CONFIG_HOME/aiorch` on Linux)."""
    given = os.environ.get(CONFIG_DIR_ENV)
    return Path(given) if given else Path(typer.get_app_dir("aiorch"))


class CredentialStore:
    """Reads and writes `credentials.json` (mode 0600), keyed by server address."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CREDENTIALS_FILE

    def get(self, server: str) -> Credentials | None:
        """The session stored for `server`, if any."""
        entry = self._read().get(server)
        if not isinstance(entry, dict):
            return None
        try:
            return Credentials(str(entry["username"]), str(entry["access"]), str(entry["refresh"]))
        except KeyError:
            return None

    def put(self, server: str, credentials: Credentials) -> None:
        """Store (or replace) the session for `server`."""
        servers = self._read()
        servers[server] = asdict(credentials)
        self._write(servers)

    def remove(self, server: str) -> bool:
        """Forget the session for `server`; whether there was one."""
        servers = self._read()
        if servers.pop(server, None) is None:
            return False
        self._write(servers)
        return True

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock: two commands refreshing one session at once would present the same
        refresh token twice, and the server revokes the whole session on reuse."""
        self._ensure_directory()
        with (self.directory / f"{CREDENTIALS_FILE}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, object]:
        try:
            content = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {self.path}: {exc}; run aiorch login again") from exc
        servers = content.get("servers") if isinstance(content, dict) else None
        return dict(servers) if isinstance(servers, dict) else {}

    def _write(self, servers: dict[str, object]) -> None:
        self._ensure_directory()
        # mkstemp creates the file 0600; renaming it over the old one means a reader never sees half
        # a file and the tokens are never readable by others, not even for a moment.
        handle, temporary = tempfile.mkstemp(prefix=".credentials-", dir=self.directory)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump({"servers": servers}, out, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
