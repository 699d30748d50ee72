"""What the database says after a fault: final states, results per job, the outbox, jobs nobody accepted."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class Audit:
    """The stored facts about one project's jobs, against the ids the clients were given."""

    states: dict[str, str]  # job id -> status, every job of the project
    results: dict[str, int]  # job id -> result rows
    attempts: dict[str, int]  # job id -> worker starts (a redelivery adds one)
    errors: dict[str, str]  # job id -> error, for jobs that have one
    outbox_rows: int

    def lost(self, accepted: list[str]) -> list[str]:
        """Accepted jobs that are missing or not in a final state."""
        return [j for j in accepted if self.states.get(j) not in FINAL_STATES]

    def unaccepted(self, accepted: list[str]) -> list[str]:
        """Jobs stored although no client was told they were accepted (half-written creates)."""
        return sorted(set(self.states) - set(accepted))

    def duplicates(self) -> int:
        """Results beyond one per job."""
        return sum(max(0, n - 1) for n in self.results.values())

    def state_counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        return dict(Counter(self.states.values()))

    def error_counts(self) -> dict[str, int]:
        """How many jobs ended with each error."""
        return dict(Counter(self.errors.values()))

    def redeliveries(self) -> int:
        """Worker starts beyond the first, over all jobs."""
        return sum(max(0, n - 1) for n in self.attempts.values())


def audit(database_url: str, project_id: str) -> Audit:
    """Read the project's jobs, their results and the outbox."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT j.id::text, j.status, j.attempts, count(r.id), j.error FROM jobs.jobs j "
                    "LEFT JOIN jobs.results r ON r.job_id = j.id WHERE j.project_id = :p "
                    "GROUP BY j.id, j.status, j.attempts, j.error"
                ),
                {"p": project_id},
            ).all()
            outbox = int(connection.execute(text("SELECT count(*) FROM jobs.outbox")).scalar_one())
    finally:
        engine.dispose()
    return Audit(
        states={r[0]: r[1] for r in rows},
        results={r[0]: int(r[3]) for r in rows},
        attempts={r[0]: int(r[2]) for r in rows},
        errors={r[0]: r[4] for r in rows if r[4]},
        outbox_rows=outbox,
    )


def settled(database_url: str, project_id: str, accepted: list[str], limit: float) -> Audit:
    """Poll until every accepted job is final and the outbox is drained, or `limit` seconds passed; the last audit."""
    deadline = time.monotonic() + limit
    while True:
        try:
            found = audit(database_url, project_id)
        except OperationalError:
            # The database itself may still be coming back from a fault.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        if (not found.lost(accepted) and found.outbox_rows == 0) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def non_final_count(database_url: str, project_id: str) -> int:
    """Jobs of the project not yet final: what a fault now hits."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM jobs.jobs WHERE project_id = :p AND status IN ('PENDING', 'RUNNING')"),
                    {"p": project_id},
                ).scalar_one()
            )
    finally:
        engine.dispose()
