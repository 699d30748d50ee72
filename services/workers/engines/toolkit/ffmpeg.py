"""Audio and video plumbing every engine shares, on the static ffmpeg that the imageio-ffmpeg wheel ships."""

from __future__ import annotations

import re
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from services.workers.engines.base import BadInput, TransientError

# ffmpeg muxer/codec per audio output format.
AUDIO_FORMATS = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4"],
    "ogg": ["-c:a", "libopus", "-b:a", "64k"],
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


def decode_audio(path: Path, sample_rate: int = 16000) -> NDArray[np.float32]:
    """The first audio stream of any media file as mono float32 samples in [-1, 1]."""
    done = _run(
        ["-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        f"cannot read audio from {path.name}",
    )
    samples = np.frombuffer(done.stdout, dtype=np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        raise BadInput(f"{path.name} has no audio")
    return samples


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
    """Convert a WAV file to `fmt` ("wav", "mp3" or "ogg") at `target`."""
    if fmt not in AUDIO_FORMATS:
        raise BadInput(f"format {fmt!r} is not supported; choose one of {', '.join(AUDIO_FORMATS)}")
    if fmt == "wav" and wav == target:
        return target
    _run(["-y", "-i", str(wav), *AUDIO_FORMATS[fmt], str(target)], f"cannot encode {fmt}", transient=True)
    return target
