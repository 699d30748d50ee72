"""Nothing is lost or done twice: 50+ jobs of several types in flight, one fault at a time, then two at once.

Each round has its own user and project: it creates 64 jobs (TTS, STT and voice cloning), opens one
watch stream per job through the gateway, injects its fault(s) while most jobs are still pending or
running, and then checks the stored outcome: every accepted job final (here: COMPLETED), at most one
result each, no job stored that no client was told of, the outbox drained, and every watcher, after
reconnecting as often as it had to, saw the final state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.chaos.audit import non_final_count, settled
from tests.chaos.chaos_stack import Chaos
from tests.chaos.faults import (
    Fault,
    Round,
    kill_jobs_service,
    kill_worker,
    restart_nats,
    restart_postgres,
    stop_projects_service,
    together,
)
from tests.chaos.jobmix import create_all, job_bodies, upload_inputs
from tests.chaos.watchers import JobWatchers
from tests.figures import Figures
from tests.support import make_project, tts_job, wait_for

JOBS_PER_ROUND = 64
MIN_IN_FLIGHT = 50
SETTLE_SECONDS = 180


@pytest.fixture(scope="module")
def speech(chaos: Chaos) -> Iterator[bytes]:
    """A short English recording, made by the TTS engine of the chaos stack (the STT and cloning input)."""
    editor = chaos.accounts.create("editor")
    project = make_project(chaos.http, editor)
    job = tts_job(chaos.http, editor, project["id"], "The weather is nice today, we walk to the market.")
    done = wait_for(chaos.http, editor, job["id"], {"COMPLETED"}, timeout=120)
    result = chaos.http.get(f"/api/jobs/{done['id']}/result/", headers=editor.headers).json()
    reply = chaos.http.get(result["result_url"], headers=editor.headers)
    assert reply.status_code == 200
    yield reply.content


FAULTS: list[Fault] = [
    kill_worker,
    kill_jobs_service,
    restart_nats,
    restart_postgres,
    stop_projects_service,
    together(kill_worker, restart_nats),
    together(kill_jobs_service, restart_postgres),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_accepted_job_finishes_once_through_the_fault(chaos: Chaos, speech: bytes, fault: Fault) -> None:
    # Given 64 jobs of three types being worked on, and a watcher on each
    started = time.monotonic()
    editor = chaos.accounts.create("editor")
    project_id = make_project(chaos.http, editor)["id"]
    inputs = upload_inputs(chaos.http, editor, speech)
    tag = fault.name
    counter = iter(range(1000, 2000))

    def more_jobs(count: int, label: str) -> list[dict[str, object]]:
        return job_bodies(project_id, inputs, count, f"{tag}-{label}-{next(counter)}")

    round_ = Round(chaos.stack, chaos.http, editor, project_id, more_jobs)
    create_all(chaos.http, editor, job_bodies(project_id, inputs, JOBS_PER_ROUND, tag), round_.submission)
    watchers = JobWatchers(chaos.gateway_grpc, editor.metadata, list(round_.submission.accepted), SETTLE_SECONDS)
    watchers.start()
    in_flight = non_final_count(chaos.endpoints.database_url, project_id)

    # When the fault hits (and heals)
    fault.inject(round_)

    # Then every accepted job ends once, and every watcher saw how
    accepted = round_.submission.accepted
    found = settled(chaos.endpoints.database_url, project_id, accepted, SETTLE_SECONDS)
    watchers.join(SETTLE_SECONDS)
    unseen = [j for j in watchers.finals if watchers.finals[j] != found.states.get(j)]
    unseen += [j for j in accepted[:JOBS_PER_ROUND] if j not in watchers.finals]
    Figures("chaos", f"faults[{tag}]").record(
        jobs_accepted=len(accepted),
        in_flight_at_fault=in_flight,
        faults_injected=tag.count("+") + 1,
        creates_refused=len(round_.submission.refused),
        create_retries=len(round_.submission.retried),
        states=found.state_counts(),
        jobs_lost=len(found.lost(accepted)),
        duplicates=found.duplicates(),
        unaccepted_rows=len(found.unaccepted(accepted)),
        max_results_per_job=max(found.results.values(), default=0),
        redeliveries=found.redeliveries(),
        outbox_rows=found.outbox_rows,
        watcher_reconnects=watchers.reconnects,
        watchers_without_final=len(unseen),
        seconds=round(time.monotonic() - started, 1),
        notes="; ".join(round_.notes),
    )
    assert in_flight >= MIN_IN_FLIGHT, f"only {in_flight} jobs were in flight when the fault hit"
    assert len(round_.submission.refused) == fault.refuses, round_.submission.refused
    assert found.lost(accepted) == [], "accepted jobs never finished"
    assert found.unaccepted(accepted) == [], "jobs were stored that no client was told of"
    assert found.duplicates() == 0
    assert found.state_counts() == {"COMPLETED": len(accepted)}, found.error_counts()
    assert all(found.results[j] == 1 for j in accepted)
    assert found.outbox_rows == 0
    assert unseen == [], f"{len(unseen)} watchers did not see their job's final state"
