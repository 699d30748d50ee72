"""A compromised worker cannot move other jobs or point a result at other users' files (issue 13, finding 6).

The attacker holds the `workers` NATS user's credentials, as any worker process does. Before the fix, events
for another user's pending job with `output_keys=["inputs/<someone's file>"]` made that job COMPLETED and its
download returned the other user's file; deleting the result deleted that file. Now an event counts only with
the grant of the attempt's dispatch, and a completion only with outputs under the attempt's result prefix.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from typing import Any

import httpx
import nats
import pytest
from aiorch.jobs.v1 import events_pb2
from google.protobuf import struct_pb2

from services.common import messaging
from services.devstack.stack import Endpoints
from tests.figures import Figures
from tests.support import Accounts, User, make_project, tts_job, upload

pytestmark = pytest.mark.stack


def _private_file(http: httpx.Client, user: User) -> str:
    reply = upload(http, user, "private.wav", _tiny_wav(), "audio/wav")
    assert reply.status_code == 200, reply.text
    file_id: str = reply.json()["id"]
    return f"inputs/{file_id}"


def _tiny_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x01\x00" * 16000)
    return buffer.getvalue()


def _completed(job_id: str, attempt: int, grant: str, keys: list[str]) -> bytes:
    meta = struct_pb2.Struct()
    meta.update({"format": "wav"})
    event = events_pb2.JobEvent(
        job_id=job_id,
        attempt=attempt,
        worker_id="attacker",
        sequence=1,
        delivery=1,
        grant=grant,
        completed=events_pb2.JobCompleted(output_keys=keys, meta=meta),
    )
    return event.SerializeToString()


async def _as_worker(stack: Endpoints, action: Any) -> Any:
    nc = await nats.connect(stack.nats_url, allow_reconnect=False, **stack.nats_login("workers"))
    try:
        return await action(nc.jetstream())
    finally:
        await nc.close()


def _status(http: httpx.Client, user: User, job_id: str) -> dict[str, Any]:
    reply = http.get(f"/api/jobs/{job_id}", headers=user.headers)
    assert reply.status_code == 200, reply.text
    job: dict[str, Any] = reply.json()
    return job


def _settle(http: httpx.Client, user: User, job_id: str, seconds: float = 2.0) -> dict[str, Any]:
    # The intake applies an event within milliseconds; a refused one leaves nothing to wait for.
    time.sleep(seconds)
    return _status(http, user, job_id)


def test_an_event_without_the_dispatch_grant_moves_nothing(
    stack: Endpoints, http: httpx.Client, accounts: Accounts, workers_stopped: None, figures: Figures
) -> None:
    victim, other = accounts.create("editor"), accounts.create("editor")
    stolen = _private_file(http, other)
    job = tts_job(http, victim, make_project(http, victim)["id"], "Pending until a real worker takes it.")

    async def forge(js: Any) -> None:
        for grant in ("", "guessed-grant"):
            await js.publish(messaging.events_subject(job["id"]), _completed(job["id"], 1, grant, [stolen]))

    asyncio.run(_as_worker(stack, forge))
    after = _settle(http, victim, job["id"])
    assert after["status"] == "PENDING", after
    assert not after.get("result_id")
    figures.add("forged worker events without the dispatch grant: 2 sent as the workers user, 0 applied")


def test_a_completion_pointing_outside_the_jobs_prefix_fails_the_job(
    stack: Endpoints, http: httpx.Client, accounts: Accounts, workers_stopped: None, figures: Figures
) -> None:
    victim, other = accounts.create("editor"), accounts.create("editor")
    stolen = _private_file(http, other)
    job = tts_job(http, victim, make_project(http, victim)["id"], "The attacker takes this dispatch.")

    async def take_and_forge(js: Any) -> str:
        # A worker may take a dispatch of its type and so learn its grant: the worst a worker can do.
        consumer = messaging.worker_consumer("TTS")
        subscription = await js.pull_subscribe(
            messaging.dispatch_subject("TTS"), durable=consumer, stream=messaging.DISPATCH_STREAM
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for message in await subscription.fetch(batch=1, timeout=5):
                dispatch = events_pb2.DispatchJob.FromString(message.data)
                if dispatch.job_id != job["id"]:
                    await message.nak(delay=30)  # another test's job: back to the real workers later
                    continue
                await message.ack()
                await js.publish(
                    messaging.events_subject(job["id"]),
                    _completed(job["id"], dispatch.attempt, dispatch.grant, [stolen]),
                )
                return dispatch.grant
        raise AssertionError("the dispatch never arrived")

    grant = asyncio.run(_as_worker(stack, take_and_forge))
    assert grant
    after = _settle(http, victim, job["id"])
    assert after["status"] == "FAILED", after
    assert "outside the job's result prefix" in after["error"]
    assert not after.get("result_id")
    assert (stack.blob_dir / stolen).exists(), "the other user's file must stay where it was"
    figures.add("a completion naming another user's input: job FAILED, no result, the file untouched")
