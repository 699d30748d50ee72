"""A mix of cheap jobs of several types, created over REST with request ids so a retried create is accepted once."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import User, upload

# A create that fails for a reason other than a fault (bad input, a bug) must fail the test, not be retried.
OUTAGE_CODES = {502, 503, 504}
RETRY_PAUSE_SECONDS = 0.25
# Clients creating at the same time.
CREATORS = 8


@dataclass(frozen=True)
class Inputs:
    """Uploaded input files of one user (inputs are private to their uploader)."""

    speech_file_id: str


@dataclass
class Submission:
    """Jobs accepted (ids in creation order) and creates refused during an outage, with their answers."""

    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    # The answer of every create that was retried (list appends are safe across the creating threads).
    retried: list[int] = field(default_factory=list)


def upload_inputs(http: httpx.Client, user: User, speech: bytes) -> Inputs:
    """Upload the speech recording the STT and voice-cloning jobs read."""
    reply = upload(http, user, "speech.wav", speech, "audio/wav")
    assert reply.status_code == 200, reply.text
    return Inputs(reply.json()["id"])


def job_bodies(project_id: str, inputs: Inputs, count: int, tag: str) -> list[dict[str, Any]]:
    """`count` job requests: two STT and two voice-cloning jobs on the tiny input, TTS on short texts for the rest."""
    bodies: list[dict[str, Any]] = []
    for n in range(count):
        body: dict[str, Any] = {"project_id": project_id, "client_request_id": f"{tag}-{n}-{uuid.uuid4().hex[:8]}"}
        if n in (5, 25):
            body |= {"type": "STT", "params": {"stt": {}}, "input_file_id": inputs.speech_file_id}
        elif n in (15, 35):
            body |= {
                "type": "VOICE_CLONING",
                "params": {"voice_cloning": {"text": f"Copy number {n}."}},
                "input_file_id": inputs.speech_file_id,
            }
        else:
            # Long enough that 50 jobs are still in flight when the fault hits, even on an idle machine. Spoken
            # by espeak-ng: the rounds need many quick jobs in flight, and the neural voice takes tens of
            # seconds per job on a loaded machine (its speed is the bench's business, not the faults').
            text = f"Chaos job number {n} says hello. It speaks a few short sentences in round {tag}. " * 4
            body |= {"type": "TTS", "params": {"tts": {"text": text, "voice": "espeak"}}}
        bodies.append(body)
    return bodies


def create(http: httpx.Client, user: User, body: dict[str, Any], into: Submission, retry_for: float) -> None:
    """POST one job; while the gateway answers an outage, retry the same request id for up to `retry_for` s.

    Without retries (`retry_for` 0) an outage answer is recorded as refused.
    """
    deadline = time.monotonic() + retry_for
    while True:
        try:
            reply = http.post("/api/jobs/", json=body, headers=user.headers)
        except httpx.TransportError as exc:
            status, text = 0, str(exc)
        else:
            if reply.status_code == 200:
                into.accepted.append(reply.json()["id"])
                return
            status, text = reply.status_code, reply.text
            assert status in OUTAGE_CODES, f"create refused for another reason than an outage: {status} {text}"
        if time.monotonic() >= deadline:
            into.refused.append((status, text))
            return
        into.retried.append(status)
        time.sleep(RETRY_PAUSE_SECONDS)


def create_all(
    http: httpx.Client, user: User, bodies: list[dict[str, Any]], into: Submission, retry_for: float = 0.0
) -> Submission:
    """Create every job, several at once (so that most are still in flight when the last is accepted)."""
    with ThreadPoolExecutor(CREATORS) as pool:
        list(pool.map(lambda body: create(http, user, body, into, retry_for), bodies))
    return into
