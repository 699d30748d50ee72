"""The stack under benchmark and what every section needs from it: users, a project, channels, processes."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc

from bench.echo import PACKAGE as ECHO_PACKAGE
from bench.echo import SERVICE as ECHO_SERVICE
from bench.echo import descriptor_set_with_echo
from gateway.render import GatewayConfig, Upstream, render, upstream
from services.devstack.probes import envoy_ready, grpc_serving
from services.devstack.stack import DESCRIPTOR, VENV_BIN, Endpoints, LocalStack, StackConfig, free_port
from services.devstack.supervisor import wait_until

ROOT = Path(__file__).resolve().parents[1]
# Fresh for every run: the stack lives in a temporary directory and dies with the run.
ADMIN_PASSWORD = secrets.token_urlsafe(16)
PASSWORD = secrets.token_urlsafe(16)

# Cheap hashing (logins are not measured) and tokens that outlive the whole run.
SERVICE_ENV = {
    "AIORCH_ARGON2_TIME_COST": "1",
    "AIORCH_ARGON2_MEMORY_KIB": "1024",
    "AIORCH_ARGON2_PARALLELISM": "1",
    "AIORCH_ACCESS_TOKEN_TTL_SECONDS": "3600",
    "AIORCH_LOG_LEVEL": "WARNING",
    # Bench workers take TTS only, with slots enough that dispatch never waits for a free one.
    "AIORCH_WORKER_TYPES": "TTS",
    "AIORCH_WORKER_CONCURRENCY": "8",
}


@dataclass(frozen=True)
class Account:
    """A logged-in user."""

    user_id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        """gRPC metadata carrying the token."""
        return (("authorization", f"Bearer {self.token}"),)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers carrying the token."""
        return {"authorization": f"Bearer {self.token}"}


@dataclass
class BenchStack:
    """A LocalStack without workers, the echo baseline, and a gateway that fronts both."""

    state_dir: Path
    local: LocalStack = field(init=False)
    endpoints: Endpoints = field(init=False)
    echo_address: str = field(init=False)
    gateway_url: str = field(init=False)
    gateway_admin_port: int = field(init=False)
    admin: Account = field(init=False)
    editor: Account = field(init=False)
    project_id: str = field(init=False)

    def start(self) -> None:
        """Start everything; workers are started by the sections that need them."""
        self.local = LocalStack(
            StackConfig(
                state_dir=self.state_dir,
                gateway_port=0,
                admin_password=ADMIN_PASSWORD,
                service_env=SERVICE_ENV,
                log_to_files=True,
                durable_postgres=False,
                workers=0,
            )
        )
        self.endpoints = self.local.start()
        try:
            self._start_echo_and_gateway()
            self._accounts()
        except BaseException:
            self.stop()
            raise

    def _start_echo_and_gateway(self) -> None:
        echo_port = free_port()
        self.local.supervisor.start("echo", [sys.executable, "-m", "bench.echo", str(echo_port)], cwd=ROOT, env=None)
        self.echo_address = f"127.0.0.1:{echo_port}"
        wait_until(lambda: grpc_serving(self.echo_address), 30, "the echo service")
        descriptor = self.state_dir / "bench-descriptor.pb"
        descriptor.write_bytes(descriptor_set_with_echo(DESCRIPTOR.read_bytes()))
        port, admin_port = free_port(), free_port()
        upstreams = [upstream(name, *_split(address)) for name, address in self.endpoints.grpc.items()]
        upstreams.append(Upstream("echo", (ECHO_PACKAGE,), (ECHO_SERVICE,), *_split(self.echo_address)))
        config = self.state_dir / "bench-envoy.yaml"
        # The stack's own gateway template, rendered with one more upstream: the same Envoy configuration.
        config.write_text(
            render(
                GatewayConfig(
                    gateway_port=port,
                    admin_port=admin_port,
                    descriptor_path=descriptor,
                    jwks_path=self.state_dir / "keys" / "jwks.json",
                    upstreams=upstreams,
                    listen_address="127.0.0.1",
                )
            )
        )
        self.local.supervisor.start(
            "bench-envoy",
            [str(VENV_BIN / "envoy"), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        )
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.gateway_admin_port = admin_port
        wait_until(lambda: envoy_ready(admin_port), 30, "the bench gateway")

    def _accounts(self) -> None:
        with grpc.insecure_channel(self.endpoints.grpc["auth"]) as channel:
            tokens = tokens_pb2_grpc.TokenServiceStub(channel)
            profiles = profiles_pb2_grpc.ProfileServiceStub(channel)
            pair = tokens.ObtainToken(tokens_pb2.ObtainTokenRequest(username="admin", password=ADMIN_PASSWORD))
            admin_md = (("authorization", f"Bearer {pair.access}"),)
            me = profiles.GetProfile(profiles_pb2.GetProfileRequest(id="me"), metadata=admin_md)
            self.admin = Account(me.id, pair.access)
            username = f"bench-{uuid.uuid4().hex[:8]}"
            profile = profiles.CreateProfile(
                profiles_pb2.CreateProfileRequest(username=username, role="editor", password=PASSWORD, name="Bench"),
                metadata=admin_md,
            )
            pair = tokens.ObtainToken(tokens_pb2.ObtainTokenRequest(username=username, password=PASSWORD))
            self.editor = Account(profile.id, pair.access)
        self.project_id = self.create_project()

    def create_project(self) -> str:
        """A new project owned by the editor; its id."""
        with grpc.insecure_channel(self.endpoints.grpc["projects"]) as channel:
            project = projects_pb2_grpc.ProjectServiceStub(channel).CreateProject(
                projects_pb2.CreateProjectRequest(name=f"bench-{uuid.uuid4().hex[:8]}"),
                metadata=self.editor.metadata,
            )
            return project.id

    def start_workers(self, count: int) -> list[str]:
        """Start `count` worker processes; their names."""
        names = [f"worker-{index + 1}" for index in range(count)]
        for name in names:
            self.local.start_worker(name)
        return names

    def stop_workers(self, names: list[str]) -> None:
        """Stop workers started by start_workers."""
        for name in names:
            self.local.supervisor.stop(name)

    def processes(self) -> dict[str, psutil.Process]:
        """Every supervised process by name (Postgres's backends are counted with the postmaster)."""
        found: dict[str, psutil.Process] = {}
        for name in self.local.supervisor.names():
            process = self.local.supervisor.process(name)
            if process.poll() is None:
                found[name] = psutil.Process(process.pid)
        return found

    def stop(self) -> None:
        """Stop every process."""
        self.local.stop()


def resident_bytes(process: psutil.Process) -> int:
    """Resident memory of a process and its children (Postgres forks one backend per connection)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def cpu_seconds(
    processes: dict[str, psutil.Process], with_children: frozenset[str] = frozenset({"postgres"})
) -> dict[str, float]:
    """CPU time (user + system) of each process so far.

    For the processes named in `with_children` (PostgreSQL: one backend per connection) it adds the
    children, live ones and those already exited and reaped (pools open and close overflow
    connections under load). Others count alone: the bench process is the parent of the whole stack.
    """
    seconds: dict[str, float] = {}
    for name, process in processes.items():
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total = times.user + times.system
        if name in with_children:
            total += times.children_user + times.children_system
            for child in process.children(recursive=True):
                try:
                    child_times = child.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += child_times.user + child_times.system
        seconds[name] = total
    return seconds


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process spent between two readings of `cpu_seconds`."""
    return {name: after[name] - before[name] for name in before if name in after}


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def run_checked(argv: list[str], timeout: float) -> str:
    """Run a command, return its stdout; a failure raises with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout
