"""An engine in a child process of its own, under a memory ceiling, kept warm between jobs.

An engine decodes a stranger's media; a file crafted to blow up memory must cost that job, not the worker.
So the engine call runs in a long-lived child process: models stay loaded between jobs, and the parent
watches the child's resident memory (its own and that of its ffmpeg children). A job that passes the
ceiling is killed with its child and fails with a clear reason; the next job gets a fresh child.
A stop (cancel, time limit, shutdown) sets a flag the engine sees at its next checkpoint; a child that does
not get there within the grace is killed, which also gives back at once whatever memory it held.

The child is started with the "spawn" method: the worker has NATS and gRPC threads, and a forked copy of a
threaded process can deadlock or crash before it gets anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import pickle
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import psutil

from services.common.logging import get_logger
from services.workers.engines.base import BadInput, Cancelled, Engine, EngineContext, EngineResult
from services.workers.stop import StopFlag

log = get_logger(__name__)

MIB = 1024 * 1024
# How often the parent reads the child's memory; an allocation faster than this overshoots by what it
# allocates in one interval, so the ceiling is a watchdog, not a hard wall.
MEMORY_POLL_SECONDS = 0.1
# An idle engine process holding more than this share of its ceiling is replaced after its job.
RECYCLE_FRACTION = 0.5
_PR_SET_PDEATHSIG = 1


class MemoryCeilingExceeded(BadInput):
    """The engine's process passed its memory ceiling; the same input would pass it again, so no retry."""


class EngineProcessDied(RuntimeError):
    """The engine's process ended in the middle of a job (a crash or a kill from outside); retried."""


@dataclass(frozen=True)
class _Job:
    params: Any
    inputs: list[Path]
    output_dir: Path


@dataclass(frozen=True)
class _Progress:
    percent: int
    message: str


@dataclass(frozen=True)
class _Log:
    line: str
    level: str


@dataclass(frozen=True)
class _Done:
    result: EngineResult


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class _ChildContext:
    """The EngineContext inside the child: reports go up the pipe, the stop flag comes from the parent."""

    def __init__(self, conn: Connection, stop: Event, output_dir: Path) -> None:
        self._conn = conn
        self._stop = stop
        self._output_dir = output_dir

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    def progress(self, percent: int, message: str = "") -> None:
        self._conn.send(_Progress(int(percent), message))

    def log(self, line: str, level: str = "info") -> None:
        self._conn.send(_Log(line, level))

    def check_cancelled(self) -> None:
        if self._stop.is_set():
            raise Cancelled("stop requested")


def _die_with_parent() -> None:
    # A worker killed with SIGKILL cannot stop its children; Linux then kills them for it.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def serve(conn: Connection, stop: Event, engine: Engine) -> None:
    """The child's loop: run each job sent down the pipe and answer with its result or error, until EOF."""
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when its engine stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job: _Job = conn.recv()
        except (EOFError, OSError):
            return
        ctx = _ChildContext(conn, stop, job.output_dir)
        try:
            reply: _Done | _Raised = _Done(engine.run(job.params, job.inputs, ctx))
        except Exception as error:  # every failure goes back to the parent
            reply = _Raised(_picklable(error))
        conn.send(reply)


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (an engine's ffmpeg counts against its job)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


class EngineProcess:
    """One engine served by one child process at a time; the child is replaced when it dies or is killed."""

    def __init__(self, engine: Engine, memory_limit_bytes: int, stop_grace_seconds: float) -> None:
        self._engine = engine
        self._limit = memory_limit_bytes
        self._grace = stop_grace_seconds
        self._mp = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._stop: Event | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id; None before the first job or after a kill."""
        return None if self._process is None else self._process.pid

    @property
    def job_type(self) -> str:
        """The job type the engine serves."""
        return self._engine.job_type

    def start(self) -> None:
        """Start the child now (it imports the engine's modules while the worker does other things)."""
        self._ensure_child()

    def _ensure_child(self) -> tuple[BaseProcess, Connection, Event]:
        if self._process is not None and self._process.is_alive() and self._conn is not None and self._stop:
            return self._process, self._conn, self._stop
        self.close()
        parent_end, child_end = self._mp.Pipe()
        stop = self._mp.Event()
        process = self._mp.Process(
            target=serve, args=(child_end, stop, self._engine), name=f"engine-{self.job_type}", daemon=True
        )
        process.start()
        child_end.close()
        self._process, self._conn, self._stop = process, parent_end, stop
        log.info("engine process started", job_type=self.job_type, pid=process.pid)
        return process, parent_end, stop

    def resident_bytes(self) -> int:
        """Resident memory of the child and its descendants now; 0 without a child."""
        if self._process is None or self._process.pid is None:
            return 0
        try:
            return tree_rss(psutil.Process(self._process.pid))
        except psutil.Error:
            return 0

    def close(self) -> None:
        """Kill the child (if any) and forget it; the next job starts a new one."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
            with contextlib.suppress(ValueError):
                self._process.close()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = self._stop = None

    async def run(self, params: Any, inputs: list[Path], ctx: EngineContext, stop: StopFlag) -> EngineResult:
        """Run one job in the child, relaying its reports to `ctx`.

        Raises what the engine raised, MemoryCeilingExceeded past the ceiling, Cancelled when `stop` is
        requested, or EngineProcessDied.
        """
        process, conn, child_stop = await asyncio.to_thread(self._ensure_child)
        child_stop.clear()
        conn.send(_Job(params, inputs, ctx.output_dir))
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[EngineResult] = loop.create_future()
        reader = conn.fileno()
        loop.add_reader(reader, self._receive, conn, ctx, reply)
        watchdog = asyncio.ensure_future(self._watch_memory(process))
        stopped = asyncio.ensure_future(stop.wait())
        kill = False
        try:
            waits: set[asyncio.Future[Any]] = {reply, watchdog, stopped}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if watchdog.done() and not reply.done():
                kill = True
                raise MemoryCeilingExceeded(f"the job used more than {self._limit // MIB} MiB of memory")
            if stopped.done() and not reply.done():
                child_stop.set()
                await asyncio.wait({reply}, timeout=self._grace)
                if not reply.done():
                    kill = True
                    raise Cancelled("the engine did not reach a checkpoint in time; its process was killed")
            return reply.result()
        finally:
            # The pipe leaves the loop before it is closed with the child.
            loop.remove_reader(reader)
            watchdog.cancel()
            stopped.cancel()
            if not reply.done():
                reply.cancel()
            elif not reply.cancelled() and isinstance(reply.exception(), EngineProcessDied):
                kill = True
            if kill:
                self.close()

    def _receive(self, conn: Connection, ctx: EngineContext, reply: asyncio.Future[EngineResult]) -> None:
        # Called on the loop when the pipe is readable; each message is small or being written right now.
        try:
            while not reply.done() and conn.poll():
                message = conn.recv()
                if isinstance(message, _Progress):
                    ctx.progress(message.percent, message.message)
                elif isinstance(message, _Log):
                    ctx.log(message.line, message.level)
                elif isinstance(message, _Done):
                    reply.set_result(message.result)
                elif isinstance(message, _Raised):
                    reply.set_exception(message.error)
        except (EOFError, OSError):
            if not reply.done():
                code = None
                if self._process is not None:
                    # The pipe ends as the child dies; reaping it (a moment later) tells how it ended.
                    self._process.join(1.0)
                    code = self._process.exitcode
                reply.set_exception(EngineProcessDied(f"the {self.job_type} engine process ended (exit code {code})"))

    async def _watch_memory(self, process: BaseProcess) -> None:
        """Return once the child's tree holds more than the ceiling."""
        try:
            watched = psutil.Process(process.pid)
        except psutil.Error:
            await asyncio.Event().wait()  # gone already: the pipe reports it
            return
        while True:
            rss = await asyncio.to_thread(tree_rss, watched)
            if rss > self._limit:
                log.warning(
                    "engine passed its memory ceiling",
                    job_type=self.job_type,
                    rss_mib=rss // MIB,
                    limit_mib=self._limit // MIB,
                )
                return
            await asyncio.sleep(MEMORY_POLL_SECONDS)


class EnginePool:
    """Warm engine processes of one job type: a job takes an idle one (or a new one) and gives it back after."""

    def __init__(self, engine: Engine, memory_limit_bytes: int, stop_grace_seconds: float) -> None:
        self._engine = engine
        self._limit = memory_limit_bytes
        self._grace = stop_grace_seconds
        self._idle: list[EngineProcess] = []
        self._busy: set[EngineProcess] = set()

    def warm_up(self) -> None:
        """Start one child now, so that the first job does not wait for the engine's imports."""
        if not self._idle and not self._busy:
            process = EngineProcess(self._engine, self._limit, self._grace)
            process.start()
            self._idle.append(process)

    async def run(self, params: Any, inputs: list[Path], ctx: EngineContext, stop: StopFlag) -> EngineResult:
        """Run one job in an idle engine process (see EngineProcess.run)."""
        process = self._idle.pop() if self._idle else EngineProcess(self._engine, self._limit, self._grace)
        self._busy.add(process)
        try:
            return await process.run(params, inputs, ctx, stop)
        finally:
            self._busy.discard(process)
            # Memory a big job freed often stays with the process (allocator arenas, caches): an idle
            # process that kept much of its ceiling is replaced rather than held on to.
            if await asyncio.to_thread(process.resident_bytes) > self._limit * RECYCLE_FRACTION:
                process.close()
            self._idle.append(process)

    def close(self) -> None:
        """Kill every child (worker shutdown)."""
        for process in [*self._idle, *self._busy]:
            process.close()
        self._idle.clear()
