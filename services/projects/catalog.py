"""Projects and their members, with the rules of who may see and change them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiorch.projects.v1 import events_pb2
from sqlalchemy import ColumnElement, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.db import Database, like_pattern, utcnow
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.common.messaging import PROJECT_DELETED_SUBJECT
from services.common.outbox import OutboxMessage, enqueue
from services.common.pagination import next_page_token, read_page
from services.common.timestamps import to_timestamp
from services.projects.access import Access, MemberRole, caller_access
from services.projects.models import OUTBOX, Member, Project

ME = "me"
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 64 * 1024
DEFAULT_ORDERING = "-created_at"
# The only orderings a client may ask for; each ends with the id so pages never overlap.
ORDERINGS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "name": (Project.name.asc(), Project.id.asc()),
    "-name": (Project.name.desc(), Project.id.desc()),
    "created_at": (Project.created_at.asc(), Project.id.asc()),
    "-created_at": (Project.created_at.desc(), Project.id.desc()),
}


@dataclass(frozen=True)
class ProjectView:
    """A project as the API shows it."""

    id: uuid.UUID
    name: str
    description: str
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Project) -> ProjectView:
        """The view of a stored project."""
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner_id=row.owner_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class MemberView:
    """A member as the API shows it."""

    project_id: uuid.UUID
    user_id: uuid.UUID
    role: MemberRole
    created_at: datetime

    @classmethod
    def of(cls, row: Member) -> MemberView:
        """The view of a stored membership."""
        return cls(row.project_id, row.user_id, MemberRole(row.role), row.created_at)


@dataclass(frozen=True)
class NewProject:
    """What a caller gives to create a project."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class ProjectChanges:
    """Fields to change; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ProjectQuery:
    """Which projects to list and in which order; empty strings mean no filter or the default."""

    search: str = ""
    owner: str = ""
    ordering: str = ""


@dataclass(frozen=True)
class ProjectPage:
    """One page of projects, and how many match in all."""

    projects: list[ProjectView]
    next_page_token: str
    total_size: int


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidArgument(f"name must be 1-{MAX_NAME_LENGTH} characters (not counting outer spaces)")
    return name


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    return description


def _order_by(ordering: str) -> tuple[ColumnElement[Any], ...]:
    try:
        return ORDERINGS[ordering or DEFAULT_ORDERING]
    except KeyError:
        names = ", ".join(repr(name) for name in ORDERINGS)
        raise InvalidArgument(f"ordering must be one of {names}, not {ordering!r}") from None


def _owner_id(caller: Caller, owner: str) -> uuid.UUID | None:
    if not owner:
        return None
    if owner == ME:
        return caller.user_id
    try:
        return uuid.UUID(owner)
    except ValueError:
        raise InvalidArgument(f"owner must be a profile id or {ME!r}, not {owner!r}") from None


def _project_id(project_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(project_id)
    except ValueError:
        raise NotFound(f"project {project_id!r} not found") from None


def _deleted_event(project_id: uuid.UUID, caller: Caller, at: datetime) -> OutboxMessage:
    event = events_pb2.ProjectDeleted(
        project_id=str(project_id), deleted_by=str(caller.user_id), deleted_at=to_timestamp(at)
    )
    # The id makes the relay's re-publishes duplicates that JetStream drops.
    return OutboxMessage(PROJECT_DELETED_SUBJECT, f"project-deleted:{project_id}", event.SerializeToString())


# The owner and the caller's membership in one query; built once, the compiled form is cached.
_ACCESS_QUERY = (
    select(Project.owner_id, Member.role)
    .outerjoin(Member, (Member.project_id == Project.id) & (Member.user_id == bindparam("user_id")))
    .where(Project.id == bindparam("project_id"))
)


class ProjectCatalog:
    """Every project, shown to and changed by only those its access rules allow.

    A project the caller may not see answers NotFound, exactly like one that does not exist.
    Member ids are profile ids of the auth service, whose schema this service may not read:
    any well-formed UUID is accepted, and a membership of an unknown user grants nothing.
    """

    def __init__(
        self, db: Database, wake_relay: Callable[[], None], announce_access: Callable[[uuid.UUID], None]
    ) -> None:
        self._db = db
        self._wake_relay = wake_relay
        # Called after the commit of every change of who may do what on a project (AccessAnnouncer).
        self._announce_access = announce_access

    def create(self, caller: Caller, new: NewProject) -> ProjectView:
        """Create a project owned by the caller (editors and admins)."""
        if caller.role not in (Role.ADMIN, Role.EDITOR):
            raise PermissionDenied(f"{caller.role.value}s cannot create projects")
        if caller.project_scope is not None:
            raise PermissionDenied("an API key limited to one project cannot create projects")
        now = utcnow()
        project = Project(
            name=_check_name(new.name),
            description=_check_description(new.description),
            owner_id=caller.user_id,
            created_at=now,
            updated_at=now,
        )
        with self._db.transaction() as session:
            session.add(project)
            session.flush()
            return ProjectView.of(project)

    def get(self, caller: Caller, project_id: str) -> ProjectView:
        """A project the caller may read."""
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.READ, "read")
            return ProjectView.of(project)

    def list_projects(self, caller: Caller, page_size: int, page_token: str, query: ProjectQuery) -> ProjectPage:
        """A page of the projects the caller may see: admins all, others their own and memberships."""
        order = _order_by(query.ordering)
        owner_id = _owner_id(caller, query.owner)
        fingerprint = {
            "search": query.search,
            "owner": str(owner_id) if owner_id else "",
            "ordering": query.ordering or DEFAULT_ORDERING,
            "me": None if caller.is_admin else str(caller.user_id),
            "scope": str(caller.project_scope or ""),
        }
        page = read_page(page_size, page_token, fingerprint)
        statement = select(Project)
        if caller.project_scope is not None:
            statement = statement.where(Project.id == caller.project_scope)
        if not caller.is_admin:
            memberships = select(Member.project_id).where(Member.user_id == caller.user_id)
            statement = statement.where(or_(Project.owner_id == caller.user_id, Project.id.in_(memberships)))
        if owner_id is not None:
            statement = statement.where(Project.owner_id == owner_id)
        if query.search:
            pattern = like_pattern(query.search)
            statement = statement.where(
                or_(Project.name.ilike(pattern, escape="\\"), Project.description.ilike(pattern, escape="\\"))
            )
        with self._db.transaction() as session:
            total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
            rows = list(session.scalars(statement.order_by(*order).offset(page.offset).limit(page.size + 1)))
        views = [ProjectView.of(row) for row in rows[: page.size]]
        token = next_page_token(page, len(views), len(rows) > page.size, fingerprint)
        return ProjectPage(views, token, total)

    def update(self, caller: Caller, project_id: str, changes: ProjectChanges) -> ProjectView:
        """Change name or description (write access needed)."""
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.WRITE, "change", lock=True)
            if changes.name is not None:
                project.name = _check_name(changes.name)
            if changes.description is not None:
                project.description = _check_description(changes.description)
            session.flush()
            return ProjectView.of(project)

    def delete(self, caller: Caller, project_id: str) -> None:
        """Delete a project and its memberships (owner access needed) and announce it.

        The ProjectDeleted event is written in the same transaction, so it is published if and
        only if the project is gone; the jobs service then cancels and removes its jobs.
        """
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.OWNER, "delete", lock=True)
            deleted = project.id
            session.delete(project)
            enqueue(session, OUTBOX, _deleted_event(deleted, caller, utcnow()))
        self._wake_relay()
        self._announce_access(deleted)

    def add_member(self, caller: Caller, project_id: str, user_id: str, role: str) -> MemberView:
        """Make a user a member with `role`, or change the role of a member (owner access needed)."""
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.OWNER, "manage members of", lock=True)
            try:
                member_role = MemberRole.parse(role)
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
            try:
                member_id = uuid.UUID(user_id)
            except ValueError:
                raise InvalidArgument(f"user_id must be a profile id, not {user_id!r}") from None
            if member_id == project.owner_id:
                raise InvalidArgument("the owner cannot also be a member of their project")
            upsert = insert(Member).values(
                project_id=project.id, user_id=member_id, role=member_role.value, created_at=utcnow()
            )
            # Adding someone again changes their role; `created_at` keeps when they first joined.
            upsert = upsert.on_conflict_do_update(
                index_elements=[Member.project_id, Member.user_id], set_={"role": upsert.excluded.role}
            )
            session.execute(upsert)
            member = session.scalars(
                select(Member)
                .where(Member.project_id == project.id, Member.user_id == member_id)
                .execution_options(populate_existing=True)
            ).one()
            view = MemberView.of(member)
        self._announce_access(view.project_id)
        return view

    def list_members(self, caller: Caller, project_id: str) -> list[MemberView]:
        """A project's members, oldest first (read access needed)."""
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.READ, "read")
            rows = session.scalars(
                select(Member).where(Member.project_id == project.id).order_by(Member.created_at, Member.user_id)
            )
            return [MemberView.of(row) for row in rows]

    def remove_member(self, caller: Caller, project_id: str, user_id: str) -> None:
        """Remove a member (owner access needed); NotFound if they are not one."""
        with self._db.transaction() as session:
            project = self._load(session, caller, project_id, Access.OWNER, "manage members of", lock=True)
            try:
                member_id = uuid.UUID(user_id)
            except ValueError:
                member_id = None
            member = session.get(Member, (project.id, member_id)) if member_id else None
            if member is None:
                raise NotFound(f"{user_id!r} is not a member of project '{project.id}'")
            changed = project.id
            session.delete(member)
        self._announce_access(changed)

    def check_access(self, caller: Caller, project_id: str) -> Access:
        """The caller's access to a project; NONE for unknown and malformed ids, never an error."""
        try:
            parsed = uuid.UUID(project_id)
        except ValueError:
            return Access.NONE
        # The jobs service asks on every call: one statement built once, on a Core connection in autocommit.
        with self._db.reading() as connection:
            row = connection.execute(_ACCESS_QUERY, {"project_id": parsed, "user_id": caller.user_id}).first()
        if row is None:
            return Access.NONE
        owner_id, role = row.tuple()
        return caller_access(caller, parsed, owner_id, MemberRole(role) if role else None)

    @staticmethod
    def _access(
        session: Session, caller: Caller, project_id: uuid.UUID, lock: bool = False
    ) -> tuple[Project, Access] | None:
        statement = select(Project).where(Project.id == project_id)
        if lock:
            statement = statement.with_for_update()
        project = session.scalar(statement)
        if project is None:
            return None
        role = session.scalar(
            select(Member.role).where(Member.project_id == project_id, Member.user_id == caller.user_id)
        )
        level = caller_access(caller, project.id, project.owner_id, MemberRole(role) if role else None)
        return project, level

    def _load(
        self,
        session: Session,
        caller: Caller,
        project_id: str,
        needed: Access,
        action: str,
        lock: bool = False,
    ) -> Project:
        """The project, if the caller's access to it reaches `needed`.

        NotFound when the caller may not even see it; PermissionDenied when they see it but
        `needed` is more than they have.
        """
        found = self._access(session, caller, _project_id(project_id), lock)
        if found is None or found[1] is Access.NONE:
            raise NotFound(f"project {project_id!r} not found")
        if found[1] < needed:
            raise PermissionDenied(f"you may not {action} project {project_id!r}")
        return found[0]
