"""Start and stop the whole platform locally: the same code serves `make run` and the tests."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url

from gateway.render import GatewayConfig, StaticSite, render, upstream
from services.auth.keys import generate_key_pair, load_signing_key
from services.common.messaging import inbox_prefix
from services.common.nats_permissions import COMPONENTS, render_authorization
from services.devstack.postgres import PASSWORD_FILE, start_postgres
from services.devstack.private_files import make_private_dir, write_private
from services.devstack.probes import envoy_ready, grpc_serving
from services.devstack.supervisor import Supervisor, wait_until

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "descriptor.pb"
# `make web` builds the console into console/ and the API docs into api/ here; served at / by the gateway.
STATIC_ROOT = ROOT / "build" / "web"
VENV_BIN = Path(sys.executable).parent
SERVICES = ("auth", "projects", "jobs")


def free_port() -> int:
    """A TCP port nobody listens on right now (so two stacks can run side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StackConfig:
    """What to start and where."""

    state_dir: Path
    gateway_port: int = 8080
    database_url: str | None = None
    nats_url: str | None = None
    admin_password: str | None = None
    # Extra AIORCH_* variables for every service (tests shorten lifetimes and hashing cost).
    service_env: dict[str, str] = field(default_factory=dict)
    # Children log to files under state_dir/logs instead of this terminal.
    log_to_files: bool = False
    durable_postgres: bool = True
    # Worker processes, each taking every job type.
    workers: int = 1
    # Which services to start (all of them but while one is being built).
    services: tuple[str, ...] = SERVICES
    # Browser origins allowed by CORS ("*" for any).
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    # Built browser files the gateway serves from the API's origin (web console, API docs), when built.
    static_root: Path = STATIC_ROOT


@dataclass
class Endpoints:
    """Where the running stack listens."""

    gateway_url: str
    gateway_port: int
    gateway_admin_port: int
    database_url: str
    nats_url: str
    grpc: dict[str, str]
    metrics: dict[str, int]
    public_key: Path
    private_key: Path
    blob_dir: Path
    admin_username: str
    admin_password: str | None
    # NATS password of each component's user (services/common/nats_permissions.py); empty for a NATS
    # given from outside (StackConfig.nats_url), which the stack connects to as whatever it allows.
    nats_passwords: dict[str, str] = field(default_factory=dict)

    def nats_env(self, component: str) -> dict[str, str]:
        """NATS_URL and the credentials of one component's user, as environment variables."""
        env = {"NATS_URL": self.nats_url}
        if self.nats_passwords:
            env |= {"AIORCH_NATS_USER": component, "AIORCH_NATS_PASSWORD": self.nats_passwords[component]}
        return env

    def nats_login(self, component: str) -> dict[str, str]:
        """Keyword arguments of nats.connect for one component's user (its own inbox prefix included)."""
        if not self.nats_passwords:
            return {}
        return {"user": component, "password": self.nats_passwords[component], "inbox_prefix": inbox_prefix(component)}


class LocalStack:
    """Postgres, NATS, the services and Envoy, started in order and stopped in reverse."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir.resolve()
        logs = self.state_dir / "logs" if config.log_to_files else None
        self.supervisor = Supervisor(logs)
        self.endpoints: Endpoints | None = None
        self._nats_passwords_in_use: dict[str, str] = {}

    def _keys(self) -> tuple[Path, Path, Path]:
        keys = self.state_dir / "keys"
        make_private_dir(keys)
        private, public, jwks = keys / "jwt-private.pem", keys / "jwt-public.pem", keys / "jwks.json"
        if private.exists():
            private.chmod(0o600)  # a key written by an older release may be more open
            key = load_signing_key(private)
        else:
            key = generate_key_pair(private, public)
        write_private(jwks, json.dumps({"keys": [key.jwk()]}))
        return private, public, jwks

    def _nats_passwords(self) -> dict[str, str]:
        """One random password per component, kept in the state dir (owner-only) across runs."""
        path = self.state_dir / "nats-passwords.json"
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        passwords = {c: known.get(c) or secrets.token_urlsafe(24) for c in COMPONENTS}
        if passwords != known:
            write_private(path, json.dumps(passwords, indent=2))
        return passwords

    def _nats(self) -> tuple[str, dict[str, str]]:
        if self.config.nats_url:
            return self.config.nats_url, {}
        port = free_port()
        store = self.state_dir / "nats"
        make_private_dir(store)
        passwords = self._nats_passwords()
        config = self.state_dir / "nats.conf"
        # json.dumps quotes a value as the configuration language expects a string.
        write_private(
            config,
            f"listen: {json.dumps(f'127.0.0.1:{port}')}\n"
            f"jetstream {{ store_dir: {json.dumps(str(store))} }}\n"
            + render_authorization({c: json.dumps(p) for c, p in passwords.items()}),
        )
        self.supervisor.start("nats", [str(VENV_BIN / "nats-server"), "-c", str(config)])
        wait_until(lambda: _port_open(port), 15, "nats-server")
        return f"nats://127.0.0.1:{port}", passwords

    def _nats_env(self, component: str) -> dict[str, str]:
        if not self._nats_passwords_in_use:
            return {}
        return {"AIORCH_NATS_USER": component, "AIORCH_NATS_PASSWORD": self._nats_passwords_in_use[component]}

    def _base_env(self, nats: str, metrics_port: int, component: str) -> dict[str, str]:
        return {
            **os.environ,
            "NATS_URL": nats,
            **self._nats_env(component),
            "AIORCH_METRICS_PORT": str(metrics_port),
            "AIORCH_BLOB_DIR": str(self.state_dir / "blobs"),
            "AIORCH_SHUTDOWN_GRACE_SECONDS": "3",
            "AIORCH_LOG_FORMAT": "json" if self.config.log_to_files else "console",
        }

    def worker_env(self, nats: str, metrics_port: int) -> dict[str, str]:
        """The environment of a worker process."""
        env = {
            **self._base_env(nats, metrics_port, "workers"),
            # Only the gateway listens beyond loopback here (a worker in a cluster binds 0.0.0.0 for scraping).
            "AIORCH_METRICS_HOST": "127.0.0.1",
            **self.config.service_env,
        }
        env.pop("AIORCH_ADMIN_PASSWORD", None)
        return env

    def start_worker(self, name: str) -> None:
        """Start one more worker process (tests start several and kill some)."""
        assert self.endpoints is not None
        env = self.worker_env(self.endpoints.nats_url, free_port())
        self.supervisor.start(name, [str(VENV_BIN / "aiorch"), "worker"], env=env, cwd=ROOT)

    def start_replica(self, service: str, label: str) -> str:
        """Start another replica of a service on a free port (tests of multi-replica behaviour); its address."""
        assert self.endpoints is not None
        port = free_port()
        env = self._service_env(service, port, free_port(), self.endpoints.database_url, self.endpoints.nats_url)
        self.supervisor.start(label, [str(VENV_BIN / "aiorch"), "serve", service], env=env, cwd=ROOT)
        address = f"127.0.0.1:{port}"
        wait_until(lambda: grpc_serving(address), 60, f"the {label} replica")
        return address

    def _grpc_port_of(self, name: str) -> int:
        return int(self._addresses[name].rsplit(":", 1)[1])

    def _service_env(self, name: str, grpc_port: int, metrics_port: int, db: str, nats: str) -> dict[str, str]:
        private, public, _ = self._keys_paths
        env = {
            **self._base_env(nats, metrics_port, name),
            "DATABASE_URL": db,
            "AIORCH_GRPC_HOST": "127.0.0.1",
            "AIORCH_GRPC_PORT": str(grpc_port),
            # Only the jobs service serves HTTP (its edge); a replica gets a port of its own.
            "AIORCH_HTTP_PORT": str(self._edge_port if grpc_port == self._grpc_port_of(name) else free_port()),
            "AIORCH_JWT_PUBLIC_KEY_FILE": str(public),
            "AIORCH_JWT_PRIVATE_KEY_FILE": str(private),
            "AIORCH_DRAIN_DELAY_SECONDS": "0",
            "AIORCH_PROJECTS_ADDRESS": self._addresses["projects"],
            **self.config.service_env,
        }
        env.pop("AIORCH_ADMIN_PASSWORD", None)
        return env

    def start(self) -> Endpoints:
        """Start everything; on any failure stop what already started and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Endpoints:
        # Everything below holds secrets or users' media; PostgreSQL's user may only pass through (postgres.py).
        make_private_dir(self.state_dir)
        self._keys_paths = self._keys()
        private, public, jwks = self._keys_paths
        database_url = self.config.database_url or start_postgres(
            self.supervisor, self.state_dir, free_port(), durable=self.config.durable_postgres
        )
        nats_url, self._nats_passwords_in_use = self._nats()
        self._migrate_and_bootstrap(database_url)
        admin_password = self._bootstrap_admin(database_url)

        # Ports are chosen before anything starts, so each service knows where the others are.
        self._addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
        self._edge_port = free_port()
        grpc_ports = {name: self._addresses[name] for name in self.config.services}
        metrics_ports: dict[str, int] = {name: free_port() for name in self.config.services}
        for name in self.config.services:
            port = int(grpc_ports[name].rsplit(":", 1)[1])
            env = self._service_env(name, port, metrics_ports[name], database_url, nats_url)
            self.supervisor.start(name, [str(VENV_BIN / "aiorch"), "serve", name], env=env, cwd=ROOT)
        for name, address in grpc_ports.items():
            wait_until(lambda a=address: grpc_serving(a), 60, f"the {name} service")  # type: ignore[misc]
        for index in range(self.config.workers):
            metrics_ports[f"worker-{index + 1}"] = port = free_port()
            self.supervisor.start(
                f"worker-{index + 1}",
                [str(VENV_BIN / "aiorch"), "worker"],
                env=self.worker_env(nats_url, port),
                cwd=ROOT,
            )

        gateway_port = self.config.gateway_port or free_port()
        admin_port = free_port()
        envoy_config = self.state_dir / "envoy.yaml"
        write_private(
            envoy_config,
            render(
                GatewayConfig(
                    gateway_port=gateway_port,
                    admin_port=admin_port,
                    descriptor_path=DESCRIPTOR,
                    jwks_path=jwks,
                    upstreams=[
                        upstream(name, "127.0.0.1", int(addr.rsplit(":", 1)[1])) for name, addr in grpc_ports.items()
                    ],
                    listen_address="127.0.0.1",
                    edge=("127.0.0.1", self._edge_port) if "jobs" in grpc_ports else None,
                    cors_origins=self.config.cors_origins,
                    static_sites=[StaticSite("/", self.config.static_root)] if self.config.static_root.is_dir() else [],
                )
            ),
        )
        self.supervisor.start(
            "envoy",
            [
                str(VENV_BIN / "envoy"),
                "-c",
                str(envoy_config),
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ],
        )
        wait_until(lambda: envoy_ready(admin_port), 30, "Envoy")
        self.endpoints = Endpoints(
            gateway_url=f"http://127.0.0.1:{gateway_port}",
            gateway_port=gateway_port,
            gateway_admin_port=admin_port,
            database_url=database_url,
            nats_url=nats_url,
            grpc=grpc_ports,
            metrics=metrics_ports,
            public_key=public,
            private_key=private,
            blob_dir=self.state_dir / "blobs",
            admin_username="admin",
            admin_password=admin_password,
            nats_passwords=self._nats_passwords_in_use,
        )
        return self.endpoints

    def _migrate_and_bootstrap(self, database_url: str) -> None:
        from services.common.migrations import upgrade  # noqa: PLC0415

        for name in self.config.services:
            upgrade(name, database_url)

    def _bootstrap_admin(self, database_url: str) -> str | None:
        """Create `admin` on first run; return its password when this run chose or was given it."""
        from services.auth.app import passwords_from  # noqa: PLC0415
        from services.auth.profiles import ProfileDirectory  # noqa: PLC0415
        from services.common.config import AuthSettings  # noqa: PLC0415
        from services.common.db import Database, make_engine  # noqa: PLC0415

        # The same AIORCH_* values the services get, so the admin's hash uses their argon2 cost.
        given = {
            key.removeprefix("AIORCH_").lower(): value
            for key, value in self.config.service_env.items()
            if key.startswith("AIORCH_")
        }
        settings = AuthSettings.model_validate(given)
        db = Database(make_engine(database_url, 1))
        try:
            # None when an earlier run created it: the variable no longer changes its password.
            return ProfileDirectory(db, passwords_from(settings)).ensure_admin("admin", self.config.admin_password)
        finally:
            db.dispose()

    def stop(self) -> None:
        """Stop every process this stack started."""
        self.supervisor.stop_all()


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def run_foreground() -> int:
    """`make run`: start the stack, print where it listens, wait for Ctrl-C or SIGTERM, stop it all."""
    env = os.environ
    state_dir = Path(env.get("AIORCH_STATE_DIR", str(ROOT / ".state")))
    config = StackConfig(
        state_dir=state_dir,
        gateway_port=int(env.get("AIORCH_GATEWAY_PORT", "8080")),
        database_url=env.get("DATABASE_URL"),
        nats_url=env.get("NATS_URL"),
        admin_password=env.get("AIORCH_ADMIN_PASSWORD"),
        cors_origins=[o.strip() for o in env.get("AIORCH_GATEWAY_CORS_ORIGINS", "*").split(",") if o.strip()],
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = LocalStack(config)
    print(f"starting aiorch (state in {stack.state_dir}) ...", flush=True)
    try:
        ep = stack.start()
    except Exception as exc:  # the operator needs the reason, not a traceback
        print(f"could not start: {exc}", file=sys.stderr)
        return 1
    _print_summary(ep, None if config.database_url else stack.state_dir / PASSWORD_FILE)
    code = 0
    while not stop.wait(0.5):
        dead = stack.supervisor.exited()
        if dead:
            print(f"stopping: {', '.join(f'{n} exited with {c}' for n, c in dead)}", file=sys.stderr)
            code = 1
            break
    print("stopping ...", flush=True)
    stack.stop()
    print("stopped", flush=True)
    return code


def _without_password(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def _print_summary(ep: Endpoints, postgres_password: Path | None) -> None:
    lines = [
        "",
        "aiorch is running. Ctrl-C stops everything.",
        f"  gateway (REST, gRPC, gRPC-web): {ep.gateway_url}",
        f"  gateway admin and Envoy stats: http://127.0.0.1:{ep.gateway_admin_port}/stats/prometheus",
        *(
            f"  {name} gRPC: {addr}   metrics: http://127.0.0.1:{ep.metrics[name]}/metrics"
            for name, addr in ep.grpc.items()
        ),
        f"  PostgreSQL: {_without_password(ep.database_url)}"
        + (f"   password in {postgres_password}" if postgres_password else ""),
        f"  NATS: {ep.nats_url}"
        + (
            f"   operator user admin, password in {ep.blob_dir.parent / 'nats-passwords.json'}"
            if ep.nats_passwords
            else ""
        ),
        "",
    ]
    if ep.admin_password:
        lines.append(f"  log in as admin / {ep.admin_password}")
    else:
        lines.append("  log in as admin with the password chosen on the first run")
    lines.append(
        f"  curl -X POST {ep.gateway_url}/api/token/ -H 'content-type: application/json' "
        f'-d \'{{"username":"admin","password":"{ep.admin_password or "..."}"}}\''
    )
    print("\n".join(lines), flush=True)
