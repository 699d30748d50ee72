"""Section `engines`: real-time factor of each CPU engine on one fixed input (seconds of work per second of media).

The engines run in this process, one at a time, as a worker runs them; each runs once to load its
models and once measured (`--quick`: the first run is the measured one). Speech inputs are the TTS
engine's own output of the fixed text; the portrait is scikit-image's astronaut photograph.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data as samples

from bench.context import BenchContext
from bench.report import Figure
from services.common.job_params import (
    AiStoriesParams,
    DubbingParams,
    JobParams,
    SttParams,
    TtsParams,
    VoiceCloningParams,
)
from services.workers.engines.base import EngineResult
from services.workers.engines.registry import create_engine
from services.workers.engines.toolkit import ffmpeg

TEXT = (
    "Good morning. This is a short benchmark of the speech engines. "
    "It reads three sentences aloud, and the engines turn them into other media."
)
# The same in Spanish, for Kokoro (the default neural voice of Spanish, French and German).
SPANISH_TEXT = (
    "Buenos días. Esta es una breve prueba de los motores de voz. "
    "Lee tres frases en voz alta, y los motores las convierten en otros medios."
)


class _Quiet:
    """An EngineContext that keeps nothing: progress and logs are not measured here."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def progress(self, percent: int, message: str = "") -> None:
        return None

    def log(self, line: str, level: str = "info") -> None:
        return None

    def check_cancelled(self) -> None:
        return None


def _timed_run(
    job_type: str, params: JobParams, inputs: list[Path], work: Path, runs: int
) -> tuple[float, EngineResult]:
    engine = create_engine(job_type)
    elapsed, result = 0.0, None
    for _ in range(runs):
        output = Path(tempfile.mkdtemp(dir=work))
        started = time.perf_counter()
        result = engine.run(params, inputs, _Quiet(output))
        elapsed = time.perf_counter() - started
    assert result is not None
    return elapsed, result


def _duration(path: Path) -> float:
    seconds, _, _ = ffmpeg.media_info(path)
    return seconds


def measure(runs: int) -> list[Figure]:
    """Each engine's real-time factor: against its output's length (TTS, cloning, stories) or input's."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="aiorch-bench-engines-") as temporary:
        work = Path(temporary)
        elapsed, result = _timed_run("TTS", TtsParams(text=TEXT, voice="espeak"), [], work, runs)
        speech = result.outputs[0]
        seconds = _duration(speech)
        figures.append(Figure("engines", f"TTS espeak-ng RTF ({seconds:.1f} s out)", elapsed / seconds, "x"))
        elapsed, neural = _timed_run("TTS", TtsParams(text=TEXT), [], work, runs)
        seconds = _duration(neural.outputs[0])
        figures.append(Figure("engines", f"TTS Piper joe RTF ({seconds:.1f} s out)", elapsed / seconds, "x"))
        elapsed, kokoro = _timed_run("TTS", TtsParams(text=SPANISH_TEXT, language="es"), [], work, runs)
        seconds = _duration(kokoro.outputs[0])
        figures.append(Figure("engines", f"TTS Kokoro es RTF ({seconds:.1f} s out)", elapsed / seconds, "x"))
        portrait = work / "portrait.png"
        # scikit-image is untyped: name what its sample returns.
        astronaut: Callable[[], NDArray[np.uint8]] = samples.astronaut
        cv2.imwrite(str(portrait), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
        cases: list[tuple[str, str, JobParams, list[Path], bool]] = [
            ("STT", "Whisper base", SttParams(), [speech], False),
            ("STT", "Whisper tiny.en", SttParams(model="tiny.en", language="en"), [speech], False),
            ("VOICE_CLONING", "WORLD", VoiceCloningParams(text=TEXT), [speech], True),
            ("DUBBING", "en->es", DubbingParams(target_language="es"), [speech], False),
            ("AI_STORIES", "talking head", AiStoriesParams(script=TEXT), [portrait], True),
        ]
        for job_type, engine_name, params, inputs, by_output in cases:
            elapsed, result = _timed_run(job_type, params, inputs, work, runs)
            media_seconds = _duration(result.outputs[0] if by_output else inputs[0])
            side = "out" if by_output else "in"
            figures.append(
                Figure(
                    "engines",
                    f"{job_type} {engine_name} RTF ({media_seconds:.1f} s {side})",
                    elapsed / media_seconds,
                    "x",
                )
            )
    return figures


async def run(ctx: BenchContext) -> list[Figure]:
    """The engines need no stack; they run after the sections that do."""
    return measure(ctx.size.engine_runs)
