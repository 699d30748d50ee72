"""Tokens: forged, broken and revoked access tokens are refused by every service itself.

Forgeries (alg none, HS256 with the public key, a foreign key, a tampered role, expired, not yet
valid, wrong audience, a refresh token used as access token) never verify. Revocations (logout, a
deactivated user, a changed role, a spent refresh token presented again) reach every service
through the `token_revocations` bucket within a bounded time, measured and printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import jwt
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc

from services.devstack.probes import grpc_serving
from services.devstack.stack import Endpoints, LocalStack
from services.devstack.supervisor import wait_until
from tests.figures import Figures
from tests.security.token_forgeries import ATTACKS
from tests.support import Accounts, User, forge

Probe = Callable[[str], object]


@pytest.fixture(scope="module")
def probes(stack: Endpoints) -> Iterator[dict[str, Probe]]:
    """One cheap authenticated call per service, straight to it (no gateway in between)."""
    with (
        grpc.insecure_channel(stack.grpc["auth"]) as auth,
        grpc.insecure_channel(stack.grpc["projects"]) as projects,
        grpc.insecure_channel(stack.grpc["jobs"]) as jobs,
    ):
        profiles = profiles_pb2_grpc.ProfileServiceStub(auth)
        catalog = projects_pb2_grpc.ProjectServiceStub(projects)
        book = jobs_pb2_grpc.JobServiceStub(jobs)

        def bearer(token: str) -> tuple[tuple[str, str]]:
            return (("authorization", f"Bearer {token}"),)

        yield {
            "auth": lambda t: profiles.GetProfile(profiles_pb2.GetProfileRequest(id="me"), metadata=bearer(t)),
            "projects": lambda t: catalog.ListProjects(
                projects_pb2.ListProjectsRequest(page_size=1), metadata=bearer(t)
            ),
            "jobs": lambda t: book.ListJobs(jobs_pb2.ListJobsRequest(page_size=1), metadata=bearer(t)),
        }


def _code(probe: Probe, token: str) -> grpc.StatusCode:
    try:
        probe(token)
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_forged_tokens_are_unauthenticated_at_every_service(
    attack: Callable[[Endpoints, Accounts], str],
    stack: Endpoints,
    accounts: Accounts,
    probes: dict[str, Probe],
    figures: Figures,
) -> None:
    token = attack(stack, accounts)
    codes = {service: _code(probe, token) for service, probe in probes.items()}
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes
    figures.add(f"{attack.__name__}: refused by {len(codes)}/{len(probes)} services (UNAUTHENTICATED)")


def _refused_everywhere_within(probes: dict[str, Probe], token: str, timeout: float) -> float:
    """Seconds until every service refuses `token`; fails after `timeout`."""
    started = time.monotonic()
    pending = dict(probes)
    while pending:
        pending = {s: p for s, p in pending.items() if _code(p, token) is not grpc.StatusCode.UNAUTHENTICATED}
        if not pending:
            break
        assert time.monotonic() - started < timeout, f"still accepted by {sorted(pending)} after {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def _accepted_everywhere(probes: dict[str, Probe], token: str) -> None:
    codes = {service: _code(probe, token) for service, probe in probes.items()}
    assert set(codes.values()) == {grpc.StatusCode.OK}, codes


# A revocation travels: auth commit -> outbox relay -> KV bucket -> every service's watch.
REVOCATION_DEADLINE_SECONDS = 10.0


def test_an_access_token_is_refused_everywhere_after_logout(
    accounts: Accounts, auth_channel: grpc.Channel, probes: dict[str, Probe], http: httpx.Client, figures: Figures
) -> None:
    user = accounts.create("editor")
    _accepted_everywhere(probes, user.access)
    tokens_pb2_grpc.TokenServiceStub(auth_channel).RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=user.refresh))
    took = _refused_everywhere_within(probes, user.access, REVOCATION_DEADLINE_SECONDS)
    assert http.get("/api/projects/", headers=user.headers).status_code == 401
    figures.add(f"replay after logout: refused by all services {took * 1000:.0f} ms after the logout")


def test_a_deactivated_users_access_token_is_refused_everywhere(
    accounts: Accounts, auth_channel: grpc.Channel, probes: dict[str, Probe], http: httpx.Client, figures: Figures
) -> None:
    user = accounts.create("editor")
    second_login = accounts.login(user.username, user.password)
    _accepted_everywhere(probes, user.access)
    profiles_pb2_grpc.ProfileServiceStub(auth_channel).DeleteProfile(
        profiles_pb2.DeleteProfileRequest(id=user.id), metadata=accounts.admin.metadata
    )
    took = _refused_everywhere_within(probes, user.access, REVOCATION_DEADLINE_SECONDS)
    _refused_everywhere_within(probes, second_login.access, REVOCATION_DEADLINE_SECONDS)
    assert http.get("/api/jobs/", headers=user.headers).status_code == 401
    figures.add(f"deactivated user: both sessions refused by all services within {took * 1000:.0f} ms")


def test_a_role_change_ends_the_sessions_that_carry_the_old_role(
    accounts: Accounts, auth_channel: grpc.Channel, probes: dict[str, Probe], figures: Figures
) -> None:
    user = accounts.create("editor")
    profiles_pb2_grpc.ProfileServiceStub(auth_channel).UpdateProfile(
        profiles_pb2.UpdateProfileRequest(id=user.id, role="viewer"), metadata=accounts.admin.metadata
    )
    took = _refused_everywhere_within(probes, user.access, REVOCATION_DEADLINE_SECONDS)
    again = accounts.login(user.username, user.password)
    assert jwt.decode(again.access, options={"verify_signature": False})["role"] == "viewer"
    _accepted_everywhere(probes, again.access)
    figures.add(f"role change: old token refused everywhere within {took * 1000:.0f} ms; a new login works")


def test_a_spent_refresh_token_revokes_the_access_tokens_of_its_family(
    accounts: Accounts, auth_channel: grpc.Channel, probes: dict[str, Probe], figures: Figures
) -> None:
    user = accounts.create("viewer")
    other: User = accounts.create("viewer")
    tokens = tokens_pb2_grpc.TokenServiceStub(auth_channel)
    rotated = tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=user.refresh))
    with pytest.raises(grpc.RpcError) as reuse:
        tokens.RefreshToken(tokens_pb2.RefreshTokenRequest(refresh=user.refresh))
    assert reuse.value.code() is grpc.StatusCode.UNAUTHENTICATED
    took = _refused_everywhere_within(probes, rotated.access, REVOCATION_DEADLINE_SECONDS)
    _refused_everywhere_within(probes, user.access, REVOCATION_DEADLINE_SECONDS)
    _accepted_everywhere(probes, other.access)
    with pytest.raises(grpc.RpcError) as verify:
        tokens.VerifyToken(tokens_pb2.VerifyTokenRequest(token=rotated.access))
    assert verify.value.code() is grpc.StatusCode.UNAUTHENTICATED
    figures.add(f"spent refresh token reused: its family's access tokens refused within {took * 1000:.0f} ms")


def test_a_correctly_signed_token_passes(stack: Endpoints, accounts: Accounts, auth_channel: grpc.Channel) -> None:
    token = forge(stack.private_key, {"sub": accounts.admin.id})
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    reply = profiles.GetProfile(
        profiles_pb2.GetProfileRequest(id="me"), metadata=(("authorization", f"Bearer {token}"),)
    )
    assert reply.username == "admin"


def test_a_call_without_a_token_is_unauthenticated(auth_channel: grpc.Channel) -> None:
    profiles = profiles_pb2_grpc.ProfileServiceStub(auth_channel)
    with pytest.raises(grpc.RpcError) as err:
        profiles.ListProfiles(profiles_pb2.ListProfilesRequest())
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_restarted_service_still_refuses_a_revoked_token(
    accounts: Accounts,
    auth_channel: grpc.Channel,
    probes: dict[str, Probe],
    local_stack: LocalStack,
    stack: Endpoints,
    figures: Figures,
) -> None:
    # Given a session revoked while the projects service runs
    user = accounts.create("editor")
    tokens_pb2_grpc.TokenServiceStub(auth_channel).RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=user.refresh))
    _refused_everywhere_within(probes, user.access, REVOCATION_DEADLINE_SECONDS)
    # When the service restarts (its view of the revocations starts empty)
    local_stack.supervisor.stop("projects")
    started = time.monotonic()
    local_stack.supervisor.restart("projects")
    wait_until(lambda: grpc_serving(stack.grpc["projects"]), 60, "the projects service")
    took = time.monotonic() - started
    # Then it read the revocations before serving its first call
    assert _code(probes["projects"], user.access) is grpc.StatusCode.UNAUTHENTICATED
    _accepted_everywhere(probes, accounts.create("editor").access)
    figures.add(f"a restarted service refuses the revoked token from its first call (serving after {took:.1f} s)")
