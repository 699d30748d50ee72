"""run_forever: retries a failing step with growing pauses, recovers, and stops when cancelled."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from services.common.loops import Backoff, run_forever


def _faults(loop: str) -> float:
    return REGISTRY.get_sample_value("aiorch_background_faults_total", {"loop": loop, "kind": "transient"}) or 0.0


def test_backoff_doubles_up_to_its_longest() -> None:
    backoff = Backoff(first=0.5, longest=3.0)
    assert [backoff.after(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_failing_step_is_retried_after_growing_pauses_and_the_series_ends_on_success() -> None:
    pauses: list[float] = []
    outcomes = iter([OSError("nats down"), RuntimeError("bug"), None, OSError("again"), None])
    steps = 0

    async def step() -> float | None:
        nonlocal steps
        steps += 1
        outcome = next(outcomes, None)
        if steps == 6:
            raise asyncio.CancelledError
        if isinstance(outcome, BaseException):
            raise outcome
        return None

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    before = _faults("test loop")
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run_forever("test loop", step, interval=7.0, backoff=Backoff(1.0, 10.0), pause=pause))
    # fault, fault (2nd in a row: doubled), success (interval), fault (a new series: first pause), success
    assert pauses == [1.0, 2.0, 7.0, 1.0, 7.0]
    assert _faults("test loop") - before == 2


def test_a_step_chooses_its_own_pause() -> None:
    pauses: list[float] = []
    count = 0

    async def step() -> float:
        nonlocal count
        count += 1
        if count == 3:
            raise asyncio.CancelledError
        return 0.25 * count

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run_forever("own pause", step, interval=5.0, pause=pause))
    assert pauses == [0.25, 0.5]
