"""The AI-stories engine: a real portrait speaks a real script; the MP4 is decoded and measured.

Lip sync is checked as the NOTES measured it: per video frame, how dark (open) the mouth region is against the
loudness of the output file's own audio in that frame's time window, as a Pearson correlation, with a shuffled
loudness track as the control.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data as samples

from services.common.job_params import AiStoriesParams
from services.workers.engines.base import BadInput, Cancelled
from services.workers.engines.stories import MAX_SIDE, TalkingHead, blink_track, load_portrait
from services.workers.engines.toolkit import ffmpeg
from tests.engine_context import RecordingContext

SCRIPT = "Good morning, I am an astronaut from Houston. Today we fly all the way to the moon and back again."
AUDIO_RATE = 16000


@dataclass(frozen=True)
class Story:
    """A rendered story and what its file holds."""

    path: Path
    meta: dict[str, Any]
    frames: NDArray[np.uint8]  # (n, height, width, 3) BGR, decoded from the MP4
    audio: NDArray[np.float32]  # mono at AUDIO_RATE, decoded from the MP4
    percents: list[int]


def astronaut() -> NDArray[np.uint8]:
    """skimage's portrait photograph, RGB."""
    # skimage ships no type hints; typing the function, not the call, keeps mypy strict here.
    photograph: Callable[[], NDArray[np.uint8]] = samples.astronaut
    return photograph()


def no_face(name: str) -> NDArray[np.uint8]:
    """An skimage photograph without a face: "coffee" (a cup) or "moon" (grey craters that pass the face
    cascade weakly)."""
    image = np.asarray(getattr(samples, name)(), dtype=np.uint8)
    return image if image.ndim == 3 else np.stack([image] * 3, axis=-1)


def write_image(directory: Path, name: str, rgb: NDArray[np.uint8]) -> Path:
    path = directory / name
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def tell(
    tmp_path: Path, image: Path, ctx: RecordingContext | None = None, **params: Any
) -> tuple[Path, dict[str, Any]]:
    """Run the engine on one image with its own output directory under `tmp_path`."""
    ctx = ctx or RecordingContext(Path(tempfile.mkdtemp(dir=tmp_path)))
    result = TalkingHead().run(AiStoriesParams(**params), [image], ctx)
    return result.outputs[0], result.meta


def decode_frames(path: Path, width: int, height: int) -> NDArray[np.uint8]:
    raw = subprocess.run(
        [ffmpeg.executable(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


def render(directory: Path, fps: int) -> Story:
    portrait = write_image(directory, "astronaut.png", astronaut())
    ctx = RecordingContext(Path(tempfile.mkdtemp(dir=directory)))
    path, meta = tell(directory, portrait, ctx, script=SCRIPT, fps=fps)
    frames = decode_frames(path, meta["width"], meta["height"])
    return Story(path, meta, frames, ffmpeg.decode_audio(path, AUDIO_RATE), ctx.percents)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    return render(tmp_path_factory.mktemp("story"), fps=0)


def mouth_darkness(story: Story) -> NDArray[np.float64]:
    """Per frame, how dark the middle of the lower face is: it darkens as the mouth opens."""
    x, y, w, h = story.meta["face"]
    top, bottom, left, right = y + int(0.7 * h), y + int(0.98 * h), x + int(0.3 * w), x + int(0.7 * w)
    darkness: NDArray[np.float64] = -story.frames[:, top:bottom, left:right].astype(np.float64).mean(axis=(1, 2, 3))
    return darkness


def loudness(story: Story) -> NDArray[np.float64]:
    """Per frame, the RMS of the output's own audio over that frame's time window."""
    hop = AUDIO_RATE / story.meta["fps"]
    windows = [story.audio[round(i * hop) : round((i + 1) * hop)] for i in range(len(story.frames))]
    return np.array([np.sqrt(np.mean(np.square(w))) if w.size else 0.0 for w in windows], dtype=np.float64)


def pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_the_mouth_opens_with_the_loudness_of_the_speech(
    story: Story, record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    darkness, envelope = mouth_darkness(story), loudness(story)

    r = pearson(darkness, envelope)
    control = pearson(darkness, np.random.default_rng(0).permutation(envelope))
    record_property("lip_sync_r", round(r, 3))
    record_property("lip_sync_control_r", round(control, 3))
    with capsys.disabled():
        print(f"\nlip sync: r = {r:.3f}, shuffled control r = {control:.3f}")

    assert r >= 0.5
    assert abs(control) < 0.25


def test_the_video_runs_as_long_as_its_audio(story: Story) -> None:
    fps = story.meta["fps"]
    video_seconds = len(story.frames) / fps
    audio_seconds = len(story.audio) / AUDIO_RATE

    assert abs(video_seconds - audio_seconds) <= 1 / fps
    assert len(story.frames) == story.meta["frames"]
    assert story.meta["duration_seconds"] == pytest.approx(video_seconds, abs=0.001)
    assert 3.0 < video_seconds < 10.0


def test_meta_describes_the_video_and_the_face_found(story: Story) -> None:
    x, y, w, h = story.meta["face"]

    assert story.path.name == "story.mp4"
    assert story.meta["format"] == "mp4"
    assert story.meta["fps"] == 25
    assert story.frames.shape[1:3] == (story.meta["height"], story.meta["width"]) == (512, 512)
    # The astronaut's face sits in the upper middle of the photograph.
    assert 0 < x < x + w < 512 and 0 < y < y + h < 256
    assert ffmpeg.media_info(story.path)[1:] == (True, True)


def test_progress_rises_to_completion(story: Story) -> None:
    assert story.percents == sorted(story.percents)
    assert story.percents[-1] == 100
    assert len(story.percents) >= 4


def test_the_eyes_blink_where_the_blink_track_says(story: Story) -> None:
    x, y, w, h = story.meta["face"]
    eyes = story.frames[:, y + int(0.25 * h) : y + int(0.5 * h), x + int(0.15 * w) : x + int(0.85 * w)]
    # How much the eyes changed over the last three frames.
    change = np.abs(eyes[3:].astype(np.float64) - eyes[:-3]).mean(axis=(1, 2, 3))
    blinks = blink_track(len(story.frames), story.meta["fps"])
    open_eyes = (blinks[3:] == 0) & (blinks[:-3] == 0)

    assert blinks.max() > 0.9
    # Sway moves the eyes a little all the time; a blink changes them far more.
    assert change[int(np.argmax(blinks)) - 3] > 3 * np.median(change[open_eyes])


def test_another_frame_rate_keeps_video_and_audio_together(tmp_path: Path) -> None:
    other = render(tmp_path, fps=12)

    assert other.meta["fps"] == 12
    assert abs(len(other.frames) / 12 - len(other.audio) / AUDIO_RATE) <= 1 / 12


@pytest.mark.parametrize("name", ["coffee", "moon"])
def test_an_image_without_a_face_fails_with_a_clear_reason(tmp_path: Path, name: str) -> None:
    picture = write_image(tmp_path, f"{name}.png", no_face(name))

    with pytest.raises(BadInput, match="no face found in the image"):
        tell(tmp_path, picture, script=SCRIPT)


def test_a_file_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "portrait.png"
    text.write_text("not a picture")

    with pytest.raises(BadInput, match="not a readable image"):
        tell(tmp_path, text, script=SCRIPT)


def test_an_empty_script_is_refused(tmp_path: Path) -> None:
    portrait = write_image(tmp_path, "astronaut.png", astronaut())

    with pytest.raises(BadInput, match="script is empty"):
        tell(tmp_path, portrait, script="   ")


@pytest.mark.parametrize("fps", [5, 61, -1])
def test_a_frame_rate_out_of_range_is_refused(tmp_path: Path, fps: int) -> None:
    portrait = write_image(tmp_path, "astronaut.png", astronaut())

    with pytest.raises(BadInput, match="fps must be 10-60"):
        tell(tmp_path, portrait, script=SCRIPT, fps=fps)


def test_exactly_one_portrait_is_required(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="exactly one portrait"):
        TalkingHead().run(AiStoriesParams(script=SCRIPT), [], RecordingContext(tmp_path))


def test_an_unknown_language_is_refused(tmp_path: Path) -> None:
    portrait = write_image(tmp_path, "astronaut.png", astronaut())

    with pytest.raises(BadInput, match="no voice for language 'xx'"):
        tell(tmp_path, portrait, script=SCRIPT, language="xx")


def test_cancel_stops_rendering_and_leaves_no_video(tmp_path: Path) -> None:
    portrait = write_image(tmp_path, "astronaut.png", astronaut())
    ctx = RecordingContext(tmp_path, stop_after=2)

    with pytest.raises(Cancelled):
        tell(tmp_path, portrait, ctx, script=SCRIPT)

    assert ctx.percents == [10, ctx.percents[1]]
    assert not (tmp_path / "story.mp4").exists()


def test_a_large_portrait_is_scaled_down_to_even_sides(tmp_path: Path) -> None:
    large = cast(NDArray[np.uint8], cv2.resize(astronaut(), (1443, 1201), interpolation=cv2.INTER_LINEAR))

    image = load_portrait(write_image(tmp_path, "large.png", large), max_pixels=40_000_000)

    assert image.shape == (598, MAX_SIDE, 3)


def test_blinks_are_brief_every_few_seconds_and_the_same_every_time() -> None:
    fps = 25
    track = blink_track(60 * fps, fps)

    starts = np.flatnonzero((track[1:] > 0) & (track[:-1] == 0)) + 1
    gaps = np.diff(starts) / fps
    assert np.array_equal(track, blink_track(60 * fps, fps))
    assert 10 <= len(starts) <= 20
    assert gaps.min() >= 2.9 and gaps.max() <= 5.1
    assert track.max() > 0.9 and np.count_nonzero(track) <= len(starts) * 4
