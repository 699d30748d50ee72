"""The jobs service's one access rule: who may read or change the jobs of a project.

Admins own every project; service accounts (workers outside the cluster) read every job but create
or change none; everyone else gets what the projects service's CheckAccess answers. JobBook,
ResultBook and the watch streams all decide through `JobAccess`, so the rule cannot drift apart.
"""

from __future__ import annotations

import uuid

from services.common.errors import NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.jobs.projects_client import Access, ProjectsClient


def sees_everything(caller: Caller) -> bool:
    """Admins and service accounts read every project without asking the projects service (unless their API
    key is limited to one project)."""
    return (caller.is_admin or caller.role is Role.SERVICE) and caller.project_scope is None


class JobAccess:
    """Access decisions for jobs, results and streams."""

    def __init__(self, projects: ProjectsClient) -> None:
        self._projects = projects

    async def level(self, caller: Caller, project_id: uuid.UUID | str) -> Access:
        """The caller's access to a project's jobs."""
        if not caller.in_scope(project_id):
            return Access.NONE
        if caller.is_admin:
            return Access.OWNER
        if caller.role is Role.SERVICE:
            return Access.READ
        return await self._projects.access(caller, project_id)

    async def require(self, caller: Caller, project_id: uuid.UUID | str, need: Access, what: str) -> Access:
        """The caller's access, if it reaches `need`.

        NOT_FOUND naming `what` when the caller may not even read the project (another user's
        objects must not be distinguishable from missing ones); PERMISSION_DENIED when they may
        read but `need` is more.
        """
        access = await self.level(caller, project_id)
        if access < Access.READ:
            raise NotFound(f"{what} not found")
        if access < need:
            raise PermissionDenied(f"you may read {_article(what)} but not change it")
        return access

    async def visible_projects(self, caller: Caller) -> list[uuid.UUID] | None:
        """The projects whose jobs the caller may read; None means every project."""
        if sees_everything(caller):
            return None
        if caller.project_scope is not None and (caller.is_admin or caller.role is Role.SERVICE):
            return [caller.project_scope]
        return await self._projects.visible_projects(caller)


def _article(what: str) -> str:
    # "job 'x'" -> "this job": the message names the kind of object, not the id again.
    return f"this {what.split(' ', 1)[0]}"
