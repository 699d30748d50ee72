"""A worker's assignment: the DispatchJob message, decoded once at the edge into a plain object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiorch.jobs.v1 import events_pb2
from google.protobuf.message import DecodeError

from services.common import job_params_proto, job_types
from services.common.job_params import JobParams
from services.workers.engines.base import BadInput


class BadAssignment(Exception):
    """The message is not a DispatchJob a worker can report on (undecodable, no job id or type)."""


@dataclass(frozen=True)
class Assignment:
    """One attempt of one job, as dispatched."""

    job_id: str
    job_type: str
    attempt: int
    params: JobParams  # as given; the defaults of the job's type when none were given
    input_keys: tuple[str, ...]
    input_url: str
    output_prefix: str
    created_at: datetime | None
    # Copied into every event: the jobs service accepts events only from a holder of the dispatch.
    grant: str = ""

    @classmethod
    def from_bytes(cls, data: bytes) -> Assignment:
        """Decode a DispatchJob; BadAssignment if it cannot be reported on."""
        message = events_pb2.DispatchJob()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise BadAssignment(f"undecodable dispatch message: {exc}") from exc
        if not message.job_id:
            raise BadAssignment("dispatch message without job id")
        try:
            spec = job_types.by_number(message.type)
        except job_types.UnknownJobType as exc:
            raise BadAssignment(f"dispatch message without a known job type: {exc}") from exc
        given = job_params_proto.from_proto(message.params)
        return cls(
            job_id=message.job_id,
            job_type=spec.name,
            attempt=message.attempt or 1,
            params=given if given is not None else job_params_proto.params_for(spec, message.params),
            input_keys=tuple(message.input_keys),
            input_url=message.input_url,
            output_prefix=message.output_prefix.rstrip("/") or f"results/{message.job_id}",
            created_at=message.created_at.ToDatetime(tzinfo=UTC) if message.HasField("created_at") else None,
            grant=message.grant,
        )

    def typed_params(self) -> JobParams:
        """The parameters of the job's own type; BadInput if those of another type were given."""
        given = job_params_proto.job_type_for(self.params).name
        if given != self.job_type:
            raise BadInput(f"parameters for {given} given to a {self.job_type} job")
        return self.params
