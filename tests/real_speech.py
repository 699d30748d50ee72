"""Real human speech for the engine tests: the recordings Debian's alsa-utils installs under
/usr/share/sounds/alsa (a man naming each loudspeaker: "Front left", ...), joined into one recording, and the
same with white noise at a given signal-to-noise ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.workers.engines.toolkit import ffmpeg

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
# Each recording and what it says (the file names), in the order they are joined.
RECORDINGS = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
SAMPLE_RATE = 16000
PAUSE_SECONDS = 0.5
NOISE_SEED = 7


def spoken_text() -> str:
    """What the joined recording says."""
    return " ".join(name.replace("_", " ") for name in RECORDINGS)


def _decoded(name: str) -> np.ndarray:
    """One recording as 16 kHz float samples (ffmpeg, as the engines decode)."""
    blocks = ffmpeg.stream_audio(ALSA_SOUNDS / f"{name}.wav", SAMPLE_RATE, 60.0)
    try:
        return np.concatenate(list(blocks))
    finally:
        blocks.close()


def alsa_speech(path: Path, snr_db: float | None = None) -> Path:
    """The recordings joined with a pause between them, as a WAV; with `snr_db`, white noise added at that
    ratio to the speech's mean power (the pauses left out of that mean)."""
    speech = [_decoded(name) for name in RECORDINGS]
    pause = np.zeros(round(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    joined = np.concatenate([piece for clip in speech for piece in (clip, pause)])
    if snr_db is not None:
        power = float(np.mean(np.concatenate(speech) ** 2))
        noise = np.random.default_rng(NOISE_SEED).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), joined.size)
        joined = joined + noise.astype(np.float32)
    pcm = np.clip(joined * 32767, -32768, 32767).astype(np.int16)
    return ffmpeg.write_wav(path, pcm, SAMPLE_RATE)
