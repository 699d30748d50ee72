"""The jobs service asks the projects service what a caller may do; it never reads that schema."""

from __future__ import annotations

import json
import uuid
from enum import IntEnum

import grpc
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc
from grpc import aio

from services.common.errors import DomainError, PermissionDenied, Unauthenticated, Unavailable
from services.common.identity import Caller


class Access(IntEnum):
    """What a caller may do on a project; ordered, so `>=` compares."""

    NONE = 1
    READ = 2
    WRITE = 3
    OWNER = 4


_FROM_PROTO = {
    projects_pb2.ACCESS_NONE: Access.NONE,
    projects_pb2.ACCESS_READ: Access.READ,
    projects_pb2.ACCESS_WRITE: Access.WRITE,
    projects_pb2.ACCESS_OWNER: Access.OWNER,
}


# Both calls are reads: a call that finds the projects service restarting (a rollout, a crash) is retried by
# grpc itself for about a second before it is refused, and the channel reconnects within 100 ms-2 s instead
# of its default backoff of up to two minutes.
_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "aiorch.projects.v1.ProjectService"}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}
_CHANNEL_OPTIONS = (
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def _translate(error: grpc.RpcError) -> DomainError:
    # The caller's own token is forwarded: its problems are the caller's, not an outage.
    if error.code() is grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(error.details() or "token is not valid")
    return Unavailable(f"the projects service did not answer: {error.code().name}")


# The project a caller's OpenAI-compatible calls use when they name none.
DEFAULT_PROJECT = "default"


class ProjectsClient:
    """CheckAccess and the caller's visible projects, over gRPC with the caller's own token."""

    def __init__(self, address: str) -> None:
        self._channel = aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = projects_pb2_grpc.ProjectServiceStub(self._channel)

    @staticmethod
    def _metadata(caller: Caller) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {caller.token}"),)

    async def access(self, caller: Caller, project_id: uuid.UUID | str) -> Access:
        """The caller's access to a project (NONE when it does not exist or is hidden)."""
        try:
            reply = await self._stub.CheckAccess(
                projects_pb2.CheckAccessRequest(project_id=str(project_id)),
                metadata=self._metadata(caller),
                timeout=10,
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return _FROM_PROTO.get(reply.access, Access.NONE)

    async def visible_projects(self, caller: Caller) -> list[uuid.UUID]:
        """Every project the caller may read (admins: every project)."""
        ids: list[uuid.UUID] = []
        token = ""
        while True:
            try:
                page = await self._stub.ListProjects(
                    projects_pb2.ListProjectsRequest(page_size=500, page_token=token),
                    metadata=self._metadata(caller),
                    timeout=10,
                )
            except grpc.RpcError as exc:
                raise _translate(exc) from exc
            ids += [uuid.UUID(p.id) for p in page.projects]
            token = page.next_page_token
            if not token:
                return ids

    async def default_project(self, caller: Caller) -> uuid.UUID:
        """The caller's own project named DEFAULT_PROJECT, made on first use (the OpenAI-compatible API's jobs
        land there when the call names no project). Two first calls at once may make two; the oldest wins."""
        metadata = self._metadata(caller)
        try:
            page = await self._stub.ListProjects(
                projects_pb2.ListProjectsRequest(
                    owner="me", search=DEFAULT_PROJECT, ordering="created_at", page_size=100
                ),
                metadata=metadata,
                timeout=10,
            )
            for project in page.projects:
                if project.name == DEFAULT_PROJECT:
                    return uuid.UUID(project.id)
            made = await self._stub.CreateProject(
                projects_pb2.CreateProjectRequest(
                    name=DEFAULT_PROJECT, description="Jobs made through the OpenAI-compatible API (/v1/)."
                ),
                metadata=metadata,
                timeout=10,
            )
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(
                    f"no project given and no '{DEFAULT_PROJECT}' project of yours: {exc.details()}"
                ) from exc
            raise _translate(exc) from exc
        return uuid.UUID(made.id)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)
