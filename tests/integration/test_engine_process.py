"""An engine in its own process: a real TTS engine run through EngineProcess, killed and stopped midway."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import pytest

from services.common.job_params import TtsParams
from services.workers.engine_process import MIB, EngineProcess, EngineProcessDied
from services.workers.engines.base import BadInput, Cancelled
from services.workers.engines.tts import TextToSpeech
from services.workers.stop import StopFlag, StopReason
from tests.engine_context import RecordingContext

# A few seconds of synthesis, reported sentence by sentence: long enough to act on in the middle.
LONG_TEXT = " ".join(["Speech takes time to make, one sentence after another, on and on."] * 300)
SHORT_TEXT = "The quick brown fox jumps over the lazy dog."

pytestmark = pytest.mark.stack  # starts processes (engine children), like the worker runtime tests


async def _first_progress(ctx: RecordingContext) -> None:
    while not ctx.percents:
        await asyncio.sleep(0.02)


def _context(tmp_path: Path) -> RecordingContext:
    return RecordingContext(Path(tempfile.mkdtemp(dir=tmp_path)))


async def _killed_midway_then_short(tmp_path: Path) -> tuple[BaseException | None, list[Path], int | None, int | None]:
    engine = EngineProcess(TextToSpeech(), memory_limit_bytes=2048 * MIB, stop_grace_seconds=1.0)
    try:
        ctx = _context(tmp_path)
        job = asyncio.ensure_future(engine.run(TtsParams(text=LONG_TEXT), [], ctx, StopFlag()))
        await asyncio.wait_for(_first_progress(ctx), 60)
        first_pid = engine.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        error: BaseException | None = None
        try:
            await job
        except BaseException as raised:
            error = raised
        after = await engine.run(TtsParams(text=SHORT_TEXT), [], _context(tmp_path), StopFlag())
        return error, after.outputs, first_pid, engine.pid
    finally:
        engine.close()


def test_an_engine_process_killed_midway_fails_its_job_as_retryable_and_the_next_gets_a_new_one(
    tmp_path: Path,
) -> None:
    # Given a TTS engine process in the middle of a long text, when it is killed from outside
    error, outputs, first_pid, second_pid = asyncio.run(_killed_midway_then_short(tmp_path))

    # Then that job fails with EngineProcessDied (not BadInput: another attempt may succeed), and the next
    # job runs to its result in a new process
    assert isinstance(error, EngineProcessDied)
    assert "exit code -9" in str(error)
    assert [p.name for p in outputs] == ["speech.wav"]
    assert outputs[0].stat().st_size > 1000
    assert second_pid != first_pid


async def _stopped_midway_then_short(tmp_path: Path) -> tuple[BaseException | None, list[int], list[Path]]:
    engine = EngineProcess(TextToSpeech(), memory_limit_bytes=2048 * MIB, stop_grace_seconds=1.0)
    try:
        ctx = _context(tmp_path)
        stop = StopFlag()
        job = asyncio.ensure_future(engine.run(TtsParams(text=LONG_TEXT), [], ctx, stop))
        await asyncio.wait_for(_first_progress(ctx), 60)
        stop.request(StopReason.CANCELLED)
        error: BaseException | None = None
        try:
            await job
        except BaseException as raised:
            error = raised
        after = await engine.run(TtsParams(text=SHORT_TEXT), [], _context(tmp_path), StopFlag())
        return error, ctx.percents, after.outputs
    finally:
        engine.close()


def test_a_stop_ends_the_job_cancelled_and_the_engine_process_serves_the_next(tmp_path: Path) -> None:
    # Given a TTS engine process in the middle of a long text, when its job's stop flag is set
    error, percents, outputs = asyncio.run(_stopped_midway_then_short(tmp_path))

    # Then the job ends with Cancelled (at the engine's next checkpoint, or by a kill after the grace),
    # before the text was spoken to the end, and the next job completes
    assert isinstance(error, Cancelled)
    assert 100 not in percents
    assert [p.name for p in outputs] == ["speech.wav"]


def test_an_engine_process_over_its_ceiling_fails_the_job_as_bad_input(tmp_path: Path) -> None:
    # Given a ceiling no Python process fits under, when a job runs, then it fails with the ceiling's reason
    async def run() -> BaseException | None:
        engine = EngineProcess(TextToSpeech(), memory_limit_bytes=1 * MIB, stop_grace_seconds=1.0)
        try:
            await engine.run(TtsParams(text=SHORT_TEXT), [], _context(tmp_path), StopFlag())
        except BaseException as raised:
            return raised
        finally:
            engine.close()
        return None

    error = asyncio.run(run())

    assert isinstance(error, BadInput)
    assert str(error) == "the job used more than 1 MiB of memory"
