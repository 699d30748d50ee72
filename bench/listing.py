"""Section `listing`: keyset pages of a job list with a million jobs stored, against a get-by-id.

The rows are written straight into the jobs schema with INSERT ... SELECT generate_series: benchmark
setup, not a path the service offers. Two in five rows belong to the bench project, spread over the
five states, so "the project's COMPLETED jobs" holds a fifth of those. The project is the section's own:
jobs of earlier sections still changing state would move the pages under the walk.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from grpc import aio
from sqlalchemy import text

from bench.context import BenchContext
from bench.report import Figure, judged
from bench.stats import Latency
from services.common.db import make_engine
from services.common.pagination import MAX_PAGE_SIZE

PAGE_SIZE = 50
DEEP_PAGES = 1000
OTHER_PROJECTS = 1000

FILL = text(
    """
    INSERT INTO jobs.jobs (id, project_id, owner_id, name, description, type, status, progress, message, params,
                           input_url, attempt, attempts, error, worker_id, cancel_requested, last_delivery,
                           last_sequence, version, created_at, updated_at)
    SELECT gen_random_uuid(),
           CASE WHEN i % 5 < 2 THEN CAST(:project AS uuid)
                ELSE CAST('00000000-0000-4000-8000-' || lpad(to_hex(i % :others), 12, '0') AS uuid) END,
           CAST(:owner AS uuid), 'stored job ' || i, '', 'TTS',
           (ARRAY['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'])[1 + (i / 5) % 5],
           100, '', :params, '', 1, 1, '', '', false, 0, 0, 1,
           now() - make_interval(secs => i), now() - make_interval(secs => i)
    FROM generate_series(1, :rows) AS i
    """
)


# The table's secondary indexes, as PostgreSQL prints them: dropped for the bulk insert and built again
# after it (one sort per index instead of a million scattered inserts), exactly as they were.
SECONDARY_INDEXES = text(
    """
    SELECT indexname, indexdef FROM pg_indexes i
    WHERE schemaname = 'jobs' AND tablename = 'jobs'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
    """
)


def fill(ctx: BenchContext, project_id: str, rows: int) -> float:
    """Store `rows` jobs and ANALYZE; the seconds it took."""
    params = types_pb2.JobParams(tts=types_pb2.TtsParams(text="Stored.")).SerializeToString()
    engine = make_engine(ctx.stack.endpoints.database_url, 1)
    started = time.monotonic()
    try:
        with engine.begin() as connection:
            indexes = connection.execute(SECONDARY_INDEXES).tuples().all()
            for name, _ in indexes:
                connection.execute(text(f'DROP INDEX jobs."{name}"'))
            connection.execute(
                FILL,
                {
                    "project": project_id,
                    "owner": ctx.stack.editor.user_id,
                    "others": OTHER_PROJECTS,
                    "params": params,
                    "rows": rows,
                },
            )
            for _, definition in indexes:
                connection.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE jobs.jobs"))
    finally:
        engine.dispose()
    return time.monotonic() - started


# The page `deep` of the project's COMPLETED jobs in plain SQL, by OFFSET (what ListJobs did before keyset
# pages) and by key; the same rows, timed on one connection to compare the two queries alone.
OFFSET_PAGE = text(
    """
    SELECT * FROM jobs.jobs WHERE project_id = CAST(:project AS uuid) AND status = 'COMPLETED'
    ORDER BY created_at DESC, id DESC OFFSET :offset LIMIT :size
    """
)
KEY_OF_ROW = text(
    """
    SELECT created_at, id FROM jobs.jobs WHERE project_id = CAST(:project AS uuid) AND status = 'COMPLETED'
    ORDER BY created_at DESC, id DESC OFFSET :offset - 1 LIMIT 1
    """
)
KEYSET_AFTER = text(
    """
    SELECT * FROM jobs.jobs WHERE project_id = CAST(:project AS uuid) AND status = 'COMPLETED'
      AND (created_at, id) < (:created_at, :id)
    ORDER BY created_at DESC, id DESC LIMIT :size
    """
)


def sql_pages(ctx: BenchContext, project_id: str, deep: int, samples: int) -> tuple[Latency, Latency, str]:
    """(OFFSET, keyset) latencies of the page after `deep` pages as bare SQL, and its first job's id."""
    engine = make_engine(ctx.stack.endpoints.database_url, 1)
    arguments = {"project": project_id, "offset": deep * PAGE_SIZE, "size": PAGE_SIZE + 1}
    try:
        with engine.connect() as connection:
            created_at, row_id = connection.execute(KEY_OF_ROW, arguments).one()
            first_id = str(connection.execute(OFFSET_PAGE, arguments).first().id)  # type: ignore[union-attr]
            times: dict[str, list[float]] = {"offset": [], "keyset": []}
            for _ in range(samples):
                started = time.perf_counter()
                connection.execute(OFFSET_PAGE, arguments).all()
                times["offset"].append(time.perf_counter() - started)
                started = time.perf_counter()
                connection.execute(KEYSET_AFTER, {**arguments, "created_at": created_at, "id": row_id}).all()
                times["keyset"].append(time.perf_counter() - started)
    finally:
        engine.dispose()
    return Latency.of_seconds(times["offset"]), Latency.of_seconds(times["keyset"]), first_id


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    before = time.perf_counter()
    await call()
    return time.perf_counter() - before


async def run(ctx: BenchContext) -> list[Figure]:
    """First and deep pages of (project, COMPLETED) against GetJob, sampled in turn."""
    project_id = ctx.stack.create_project()
    fill_seconds = fill(ctx, project_id, ctx.size.stored_jobs)
    matching = ctx.size.stored_jobs * 2 // 5 // 5
    stride = MAX_PAGE_SIZE // PAGE_SIZE
    # Pages skipped before the deep page (a multiple of the walk's stride); the deep page is the next one.
    deep = min(DEEP_PAGES, (matching // PAGE_SIZE - 1) // stride * stride)
    walked = deep // stride
    async with aio.insecure_channel(ctx.stack.endpoints.grpc["jobs"]) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        metadata = ctx.stack.editor.metadata
        first = jobs_pb2.ListJobsRequest(project_id=project_id, status=types_pb2.COMPLETED, page_size=PAGE_SIZE)
        page = await stub.ListJobs(first, metadata=metadata)
        ids = [job.id for job in page.jobs]
        # To page `deep`, in pages of the largest size: a token is bound to the filters, not to the size.
        walk_started = time.monotonic()
        token = ""
        for _ in range(walked):
            request = jobs_pb2.ListJobsRequest()
            request.CopyFrom(first)
            request.page_size, request.page_token = MAX_PAGE_SIZE, token
            token = (await stub.ListJobs(request, metadata=metadata)).next_page_token
        walk_seconds = time.monotonic() - walk_started
        deep_request = jobs_pb2.ListJobsRequest()
        deep_request.CopyFrom(first)
        deep_request.page_token = token
        deep_page = await stub.ListJobs(deep_request, metadata=metadata)
        # Past EXACT_COUNT_LIMIT, total_size is the planner's estimate: near `matching`, not equal to it.
        if len(deep_page.jobs) != PAGE_SIZE or not matching / 2 < page.total_size < matching * 2:
            raise RuntimeError(f"page {deep + 1} holds {len(deep_page.jobs)} jobs; total_size {page.total_size}")

        samples: dict[str, list[float]] = {"get": [], "first": [], "deep": []}
        for _ in range(ctx.size.list_samples):
            get = jobs_pb2.GetJobRequest(id=random.choice(ids))  # noqa: S311 - spreading reads, not security
            samples["get"].append(await _timed(lambda: stub.GetJob(get, metadata=metadata)))  # noqa: B023
            samples["first"].append(await _timed(lambda: stub.ListJobs(first, metadata=metadata)))
            samples["deep"].append(await _timed(lambda: stub.ListJobs(deep_request, metadata=metadata)))
    by_offset, by_key, first_id = await asyncio.to_thread(
        sql_pages, ctx, project_id, deep, max(10, ctx.size.list_samples // 10)
    )
    if deep_page.jobs[0].id != first_id:
        raise RuntimeError(f"page {deep + 1} starts at job {deep_page.jobs[0].id}, OFFSET says {first_id}")
    get_latency, first_page, deep_page_latency = (Latency.of_seconds(samples[k]) for k in ("get", "first", "deep"))
    rows = f"{ctx.size.stored_jobs:,}"
    return [
        Figure("listing", f"store {rows} jobs + ANALYZE", fill_seconds, "s"),
        judged("listing", "total_size (planner's estimate)", page.total_size, "jobs", "exact", matching),
        Figure(
            "listing",
            f"walk past {deep} pages, {MAX_PAGE_SIZE} jobs a call",
            walk_seconds * 1000 / max(walked, 1),
            "ms/page",
        ),
        Figure("listing", "get-by-id p50", get_latency.p50_ms, "ms"),
        Figure("listing", "get-by-id p99", get_latency.p99_ms, "ms"),
        judged("listing", "first page p50", first_page.p50_ms, "ms", "get p50", get_latency.p50_ms),
        judged("listing", "first page p99", first_page.p99_ms, "ms", "get p99", get_latency.p99_ms, at_most=10),
        judged("listing", f"page {deep + 1} p50", deep_page_latency.p50_ms, "ms", "first p50", first_page.p50_ms),
        judged("listing", f"SQL page {deep + 1} by key p50", by_key.p50_ms, "ms", "by OFFSET", by_offset.p50_ms),
        judged(
            "listing",
            f"page {deep + 1} p99",
            deep_page_latency.p99_ms,
            "ms",
            "first p99",
            first_page.p99_ms,
            at_most=1.5,
        ),
    ]
