"""gRPC servicer of the projects service: read the request, call one domain function, map the result."""

from __future__ import annotations

import asyncio
from typing import Any

from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc
from grpc import aio

from services.common.interceptors import current_caller
from services.common.timestamps import to_timestamp
from services.projects.access import Access
from services.projects.catalog import (
    MemberView,
    NewProject,
    ProjectCatalog,
    ProjectChanges,
    ProjectQuery,
    ProjectView,
)

Context = aio.ServicerContext[Any, Any]

_ACCESS = {
    Access.NONE: projects_pb2.ACCESS_NONE,
    Access.READ: projects_pb2.ACCESS_READ,
    Access.WRITE: projects_pb2.ACCESS_WRITE,
    Access.OWNER: projects_pb2.ACCESS_OWNER,
}


def project_message(view: ProjectView) -> projects_pb2.Project:
    """The Project message of a domain view."""
    return projects_pb2.Project(
        id=str(view.id),
        name=view.name,
        description=view.description,
        owner=str(view.owner_id),
        created_at=to_timestamp(view.created_at),
        updated_at=to_timestamp(view.updated_at),
    )


def member_message(view: MemberView) -> projects_pb2.Member:
    """The Member message of a domain view."""
    return projects_pb2.Member(
        project_id=str(view.project_id),
        user_id=str(view.user_id),
        role=view.role.value,
        created_at=to_timestamp(view.created_at),
    )


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


class ProjectServicer(projects_pb2_grpc.ProjectServiceServicer):
    """Projects, their members, and access checks for other services."""

    def __init__(self, catalog: ProjectCatalog) -> None:
        self._catalog = catalog

    async def CreateProject(self, request: projects_pb2.CreateProjectRequest, context: Context) -> projects_pb2.Project:
        new = NewProject(name=request.name, description=request.description)
        return project_message(await asyncio.to_thread(self._catalog.create, current_caller(), new))

    async def GetProject(self, request: projects_pb2.GetProjectRequest, context: Context) -> projects_pb2.Project:
        return project_message(await asyncio.to_thread(self._catalog.get, current_caller(), request.id))

    async def ListProjects(
        self, request: projects_pb2.ListProjectsRequest, context: Context
    ) -> projects_pb2.ListProjectsResponse:
        query = ProjectQuery(search=request.search, owner=request.owner, ordering=request.ordering)
        page = await asyncio.to_thread(
            self._catalog.list_projects, current_caller(), request.page_size, request.page_token, query
        )
        return projects_pb2.ListProjectsResponse(
            projects=[project_message(p) for p in page.projects],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def UpdateProject(self, request: projects_pb2.UpdateProjectRequest, context: Context) -> projects_pb2.Project:
        changes = ProjectChanges(name=_optional(request, "name"), description=_optional(request, "description"))
        return project_message(await asyncio.to_thread(self._catalog.update, current_caller(), request.id, changes))

    async def DeleteProject(
        self, request: projects_pb2.DeleteProjectRequest, context: Context
    ) -> projects_pb2.DeleteProjectResponse:
        await asyncio.to_thread(self._catalog.delete, current_caller(), request.id)
        return projects_pb2.DeleteProjectResponse()

    async def AddMember(self, request: projects_pb2.AddMemberRequest, context: Context) -> projects_pb2.Member:
        member = await asyncio.to_thread(
            self._catalog.add_member, current_caller(), request.project_id, request.user_id, request.role
        )
        return member_message(member)

    async def ListMembers(
        self, request: projects_pb2.ListMembersRequest, context: Context
    ) -> projects_pb2.ListMembersResponse:
        members = await asyncio.to_thread(self._catalog.list_members, current_caller(), request.project_id)
        return projects_pb2.ListMembersResponse(members=[member_message(m) for m in members])

    async def RemoveMember(
        self, request: projects_pb2.RemoveMemberRequest, context: Context
    ) -> projects_pb2.RemoveMemberResponse:
        await asyncio.to_thread(self._catalog.remove_member, current_caller(), request.project_id, request.user_id)
        return projects_pb2.RemoveMemberResponse()

    async def CheckAccess(
        self, request: projects_pb2.CheckAccessRequest, context: Context
    ) -> projects_pb2.CheckAccessResponse:
        access = await asyncio.to_thread(self._catalog.check_access, current_caller(), request.project_id)
        return projects_pb2.CheckAccessResponse(access=_ACCESS[access])
