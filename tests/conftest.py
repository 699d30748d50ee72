"""One real stack per test session: Postgres, NATS, the services and Envoy on free ports.

Every test that needs a stack (this one, or the chaos suite's own) is marked `stack` here, from the fixtures it
uses directly or through other fixtures, so `pytest -m "not stack"` (make test-fast) runs only the tests that
need nothing running, and a new module cannot forget the marker.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from services.devstack.stack import SERVICES, Endpoints, LocalStack, StackConfig
from tests.figures import print_summary
from tests.support import ADMIN_PASSWORD, TEST_SERVICE_ENV, Accounts, postgres_state_dir, stopped_workers

# The session's stack once started, for the failure report below.
SESSION_STACK = pytest.StashKey[LocalStack]()


@pytest.fixture(scope="session")
def local_stack(pytestconfig: pytest.Config) -> Iterator[LocalStack]:
    """The running stack, for tests that stop and restart its parts; stopped at the end of the session."""
    with postgres_state_dir("stack") as state_dir:
        for running in _running_stack(state_dir):
            pytestconfig.stash[SESSION_STACK] = running
            yield running


def _running_stack(state_dir: Path) -> Iterator[LocalStack]:
    local = LocalStack(
        StackConfig(
            state_dir=state_dir,
            gateway_port=0,
            admin_password=ADMIN_PASSWORD,
            service_env=TEST_SERVICE_ENV,
            log_to_files=True,
            durable_postgres=False,
            # While a service is being built, AIORCH_TEST_SERVICES=auth,projects runs a partial stack.
            services=tuple(os.environ.get("AIORCH_TEST_SERVICES", ",".join(SERVICES)).split(",")),
            workers=int(os.environ.get("AIORCH_TEST_WORKERS", "2")),
        )
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> Endpoints:
    """Where the running stack listens."""
    assert local_stack.endpoints is not None
    return local_stack.endpoints


@pytest.fixture(scope="session")
def auth_channel(stack: Endpoints) -> Iterator[grpc.Channel]:
    """A gRPC channel straight to the auth service."""
    with grpc.insecure_channel(stack.grpc["auth"]) as channel:
        yield channel


@pytest.fixture(scope="session")
def gateway_channel(stack: Endpoints) -> Iterator[grpc.Channel]:
    """A gRPC channel through Envoy."""
    with grpc.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def http(stack: Endpoints) -> Iterator[httpx.Client]:
    """An HTTP client for REST calls through Envoy."""
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def accounts(auth_channel: grpc.Channel) -> Accounts:
    """Creates users with fresh names and logs them in."""
    return Accounts(auth_channel, ADMIN_PASSWORD)


@pytest.fixture
def workers_stopped(local_stack: LocalStack) -> Iterator[None]:
    """No worker runs during the test (jobs stay PENDING); they come back after it."""
    with stopped_workers(local_stack):
        yield


# A fixture that starts real components, and the markers it gives every test that uses it, even indirectly.
MARKERS_BY_FIXTURE: dict[str, tuple[str, ...]] = {
    "local_stack": ("stack",),
    "chaos": ("stack", "chaos"),
    "browser": ("browser",),
}


# tryfirst: -m deselects in pytest's own hook of the same name, which must see these markers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it needs (item.fixturenames is the whole fixture closure)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, markers in MARKERS_BY_FIXTURE.items():
            if fixture in used:
                for marker in markers:
                    item.add_marker(marker)


LOG_LINES_ON_FAILURE = 15


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used the session stack reports which of its children are down and how the workers'
    logs end: a job left PENDING or a timeout says little by itself, and the stack is gone when CI prints."""
    report = yield
    stack = item.config.stash.get(SESSION_STACK, None)
    if (
        report.failed
        and call.when == "call"
        and stack is not None
        and "local_stack" in getattr(item, "fixturenames", ())
    ):
        report.sections.append(("stack", _stack_state(stack)))
    return report


def _stack_state(stack: LocalStack) -> str:
    lines = [f"running: {', '.join(stack.supervisor.running())}", f"exited: {stack.supervisor.exited()}"]
    for log in sorted((stack.state_dir / "logs").glob("*.log")):
        if not log.name.startswith(("worker", "jobs")):
            continue
        tail = log.read_text(errors="replace").splitlines()[-LOG_LINES_ON_FAILURE:]
        lines += [f"--- {log.name}", *tail]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the security and chaos suites measured, so a run's numbers can be quoted."""
    print_summary(terminalreporter)
