"""What every section gets: the running stack and the run's size."""

from __future__ import annotations

from dataclasses import dataclass

from aiorch.jobs.v1 import jobs_pb2, types_pb2

from bench.harness import BenchStack


@dataclass(frozen=True)
class RunSize:
    """How long and how large each measurement is (`--quick` shrinks all of them)."""

    load_seconds: float
    dispatch_jobs: int
    fanout_grpc: int
    fanout_sse: int
    fanout_events: int
    stored_jobs: int
    list_samples: int
    engine_runs: int

    @classmethod
    def full(cls) -> RunSize:
        """The sizes the issue asks for."""
        return cls(
            load_seconds=5,
            dispatch_jobs=2000,
            fanout_grpc=1000,
            fanout_sse=200,
            fanout_events=20,
            stored_jobs=1_000_000,
            list_samples=200,
            engine_runs=2,
        )

    @classmethod
    def quick(cls) -> RunSize:
        """A smoke run of every section in about two minutes."""
        return cls(
            load_seconds=2,
            dispatch_jobs=200,
            fanout_grpc=100,
            fanout_sse=20,
            fanout_events=5,
            stored_jobs=100_000,
            list_samples=50,
            engine_runs=1,
        )


@dataclass(frozen=True)
class BenchContext:
    """The stack and the sizes."""

    stack: BenchStack
    size: RunSize

    def tts_request(self, text: str = "Benchmark.") -> jobs_pb2.CreateJobRequest:
        """A small TTS job in the bench project."""
        return jobs_pb2.CreateJobRequest(
            project_id=self.stack.project_id,
            type=types_pb2.TTS,
            params=types_pb2.JobParams(tts=types_pb2.TtsParams(text=text)),
        )

    def tts_json(self, text: str = "Benchmark.") -> str:
        """The same job as a REST body."""
        return f'{{"project_id": "{self.stack.project_id}", "type": "TTS", "params": {{"tts": {{"text": "{text}"}}}}}}'
