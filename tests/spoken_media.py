"""Media of known content for the engine tests: espeak-ng speech of given sentences, and a video carrying it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.espeak import Espeak

# The silence after each sentence, long enough for the STT engine to split segments there.
PAUSE_SECONDS = 0.8


def speech_wav(path: Path, sentences: tuple[str, ...], voice: str = "en") -> Path:
    """The sentences spoken by espeak-ng with a pause after each, as a 16-bit WAV."""
    espeak = Espeak.shared()
    pause = np.zeros(round(PAUSE_SECONDS * espeak.sample_rate), dtype=np.int16)
    parts: list[np.ndarray] = []
    for sentence in sentences:
        parts += [np.frombuffer(espeak.synthesize(sentence, voice), dtype=np.int16), pause]
    return ffmpeg.write_wav(path, np.concatenate(parts), espeak.sample_rate)


def video_with_sound(path: Path, wav: Path) -> Path:
    """An H.264 + AAC MP4 of a plain still picture, as long as `wav`."""
    duration, _, _ = ffmpeg.media_info(wav)
    subprocess.run(
        [ffmpeg.executable(), "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "color=c=navy:s=160x120:r=10", "-i", str(wav), "-t", f"{duration:.3f}",
         "-c:v", "libx264", "-tune", "stillimage", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path
