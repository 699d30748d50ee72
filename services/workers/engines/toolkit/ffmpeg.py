"""Audio and video plumbing every engine shares, on the static ffmpeg that the imageio-ffmpeg wheel ships."""

from __future__ import annotations

import re
import subprocess
import tempfile
import wave
from collections.abc import Generator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from services.common.engine_catalog import PCM_SAMPLE_RATE
from services.workers.engines.base import BadInput, TransientError

# ffmpeg muxer/codec per audio output format.
AUDIO_FORMATS = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4"],
    "ogg": ["-c:a", "libopus", "-b:a", "64k"],
    "opus": ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-b:a", "96k", "-f", "adts"],
    "flac": ["-c:a", "flac"],
    "pcm": ["-c:a", "pcm_s16le", "-f", "s16le", "-ac", "1", "-ar", str(PCM_SAMPLE_RATE)],
}
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


def executable() -> str:
    """Path of the bundled ffmpeg binary."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: list[str], what: str, transient: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg; a failure reading an input is bad input, a failure writing one (disk full...) is retried."""
    done = subprocess.run([executable(), "-hide_banner", "-nostdin", *args], capture_output=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
        raise (TransientError if transient else BadInput)(f"{what}: {last}")
    return done


def _decode_args(path: Path, sample_rate: int, max_seconds: float | None) -> list[str]:
    # `-t` after `-i` caps the decoded length, whatever the container's header claims.
    limit = ["-t", f"{max_seconds:g}"] if max_seconds is not None else []
    return ["-i", str(path), *limit, "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-acodec", "pcm_s16le"]


def decode_audio(path: Path, sample_rate: int = 16000, max_seconds: float | None = None) -> NDArray[np.float32]:
    """The first audio stream of any media file (its first `max_seconds`) as mono float32 samples in [-1, 1].

    The whole signal is held in memory (4 bytes a sample): callers bound it with `max_seconds` or read long
    inputs with `stream_audio`.
    """
    done = _run([*_decode_args(path, sample_rate, max_seconds), "-"], f"cannot read audio from {path.name}")
    samples = np.frombuffer(done.stdout, dtype=np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        raise BadInput(f"{path.name} has no audio")
    return samples


def stream_audio(
    path: Path, sample_rate: int, block_seconds: float, max_seconds: float | None = None
) -> Generator[NDArray[np.float32], None, None]:
    """The audio of a media file as mono float32 blocks of `block_seconds` (the last one shorter).

    ffmpeg decodes into a pipe that is read one block at a time, so memory stays at one block whatever the
    length of the input. Closing the iterator early stops ffmpeg.
    """
    block_bytes = 2 * max(1, round(block_seconds * sample_rate))
    args = [
        executable(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *_decode_args(path, sample_rate, max_seconds),
    ]
    # stderr goes to a file: a damaged input can print an error per frame, and a full stderr pipe would stall
    # ffmpeg while this side waits on stdout.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([*args, "-"], stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        emitted = 0
        try:
            while chunk := process.stdout.read(block_bytes):
                # s16le output has whole samples; the slice only guards against a torn last one.
                block = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype=np.int16).astype(np.float32) / 32768.0
                emitted += block.size
                yield block
            if process.wait() != 0:
                errors.seek(0)
                last = (errors.read().decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
                raise BadInput(f"cannot read audio from {path.name}: {last}")
            if emitted == 0:
                raise BadInput(f"{path.name} has no audio")
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()


def media_info(path: Path) -> tuple[float, bool, bool]:
    """(duration in seconds, has audio, has video) of a media file, read from ffmpeg's stream listing."""
    done = subprocess.run([executable(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, check=False)
    text = done.stderr.decode(errors="replace")
    match = _DURATION.search(text)
    if match is None:
        raise BadInput(f"{path.name} is not a readable audio or video file")
    hours, minutes, seconds = match.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    streams = [line for line in text.splitlines() if "Stream #" in line]
    has_audio = any("Audio:" in line for line in streams)
    # Cover art in audio files shows up as a video stream marked attached_pic.
    has_video = any("Video:" in line and "attached pic" not in line for line in streams)
    return duration, has_audio, has_video


def write_wav(path: Path, samples: NDArray[np.floating] | NDArray[np.int16], sample_rate: int) -> Path:
    """Write mono 16-bit PCM; float input is clipped to [-1, 1]."""
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return path


def read_wav(path: Path) -> tuple[NDArray[np.float32], int]:
    """Mono float32 samples and the rate of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as source:
        rate = source.getframerate()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
        if source.getnchannels() > 1:
            data = data.reshape(-1, source.getnchannels()).mean(axis=1).astype(np.int16)
    return data.astype(np.float32) / 32768.0, rate


def encode_audio(wav: Path, target: Path, fmt: str) -> Path:
    """Convert a WAV file to `fmt` (one of AUDIO_FORMATS) at `target`."""
    if fmt not in AUDIO_FORMATS:
        raise BadInput(f"format {fmt!r} is not supported; choose one of {', '.join(AUDIO_FORMATS)}")
    if fmt == "wav" and wav == target:
        return target
    _run(["-y", "-i", str(wav), *AUDIO_FORMATS[fmt], str(target)], f"cannot encode {fmt}", transient=True)
    return target
