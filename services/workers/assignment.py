"""A worker's assignment: the DispatchJob message, decoded once at the edge into a plain object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiorch.jobs.v1 import events_pb2, types_pb2
from google.protobuf.message import DecodeError, Message

from services.workers.engines.base import BadInput


class BadAssignment(Exception):
    """The message is not a DispatchJob a worker can report on (undecodable, no job id or type)."""


@dataclass(frozen=True)
class Assignment:
    """One attempt of one job, as dispatched."""

    job_id: str
    job_type: str
    attempt: int
    params: types_pb2.JobParams
    input_keys: tuple[str, ...]
    input_url: str
    output_prefix: str
    created_at: datetime | None

    @classmethod
    def from_bytes(cls, data: bytes) -> Assignment:
        """Decode a DispatchJob; BadAssignment if it cannot be reported on."""
        message = events_pb2.DispatchJob()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise BadAssignment(f"undecodable dispatch message: {exc}") from exc
        if not message.job_id or message.type == types_pb2.JOB_TYPE_UNSPECIFIED:
            raise BadAssignment("dispatch message without job id or type")
        return cls(
            job_id=message.job_id,
            job_type=types_pb2.JobType.Name(message.type),
            attempt=message.attempt or 1,
            params=message.params,
            input_keys=tuple(message.input_keys),
            input_url=message.input_url,
            output_prefix=message.output_prefix.rstrip("/") or f"results/{message.job_id}",
            created_at=message.created_at.ToDatetime(tzinfo=UTC) if message.HasField("created_at") else None,
        )

    def typed_params(self) -> Message:
        """The parameters of the job's own type; BadInput if those of another type were given."""
        field = self.job_type.lower()
        given = self.params.WhichOneof("params")
        if given is not None and given != field:
            raise BadInput(f"parameters for {given.upper()} given to a {self.job_type} job")
        params: Message = getattr(self.params, field)
        return params
