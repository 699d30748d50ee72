"""Projects over gRPC and REST: CRUD, the permission matrix, lists, members, access checks, events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import nats
import pytest
from aiorch.auth.v1 import profiles_pb2
from aiorch.projects.v1 import events_pb2, projects_pb2, projects_pb2_grpc
from sqlalchemy import Engine, create_engine, text

from services.common import messaging
from services.devstack.stack import Endpoints
from tests.permission_table import HUMAN_ROLES, PROJECT_ACCESS, RELATIONS, Level
from tests.support import Accounts, User, unique

Code = grpc.StatusCode
Stub = projects_pb2_grpc.ProjectServiceStub


@pytest.fixture(scope="module")
def projects(stack: Endpoints) -> Iterator[Stub]:
    """A stub on a channel straight to the projects service."""
    with grpc.insecure_channel(stack.grpc["projects"]) as channel:
        yield projects_pb2_grpc.ProjectServiceStub(channel)


@pytest.fixture(scope="module")
def engine(stack: Endpoints) -> Iterator[Engine]:
    """The database, for looking at what the service stored."""
    engine = create_engine(stack.database_url)
    yield engine
    engine.dispose()


def expect(code: Code, call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() is code, err.value.details()
    return err.value


def create(projects: Stub, user: User, name: str = "", description: str = "") -> projects_pb2.Project:
    request = projects_pb2.CreateProjectRequest(name=name or unique("project"), description=description)
    return projects.CreateProject(request, metadata=user.metadata)


def add_member(projects: Stub, by: User, project_id: str, user_id: str, role: str) -> projects_pb2.Member:
    request = projects_pb2.AddMemberRequest(project_id=project_id, user_id=user_id, role=role)
    return projects.AddMember(request, metadata=by.metadata)


def listed(projects: Stub, user: User, **fields: object) -> projects_pb2.ListProjectsResponse:
    return projects.ListProjects(projects_pb2.ListProjectsRequest(**fields), metadata=user.metadata)  # type: ignore[arg-type]


def demoted_to_viewer(accounts: Accounts, user: User) -> User:
    """`user` after an admin made them a viewer, logged in again so the token carries the role."""
    accounts.profiles.UpdateProfile(
        profiles_pb2.UpdateProfileRequest(id=user.id, role="viewer"), metadata=accounts.admin.metadata
    )
    pair = accounts.login(user.username, user.password)
    return User(user.id, user.username, "viewer", user.password, pair.access, pair.refresh)


# --- CRUD over gRPC ---------------------------------------------------------------------------


def test_an_editor_creates_a_project_they_own(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = create(projects, editor, name="  Voices  ", description="Cloned voices")
    assert (made.name, made.description, made.owner) == ("Voices", "Cloned voices", editor.id)
    assert uuid.UUID(made.id)
    assert made.created_at.ToDatetime() == made.updated_at.ToDatetime()
    assert projects.GetProject(projects_pb2.GetProjectRequest(id=made.id), metadata=editor.metadata) == made


def test_viewers_cannot_create_projects(projects: Stub, accounts: Accounts) -> None:
    expect(Code.PERMISSION_DENIED, lambda: create(projects, accounts.create("viewer")))


def test_calls_without_a_token_are_unauthenticated(projects: Stub) -> None:
    expect(Code.UNAUTHENTICATED, lambda: projects.ListProjects(projects_pb2.ListProjectsRequest()))


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_names_must_have_1_to_200_characters(name: str, projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    expect(Code.INVALID_ARGUMENT, lambda: create(projects, editor, name=name or " "))
    made = create(projects, editor)
    expect(
        Code.INVALID_ARGUMENT,
        lambda: projects.UpdateProject(
            projects_pb2.UpdateProjectRequest(id=made.id, name=name), metadata=editor.metadata
        ),
    )


def test_update_changes_only_the_fields_given(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = create(projects, editor, name="Before", description="old")
    updated = projects.UpdateProject(
        projects_pb2.UpdateProjectRequest(id=made.id, description=""), metadata=editor.metadata
    )
    assert (updated.name, updated.description) == ("Before", "")
    assert updated.updated_at.ToDatetime() > made.updated_at.ToDatetime()
    assert updated.created_at == made.created_at


def test_a_deleted_project_is_gone(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = create(projects, editor)
    projects.DeleteProject(projects_pb2.DeleteProjectRequest(id=made.id), metadata=editor.metadata)
    expect(
        Code.NOT_FOUND,
        lambda: projects.GetProject(projects_pb2.GetProjectRequest(id=made.id), metadata=editor.metadata),
    )
    expect(
        Code.NOT_FOUND,
        lambda: projects.DeleteProject(projects_pb2.DeleteProjectRequest(id=made.id), metadata=editor.metadata),
    )


@pytest.mark.parametrize("project_id", ["", "not-a-uuid", str(uuid.uuid4())])
def test_unknown_and_malformed_ids_are_not_found(project_id: str, projects: Stub, accounts: Accounts) -> None:
    error = expect(
        Code.NOT_FOUND,
        lambda: projects.GetProject(projects_pb2.GetProjectRequest(id=project_id), metadata=accounts.admin.metadata),
    )
    assert error.details() == f"project {project_id!r} not found"


# --- The permission matrix (brief section 5; who gets which access: tests/permission_table.py) ---

NONE, READ, WRITE, OWNER = Level.NONE, Level.READ, Level.WRITE, Level.OWNER
Action = Callable[[Stub, User, str], object]
# Each action and the access it needs.
ACTIONS: dict[str, tuple[Level, Action]] = {
    "get": (READ, lambda p, u, pid: p.GetProject(projects_pb2.GetProjectRequest(id=pid), metadata=u.metadata)),
    "list_members": (
        READ,
        lambda p, u, pid: p.ListMembers(projects_pb2.ListMembersRequest(project_id=pid), metadata=u.metadata),
    ),
    "update": (
        WRITE,
        lambda p, u, pid: p.UpdateProject(
            projects_pb2.UpdateProjectRequest(id=pid, name="renamed"), metadata=u.metadata
        ),
    ),
    "delete": (
        OWNER,
        lambda p, u, pid: p.DeleteProject(projects_pb2.DeleteProjectRequest(id=pid), metadata=u.metadata),
    ),
    "add_member": (OWNER, lambda p, u, pid: add_member(p, u, pid, str(uuid.uuid4()), "viewer")),
}


def arrange(projects: Stub, accounts: Accounts, role: str, relation: str) -> tuple[User, str]:
    """A fresh caller with `role` standing in `relation` to a fresh project: the caller and the project id."""
    if relation == "owner":
        caller = accounts.create("admin" if role == "admin" else "editor")
        project_id = create(projects, caller).id
        return (demoted_to_viewer(accounts, caller) if role == "viewer" else caller), project_id
    host = accounts.create("editor")
    project_id = create(projects, host).id
    caller = accounts.create(role)
    if relation != "stranger":
        add_member(projects, host, project_id, caller.id, relation.removeprefix("member-"))
    return caller, project_id


@pytest.mark.parametrize(
    ("role", "relation", "action"),
    [(r, rel, a) for r in HUMAN_ROLES for rel in RELATIONS for a in ACTIONS],
)
def test_permission_matrix(role: str, relation: str, action: str, projects: Stub, accounts: Accounts) -> None:
    caller, project_id = arrange(projects, accounts, role, relation)
    needed, call = ACTIONS[action]
    access = PROJECT_ACCESS[role, relation]
    if access >= needed:
        call(projects, caller, project_id)
    else:
        expect(Code.NOT_FOUND if access == NONE else Code.PERMISSION_DENIED, lambda: call(projects, caller, project_id))


@pytest.mark.parametrize(("role", "relation"), [(r, rel) for r in HUMAN_ROLES for rel in RELATIONS])
def test_check_access_answers_the_callers_level(role: str, relation: str, projects: Stub, accounts: Accounts) -> None:
    caller, project_id = arrange(projects, accounts, role, relation)
    reply = projects.CheckAccess(projects_pb2.CheckAccessRequest(project_id=project_id), metadata=caller.metadata)
    assert projects_pb2.Access.Name(reply.access) == f"ACCESS_{PROJECT_ACCESS[role, relation].name}"


@pytest.mark.parametrize("project_id", ["", "not-a-uuid", str(uuid.uuid4())])
def test_check_access_of_unknown_projects_is_none(project_id: str, projects: Stub, accounts: Accounts) -> None:
    reply = projects.CheckAccess(
        projects_pb2.CheckAccessRequest(project_id=project_id), metadata=accounts.admin.metadata
    )
    assert reply.access == projects_pb2.ACCESS_NONE


# --- Members ------------------------------------------------------------------------------------


def test_owner_adds_lists_and_removes_members(projects: Stub, accounts: Accounts) -> None:
    owner, alice, bob = accounts.create("editor"), accounts.create("editor"), accounts.create("viewer")
    project_id = create(projects, owner).id
    first = add_member(projects, owner, project_id, alice.id, "editor")
    add_member(projects, owner, project_id, bob.id, "viewer")
    assert (first.project_id, first.user_id, first.role) == (project_id, alice.id, "editor")
    members = projects.ListMembers(projects_pb2.ListMembersRequest(project_id=project_id), metadata=bob.metadata)
    assert [(m.user_id, m.role) for m in members.members] == [(alice.id, "editor"), (bob.id, "viewer")]

    projects.RemoveMember(
        projects_pb2.RemoveMemberRequest(project_id=project_id, user_id=alice.id), metadata=owner.metadata
    )
    expect(
        Code.NOT_FOUND,
        lambda: projects.GetProject(projects_pb2.GetProjectRequest(id=project_id), metadata=alice.metadata),
    )
    expect(
        Code.NOT_FOUND,
        lambda: projects.RemoveMember(
            projects_pb2.RemoveMemberRequest(project_id=project_id, user_id=alice.id), metadata=owner.metadata
        ),
    )


def test_adding_a_member_again_changes_their_role(projects: Stub, accounts: Accounts) -> None:
    owner, member = accounts.create("editor"), accounts.create("editor")
    project_id = create(projects, owner).id
    first = add_member(projects, owner, project_id, member.id, "viewer")
    again = add_member(projects, owner, project_id, member.id, "editor")
    assert (again.role, again.created_at) == ("editor", first.created_at)
    projects.UpdateProject(projects_pb2.UpdateProjectRequest(id=project_id, name="by member"), metadata=member.metadata)


@pytest.mark.parametrize(
    ("user_id", "role"), [(str(uuid.uuid4()), "admin"), (str(uuid.uuid4()), ""), ("not-a-uuid", "viewer")]
)
def test_bad_members_are_invalid_arguments(user_id: str, role: str, projects: Stub, accounts: Accounts) -> None:
    owner = accounts.create("editor")
    project_id = create(projects, owner).id
    expect(Code.INVALID_ARGUMENT, lambda: add_member(projects, owner, project_id, user_id, role))


def test_the_owner_cannot_be_a_member(projects: Stub, accounts: Accounts) -> None:
    owner = accounts.create("editor")
    project_id = create(projects, owner).id
    expect(Code.INVALID_ARGUMENT, lambda: add_member(projects, owner, project_id, owner.id, "viewer"))


# --- Lists: visibility, search, owner filter, ordering, pages --------------------------------


def test_users_list_what_they_own_or_are_members_of(projects: Stub, accounts: Accounts) -> None:
    me, other = accounts.create("viewer"), accounts.create("editor")
    tag = unique("vis")
    shared = create(projects, other, name=f"{tag} shared")
    create(projects, other, name=f"{tag} private")
    add_member(projects, other, shared.id, me.id, "viewer")
    mine = listed(projects, me, search=tag)
    assert ([p.id for p in mine.projects], mine.total_size) == ([shared.id], 1)
    assert listed(projects, accounts.admin, search=tag).total_size == 2


def test_search_matches_name_or_description_case_insensitively(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    tag = unique("Find")
    by_name = create(projects, editor, name=f"{tag} in name")
    by_description = create(projects, editor, description=f"the {tag.upper()} is here")
    found = listed(projects, editor, search=tag.lower(), ordering="created_at")
    assert [p.id for p in found.projects] == [by_name.id, by_description.id]


def test_search_wildcards_match_literally(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    tag = unique("wild")
    create(projects, editor, name=f"{tag}x")
    literal = create(projects, editor, name=f"{tag}_")
    assert [p.id for p in listed(projects, editor, search=f"{tag}_").projects] == [literal.id]
    assert listed(projects, editor, search=f"{tag}%").total_size == 0


def test_owner_filter_takes_an_id_or_me(projects: Stub, accounts: Accounts) -> None:
    me, other = accounts.create("editor"), accounts.create("editor")
    tag = unique("own")
    mine = create(projects, me, name=f"{tag} mine")
    theirs = create(projects, other, name=f"{tag} theirs")
    add_member(projects, other, theirs.id, me.id, "editor")
    assert [p.id for p in listed(projects, me, search=tag, owner="me").projects] == [mine.id]
    assert [p.id for p in listed(projects, me, search=tag, owner=other.id).projects] == [theirs.id]
    expect(Code.INVALID_ARGUMENT, lambda: listed(projects, me, owner="nobody"))


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [("name", "bca"), ("-name", "acb"), ("created_at", "abc"), ("-created_at", "cba"), ("", "cba")],
)
def test_orderings_from_the_allow_list(ordering: str, expected: str, projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    names = {"a": "3 last by name", "b": "1 first by name", "c": "2 second by name"}
    for key in "abc":
        create(projects, editor, name=names[key])
    found = listed(projects, editor, owner="me", ordering=ordering)
    assert [p.name for p in found.projects] == [names[key] for key in expected]


@pytest.mark.parametrize("ordering", ["owner", "id", "name,created_at", "-updated_at", "NAME"])
def test_other_orderings_are_invalid(ordering: str, projects: Stub, accounts: Accounts) -> None:
    expect(Code.INVALID_ARGUMENT, lambda: listed(projects, accounts.admin, ordering=ordering))


def test_pages_follow_aip_158(projects: Stub, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = [create(projects, editor, name=f"page {i}").id for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = listed(projects, editor, owner="me", ordering="created_at", page_size=2, page_token=token)
        assert page.total_size == 5
        seen += [p.id for p in page.projects]
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    first = listed(projects, editor, owner="me", page_size=2)
    expect(
        Code.INVALID_ARGUMENT,
        lambda: listed(projects, editor, owner="me", ordering="name", page_size=2, page_token=first.next_page_token),
    )


# --- Deleting publishes one ProjectDeleted event ---------------------------------------------


def wait_for_empty_outbox(engine: Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            if connection.scalar(text("SELECT count(*) FROM projects.outbox")) == 0:
                return
        assert time.monotonic() < deadline, "the outbox relay did not publish in time"
        time.sleep(0.05)


async def delete_and_listen(
    stack: Endpoints, engine: Engine, delete: Callable[[], object], project_id: str
) -> tuple[list[events_pb2.ProjectDeleted], int]:
    """Delete a project while listening on the subject; the events about it and how far the stream grew.

    A core subscription sees every publish without taking messages from the work-queue stream,
    whose only consumer belongs to the jobs service.
    """
    # The operators' user: no component may listen to project events besides the jobs service's consumer.
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    try:
        js = nc.jetstream()
        received: list[events_pb2.ProjectDeleted] = []
        subscription = await nc.subscribe(messaging.PROJECT_DELETED_SUBJECT)
        await nc.flush()
        await asyncio.to_thread(wait_for_empty_outbox, engine)
        before = (await js.stream_info(messaging.PROJECTS_STREAM)).state.last_seq
        await asyncio.to_thread(delete)
        await asyncio.to_thread(wait_for_empty_outbox, engine)
        grown = (await js.stream_info(messaging.PROJECTS_STREAM)).state.last_seq - before
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                message = await subscription.next_msg(timeout=0.2)
            except TimeoutError:
                continue
            event = events_pb2.ProjectDeleted.FromString(message.data)
            if event.project_id == project_id:
                received.append(event)
        return received, grown
    finally:
        await nc.close()


def test_deleting_a_project_publishes_one_event(
    projects: Stub, accounts: Accounts, stack: Endpoints, engine: Engine
) -> None:
    owner, member = accounts.create("editor"), accounts.create("viewer")
    project_id = create(projects, owner).id
    add_member(projects, owner, project_id, member.id, "viewer")
    started = time.time()

    def delete() -> None:
        projects.DeleteProject(projects_pb2.DeleteProjectRequest(id=project_id), metadata=owner.metadata)

    events, grown = asyncio.run(delete_and_listen(stack, engine, delete, project_id))

    assert grown == 1
    assert len(events) == 1
    assert events[0].deleted_by == owner.id
    assert events[0].deleted_at.ToDatetime().timestamp() >= started - 1
    with engine.connect() as connection:
        members = connection.scalar(
            text("SELECT count(*) FROM projects.members WHERE project_id = :id"), {"id": project_id}
        )
    assert members == 0


# --- REST through the gateway -------------------------------------------------------------------


def test_rest_crud_and_members(http: httpx.Client, accounts: Accounts) -> None:
    owner, member = accounts.create("editor"), accounts.create("viewer")
    tag = unique("rest")
    created = http.post("/api/projects/", json={"name": f"{tag} one", "description": "d"}, headers=owner.headers)
    assert created.status_code == 200, created.text
    project = created.json()
    assert (project["name"], project["description"], project["owner"]) == (f"{tag} one", "d", owner.id)
    assert set(project) >= {"id", "created_at", "updated_at"}
    url = f"/api/projects/{project['id']}/"

    assert http.get(url, headers=owner.headers).json() == project
    assert http.get(url, headers=member.headers).status_code == 404
    added = http.post(f"{url}members/", json={"user_id": member.id, "role": "viewer"}, headers=owner.headers)
    assert added.status_code == 200, added.text
    assert added.json()["role"] == "viewer"
    assert http.get(url, headers=member.headers).status_code == 200
    members = http.get(f"{url}members/", headers=member.headers).json()["members"]
    assert [m["user_id"] for m in members] == [member.id]
    assert http.patch(url, json={"name": "no"}, headers=member.headers).status_code == 403

    patched = http.patch(url, json={"description": "changed"}, headers=owner.headers)
    assert (patched.json()["name"], patched.json()["description"]) == (f"{tag} one", "changed")
    assert http.delete(f"{url}members/{member.id}/", headers=owner.headers).status_code == 200
    assert http.get(url, headers=member.headers).status_code == 404
    assert http.delete(url, headers=owner.headers).status_code == 200
    assert http.get(url, headers=owner.headers).status_code == 404


def test_rest_list_with_search_owner_ordering_and_pages(http: httpx.Client, accounts: Accounts) -> None:
    owner = accounts.create("editor")
    tag = unique("restlist")
    for name in ("b", "a", "c"):
        http.post("/api/projects/", json={"name": f"{tag} {name}"}, headers=owner.headers).raise_for_status()
    query = {"search": tag, "owner": "me", "ordering": "name", "page_size": "2"}
    first = http.get("/api/projects/", params=query, headers=owner.headers).json()
    assert [p["name"] for p in first["projects"]] == [f"{tag} a", f"{tag} b"]
    assert first["total_size"] == 3
    second = http.get(
        "/api/projects/", params={**query, "page_token": first["next_page_token"]}, headers=owner.headers
    ).json()
    assert [p["name"] for p in second["projects"]] == [f"{tag} c"]
    assert second["next_page_token"] == ""


def test_rest_errors_map_to_http_codes(http: httpx.Client, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    assert http.get("/api/projects/").status_code == 401
    assert http.post("/api/projects/", json={"name": "x"}, headers=viewer.headers).status_code == 403
    assert http.get("/api/projects/", params={"ordering": "owner"}, headers=viewer.headers).status_code == 400
    assert http.get(f"/api/projects/{uuid.uuid4()}/", headers=viewer.headers).status_code == 404
