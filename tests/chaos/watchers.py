"""One WatchJob stream per job through the gateway, reconnecting after every fault, until each job is final."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from grpc import aio

FINAL = {types_pb2.COMPLETED, types_pb2.FAILED, types_pb2.CANCELLED}
RECONNECT_PAUSE_SECONDS = 1.0


class JobWatchers:
    """Watches jobs in a thread of its own; `finals` maps each job to the final state its stream showed."""

    def __init__(self, address: str, metadata: tuple[tuple[str, str], ...], job_ids: list[str], limit: float) -> None:
        self._address = address
        self._metadata = metadata
        self._job_ids = list(job_ids)
        self._limit = limit
        self.finals: dict[str, str] = {}
        self.reconnects = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch_all()), name="chaos-watchers")

    def start(self) -> JobWatchers:
        """Open the streams."""
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        """Wait for every stream to end (each ends by itself at its limit)."""
        self._thread.join(timeout)

    async def _watch_all(self) -> None:
        async with aio.insecure_channel(self._address) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            deadline = time.monotonic() + self._limit
            await asyncio.gather(*(self._watch(stub, job_id, deadline) for job_id in self._job_ids))

    async def _watch(self, stub: jobs_pb2_grpc.JobServiceAsyncStub, job_id: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                stream = stub.WatchJob(
                    jobs_pb2.WatchJobRequest(id=job_id),
                    metadata=self._metadata,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
                async for update in stream:
                    if update.job.status in FINAL:
                        self.finals[job_id] = types_pb2.JobState.Name(update.job.status)
                        return
            except grpc.RpcError:
                pass
            # The stream broke (a fault) or ended without a final state: connect again, the snapshot comes first.
            self.reconnects += 1
            await asyncio.sleep(RECONNECT_PAUSE_SECONDS)
