"""Duration bombs (issue 13, finding 1): whatever a user's media holds, a job's memory stays bounded.

A 1.4 MB FLAC of 3.8 hours of silence is under the 4-hour STT limit; it once took a worker from 242 MiB to
12.7 GB, because the whole signal was decoded and Whisper computed features over all of it. Now audio is
decoded and heard in windows, silence is skipped, and each engine runs in a child process with a memory
ceiling. These tests run a real worker on such files and measure the resident memory of its whole process
tree (worker, engine process, ffmpeg) from outside, every 0.1 s.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiorch.jobs.v1 import types_pb2

from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.whisper import SAMPLE_RATE, WINDOW_SECONDS, speech_windows
from tests.figures import Figures
from tests.spoken_media import speech_wav
from tests.worker_process import MIB, Worker, job_with_input, run_job, start_worker, tree_rss

pytestmark = pytest.mark.stack

# What a whole worker tree may hold while it transcribes hours of audio: the worker (~100 MiB), one engine
# process with Whisper tiny.en loaded (~250 MiB) and ffmpeg. Decoding 4 h at 16 kHz alone took 1.4 GB before.
BOUNDED_TREE_BYTES = 1024 * MIB
SILENT_SECONDS = 3.8 * 3600  # the probe's file
SPEECH_SECONDS = 4 * 3600 - 60  # just under STT's 4 h input limit
# The 4-hour speech job is cancelled once its progress reaches this: STT reports 5 + 90 x the fraction heard,
# so 6 % means at least 1/90 of the file (over two and a half minutes of speech, three windows) was heard.
SPEECH_CANCEL_PERCENT = 6
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
ALSA_PHRASES = ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right")
DUBBING_CEILING_MIB = 600


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg.executable(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def silent_flac(path: Path, seconds: float, rate: int = 8000) -> Path:
    """Digital silence as FLAC: it compresses to almost nothing (3.8 h at 8 kHz is 1.4 MB)."""
    _ffmpeg("-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=mono", "-t", f"{seconds:g}", "-c:a", "flac", str(path))
    return path


def speech_clip(path: Path) -> tuple[Path, str]:
    """A few seconds of speech as FLAC and where it came from: Debian's alsa-utils recordings of a human
    voice when installed, else espeak-ng."""
    wavs = [ALSA_SOUNDS / f"{name}.wav" for name in ALSA_PHRASES]
    if all(wav.is_file() for wav in wavs):
        inputs = [arg for wav in wavs for arg in ("-i", str(wav))]
        streams = "".join(f"[{index}:a]" for index in range(len(wavs)))
        graph = f"{streams}concat=n={len(wavs)}:v=0:a=1,aresample={SAMPLE_RATE},apad=pad_dur=0.8"
        _ffmpeg(*inputs, "-filter_complex", graph, "-ac", "1", "-c:a", "flac", str(path))
        return path, "alsa-utils recordings"
    wav = speech_wav(path.with_suffix(".wav"), ("Front centre.", "Front left.", "Front right.", "Rear centre."))
    _ffmpeg("-i", str(wav), "-ar", str(SAMPLE_RATE), "-c:a", "flac", str(path))
    return path, "espeak-ng speech"


def looped_opus(clip: Path, path: Path, seconds: float) -> Path:
    """`clip` repeated for `seconds` as Ogg Opus, packets copied (no re-encoding: seconds, not minutes)."""
    base = path.with_name("base.opus")
    _ffmpeg("-i", str(clip), "-c:a", "libopus", "-b:a", "24k", str(base))
    _ffmpeg("-stream_loop", "-1", "-i", str(base), "-t", f"{seconds:g}", "-c", "copy", str(path))
    return path


@pytest.fixture(scope="module")
def stt_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A worker for STT jobs with default limits (4 h of input, 3 GiB per engine process)."""
    worker = start_worker(tmp_path_factory.mktemp("stt-worker"), "stt")
    yield worker
    worker.stop()


def test_audio_is_heard_in_windows_cut_where_it_is_quietest() -> None:
    # Given 150 s of tone with one silent tenth of a second, 2 s before the first window would end
    rate = SAMPLE_RATE
    tone = (0.5 * np.sin(np.arange(150 * rate) * 2 * np.pi * 220 / rate)).astype(np.float32)
    quiet_at = round((WINDOW_SECONDS - 2.0) * rate)
    tone[quiet_at : quiet_at + rate // 10] = 0.0
    blocks = [tone[i : i + 7 * rate] for i in range(0, tone.size, 7 * rate)]

    # When it is cut into windows
    windows = list(speech_windows(blocks))

    # Then no window is longer than WINDOW_SECONDS, they cover every sample in order, and the first cut
    # falls inside the silence
    assert all(w.size <= WINDOW_SECONDS * rate for _, w in windows)
    assert np.array_equal(np.concatenate([w for _, w in windows]), tone)
    starts = [round(start * rate) for start, _ in windows]
    assert starts == list(np.cumsum([0] + [w.size for _, w in windows[:-1]]))
    assert quiet_at <= starts[1] <= quiet_at + rate // 10


def test_a_silent_flac_of_3_8_hours_is_transcribed_in_bounded_memory(
    stt_worker: Worker, tmp_path: Path, figures: Figures
) -> None:
    # Given the probe's file: 3.8 h of digital silence, 1.4 MB of FLAC, under STT's 4 h input limit
    bomb = silent_flac(tmp_path / "silence.flac", SILENT_SECONDS)
    idle = tree_rss(stt_worker.pid)

    # When it is transcribed
    params = types_pb2.JobParams(stt=types_pb2.SttParams(language="en"))
    run = run_job(stt_worker, job_with_input(stt_worker, types_pb2.STT, params, bomb), timeout=600)

    # Then the job completes with an empty transcript of the whole length, and the worker's tree never held
    # more than BOUNDED_TREE_BYTES (before the fix it grew by gigabytes within a minute)
    after = tree_rss(stt_worker.pid)
    figures.record(
        input=f"{bomb.stat().st_size / MIB:.1f} MiB FLAC of {SILENT_SECONDS / 3600:.1f} h silence",
        worker_tree_idle_mib=idle // MIB,
        worker_tree_peak_mib=run.peak_rss // MIB,
        worker_tree_after_mib=after // MIB,
        job_seconds=round(run.seconds, 1),
        outcome=run.kinds[-1],
    )
    assert run.kinds[-1] == "completed", run.events[-1]
    meta = run.events[-1].completed.meta
    assert meta["duration_seconds"] == pytest.approx(SILENT_SECONDS, abs=1.0)
    assert meta["text"] == ""
    assert run.peak_rss < BOUNDED_TREE_BYTES


def test_four_hours_of_speech_are_heard_in_bounded_memory_and_cancel_gives_it_back(
    stt_worker: Worker, tmp_path: Path, figures: Figures
) -> None:
    # Given just under 4 h of real speech (a dozen seconds of phrases, looped) as Ogg Opus
    clip, origin = speech_clip(tmp_path / "phrases.flac")
    speech = looped_opus(clip, tmp_path / "speech.opus", SPEECH_SECONDS)

    # When it is transcribed until SPEECH_CANCEL_PERCENT and then cancelled (by tiny.en: the bound is on memory,
    # which the windows set whatever the model, and base took six minutes to reach 6 % on a loaded machine)
    params = types_pb2.JobParams(stt=types_pb2.SttParams(language="en", model="tiny.en"))
    job = job_with_input(stt_worker, types_pb2.STT, params, speech)
    run = run_job(stt_worker, job, timeout=900, cancel_at_percent=SPEECH_CANCEL_PERCENT)

    # Then the job ends cancelled, and the worker's tree stayed under BOUNDED_TREE_BYTES the whole time
    after = tree_rss(stt_worker.pid)
    figures.record(
        input=f"{speech.stat().st_size / MIB:.1f} MiB Opus of {SPEECH_SECONDS / 3600:.2f} h speech ({origin})",
        cancelled_at_percent=run.last_percent,
        audio_heard_at_least_s=round((SPEECH_CANCEL_PERCENT - 5) / 90 * SPEECH_SECONDS),
        cancelled_after_s=None if run.cancelled_after is None else round(run.cancelled_after, 1),
        worker_tree_peak_mib=run.peak_rss // MIB,
        worker_tree_after_cancel_mib=after // MIB,
        outcome=run.kinds[-1],
    )
    assert run.cancelled_after is not None, f"progress stayed at {run.last_percent} %"
    assert run.kinds[-1] == "cancelled", run.events[-1]
    assert run.peak_rss < BOUNDED_TREE_BYTES


def test_a_job_past_its_memory_ceiling_fails_with_the_reason_and_the_worker_takes_the_next(
    tmp_path: Path, figures: Figures
) -> None:
    # Given a dubbing worker whose engine process may hold DUBBING_CEILING_MIB, and 40 minutes of audio
    # (under DUBBING's 1 h input limit) whose mix track alone needs 40 min x 44.1 kHz x 4 bytes = 423 MB
    worker = start_worker(
        tmp_path / "worker", "dubbing", AIORCH_WORKER_ENGINE_MEMORY_MIB_BY_TYPE=f"DUBBING={DUBBING_CEILING_MIB}"
    )
    try:
        long_audio = silent_flac(tmp_path / "forty-minutes.flac", 40 * 60, rate=44100)
        clip, _ = speech_clip(tmp_path / "phrases.flac")
        params = types_pb2.JobParams(dubbing=types_pb2.DubbingParams(source_language="en", target_language="es"))

        # When it dubs the long file, then a short clip of speech
        over = run_job(worker, job_with_input(worker, types_pb2.DUBBING, params, long_audio), timeout=300)
        after = run_job(worker, job_with_input(worker, types_pb2.DUBBING, params, clip), timeout=300)
        worker_alive = worker.supervisor.process("worker").poll() is None
    finally:
        worker.stop()

    # Then the first fails at once (no retry) with the ceiling as its reason, and the same worker dubs the
    # second in a fresh engine process
    figures.record(
        ceiling_mib=DUBBING_CEILING_MIB,
        over_ceiling_outcome=f"{over.kinds[-1]}: {over.events[-1].failed.reason}",
        worker_tree_peak_mib=over.peak_rss // MIB,
        next_job=after.kinds[-1],
    )
    assert over.kinds[-1] == "failed", over.events[-1]
    assert over.events[-1].failed.reason == f"the job used more than {DUBBING_CEILING_MIB} MiB of memory"
    assert not over.events[-1].failed.retryable
    assert after.kinds[-1] == "completed", after.events[-1]
    assert worker_alive
