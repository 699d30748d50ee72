"""The transitions are the only code that moves a stored job: state, version, timestamps and counters together."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from services.jobs.lifecycle import JobState, Verdict
from services.jobs.models import Job, JobAttempt
from services.jobs.transitions import apply_event, finish, holds_grant, new_attempt, new_grant, touch

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _job(status: JobState = JobState.RUNNING) -> Job:
    return Job(
        id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        type="TTS",
        status=status.value,
        progress=40,
        message="",
        error="",
        worker_id="w1",
        attempt=1,
        attempts=1,
        cancel_requested=False,
        last_delivery=1,
        last_sequence=3,
        dispatch_grant=new_grant(),
        version=5,
        created_at=NOW - timedelta(seconds=10),
        started_at=NOW - timedelta(seconds=5),
        updated_at=NOW - timedelta(seconds=5),
    )


def _finished(state: str) -> float:
    return REGISTRY.get_sample_value("aiorch_jobs_finished_total", {"type": "TTS", "state": state}) or 0.0


def test_finishing_sets_the_state_the_time_a_new_version_and_counts_once() -> None:
    job = _job()
    before = _finished("COMPLETED")
    finish(job, JobState.COMPLETED, now=NOW)
    assert (job.status, job.progress, job.finished_at, job.updated_at, job.version) == ("COMPLETED", 100, NOW, NOW, 6)
    assert _finished("COMPLETED") - before == 1


def test_a_final_job_cannot_finish_again_and_only_final_states_finish() -> None:
    job = _job()
    finish(job, JobState.CANCELLED, error="cancelled on request", now=NOW)
    with pytest.raises(ValueError, match="already CANCELLED"):
        finish(job, JobState.FAILED, now=NOW)
    with pytest.raises(ValueError, match="not a final state"):
        finish(_job(), JobState.RUNNING, now=NOW)


def test_a_new_attempt_keeps_the_old_one_in_the_history_and_starts_clean() -> None:
    job = _job()
    finish(job, JobState.FAILED, error="boom", now=NOW)
    grant = job.dispatch_grant
    session = Session()
    new_attempt(session, job)
    history = [o for o in session.new if isinstance(o, JobAttempt)]
    assert [(h.attempt, h.status, h.error) for h in history] == [(1, "FAILED", "boom")]
    assert (job.attempt, job.status, job.progress, job.error, job.finished_at) == (2, "PENDING", 0, "", None)
    assert (job.last_delivery, job.last_sequence) == (0, 0)
    assert job.dispatch_grant != grant, "the old attempt's worker must not report on the new one"


def test_an_applied_event_starts_a_delivery_and_sets_the_deadline() -> None:
    job = _job(JobState.PENDING)
    job.attempts, job.started_at = 0, None
    apply_event(job, Verdict(True, JobState.RUNNING, 0, new_delivery=True), 1, 1, "w2", 30.0, NOW)
    assert (job.status, job.attempts, job.worker_id) == ("RUNNING", 1, "w2")
    assert job.started_at == NOW
    assert job.deadline_at == NOW + timedelta(seconds=30)
    assert job.version == 6


def test_a_final_event_finishes_through_finish() -> None:
    job = _job()
    before = _finished("FAILED")
    apply_event(job, Verdict(True, JobState.FAILED, 40), 1, 4, "w1", None, NOW, error="engine crashed")
    assert (job.status, job.error, job.finished_at) == ("FAILED", "engine crashed", NOW)
    assert _finished("FAILED") - before == 1


def test_only_the_dispatchs_grant_is_held() -> None:
    job = _job()
    assert holds_grant(job, job.dispatch_grant)
    assert not holds_grant(job, "")
    assert not holds_grant(job, new_grant())
    job.dispatch_grant = ""  # dispatched before grants existed: its worker sends none
    assert holds_grant(job, "")
    assert not holds_grant(job, "a grant of another job")


def test_touch_moves_only_version_and_time() -> None:
    job = _job()
    touch(job, NOW)
    assert (job.version, job.updated_at, job.status) == (6, NOW, "RUNNING")
