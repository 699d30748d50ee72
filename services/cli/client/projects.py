"""`aiorch projects ...`: list, read, create, change and delete projects, and manage their members."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from services.cli.client.errors import CliError, ExitCode, reported
from services.cli.client.options import DEFAULT_SERVER, OutputOption, PageSizeOption, PageTokenOption, ServerOption
from services.cli.client.output import OutputFormat, print_done, print_page, print_record

app = typer.Typer(help="Projects: list, get, create, update, delete, members.", no_args_is_help=True)

LIST_COLUMNS = ("id", "name", "owner", "created_at")
ProjectId = Annotated[str, typer.Argument(help="Project id.", show_default=False)]


@app.command("list")
def list_projects(
    search: Annotated[str, typer.Option(help="Case-insensitive match on name and description.")] = "",
    owner: Annotated[str, typer.Option(help="Only projects of this owner (profile id, or `me`).")] = "",
    ordering: Annotated[str, typer.Option(help="name, -name, created_at or -created_at.")] = "",
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the projects you may see."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415 - keeps `aiorch --help` fast

    from services.cli.client.session import Session  # noqa: PLC0415

    request = projects_pb2.ListProjectsRequest(
        search=search, owner=owner, ordering=ordering, page_size=page_size, page_token=page_token
    )
    with reported(), Session.resume(server) as session:
        page = session.unary(session.projects.ListProjects, request)
        print_page(page, page.projects, LIST_COLUMNS, output)


@app.command("get")
def get_project(
    project_id: ProjectId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE
) -> None:
    """Show a project."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        print_record(session.unary(session.projects.GetProject, projects_pb2.GetProjectRequest(id=project_id)), output)


@app.command("create")
def create_project(
    name: Annotated[str, typer.Argument(help="Name, 1-200 characters.", show_default=False)],
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a project you own (editors and admins)."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    request = projects_pb2.CreateProjectRequest(name=name, description=description)
    with reported(), Session.resume(server) as session:
        print_record(session.unary(session.projects.CreateProject, request), output)


@app.command("update")
def update_project(
    project_id: ProjectId,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Change a project's name or description; fields not given stay as they are."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported():
        if name is None and description is None:
            raise CliError("give --name or --description", ExitCode.USAGE)
        request = projects_pb2.UpdateProjectRequest(id=project_id, name=name, description=description)
        with Session.resume(server) as session:
            print_record(session.unary(session.projects.UpdateProject, request), output)


@app.command("delete")
def delete_project(
    project_id: ProjectId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE
) -> None:
    """Delete a project (owner or admin); its jobs are cancelled and removed."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        session.unary(session.projects.DeleteProject, projects_pb2.DeleteProjectRequest(id=project_id))
        print_done(f"deleted project {project_id}", {"id": project_id, "deleted": True}, output)


members = typer.Typer(help="A project's members: list, add (or change the role of), remove.", no_args_is_help=True)
app.add_typer(members, name="members")
MEMBER_COLUMNS = ("user_id", "role", "created_at")


class MemberRole(StrEnum):
    """The `--role` choices of a member."""

    EDITOR = "editor"
    VIEWER = "viewer"


@members.command("list")
def list_members(
    project_id: ProjectId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE
) -> None:
    """List a project's members, oldest first."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        found = session.unary(session.projects.ListMembers, projects_pb2.ListMembersRequest(project_id=project_id))
        print_page(found, found.members, MEMBER_COLUMNS, output)


@members.command("add")
def add_member(
    project_id: ProjectId,
    user_id: Annotated[
        str, typer.Argument(help="The member's profile id (their `aiorch whoami`).", show_default=False)
    ],
    role: Annotated[MemberRole, typer.Option(case_sensitive=False, help="Their project role.")] = MemberRole.VIEWER,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Add a member, or change a member's role (owner or admin)."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    request = projects_pb2.AddMemberRequest(project_id=project_id, user_id=user_id, role=role.value)
    with reported(), Session.resume(server) as session:
        print_record(session.unary(session.projects.AddMember, request), output)


@members.command("remove")
def remove_member(
    project_id: ProjectId,
    user_id: Annotated[str, typer.Argument(help="The member's profile id.", show_default=False)],
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Remove a member (owner or admin)."""
    from aiorch.projects.v1 import projects_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    request = projects_pb2.RemoveMemberRequest(project_id=project_id, user_id=user_id)
    with reported(), Session.resume(server) as session:
        session.unary(session.projects.RemoveMember, request)
        done = {"project_id": project_id, "user_id": user_id, "removed": True}
        print_done(f"removed {user_id} from project {project_id}", done, output)
