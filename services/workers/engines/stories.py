"""AI stories: a portrait and a script become a talking-head MP4 whose mouth follows the spoken script.

The script is spoken with espeak-ng; each video frame opens the jaw in proportion to the speech's loudness in
that frame's time window, adds occasional blinks and a slight head sway, and all three are one `cv2.remap` of
the portrait, so every frame is resampled from the sharp original once.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from services.common import job_types
from services.common.config import WorkerSettings
from services.common.job_params import AiStoriesParams, JobParams
from services.workers.engines.base import BadInput, EngineContext, EngineResult, TransientError, params_of
from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.face import FaceLayout, find_face
from services.workers.engines.toolkit.speech import EXAMPLE_LANGUAGES, split_text, voice_name

OUTPUT_NAME = "story.mp4"
DEFAULT_FPS = 25
MIN_FPS, MAX_FPS = 10, 60
MAX_SIDE = 720  # pixels on the long side of the video
MIN_SIDE = 64
AUDIO_RATE = 48_000  # AAC frames of 1024 samples stay well under one video frame at this rate
CHECK_EVERY = 5  # frames between cancel checks

# Animation, in fractions of the face box unless noted.
JAW_DROP = 0.1  # how far the jaw opens at full loudness
JAW_HALF_WIDTH = 0.45
CHIN_BELOW = 1.1  # where the jaw motion fades out, from the face box top
SHADE_COLOUR = np.array([30.0, 25.0, 45.0], dtype=np.float32)  # BGR of the mouth's inside and of lashes
MOUTH_SHADE = 0.8  # how dark the opened gap gets
LASH_SHADE = 0.5
LID_TOP = 0.18  # the upper lid, above the eye box centre, as a fraction of its height
LID_DROP = 0.4  # how far the lid comes down at a full blink, of the eye box height
LID_HALF_WIDTH = 0.45  # of the eye box width
LID_SKIN = 0.15  # the band of lid skin above the lid edge that stretches over the eye, of the eye box height
BLINK_SECONDS = 0.15
BLINK_GAP_SECONDS = (3.0, 5.0)
BLINK_SEED = 7  # blinks are deterministic: the same job renders the same video
SWAY_DEGREES = 0.8
SWAY_PIXELS = 0.015  # of the face width
SWAY_ZOOM = 1.02  # keeps the frame edges, which sway would expose, out of view


class TalkingHead:
    """AI_STORIES engine: portrait + script -> story.mp4 with speech, lip motion, blinks and head sway."""

    job_type = job_types.AI_STORIES.name

    def __init__(self, espeak: Espeak | None = None, max_pixels: int | None = None) -> None:
        self._espeak = espeak
        # AIORCH_WORKER_INPUT_MAX_PIXELS, the limit the runtime checks from the header and OpenCV enforces.
        self._max_pixels = max_pixels or WorkerSettings().worker_input_max_pixels

    def run(self, params: JobParams, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Render the portrait in `inputs[0]` speaking `params.script`."""
        story = params_of(params, AiStoriesParams)
        fps = story.fps or DEFAULT_FPS
        if not MIN_FPS <= fps <= MAX_FPS:
            raise BadInput(f"fps must be {MIN_FPS}-{MAX_FPS}, not {fps}")
        script = story.script.strip()
        if not script:
            raise BadInput("script is empty: nothing to speak")
        limit = job_types.AI_STORIES.max_text_chars
        if limit is not None and len(script) > limit:
            raise BadInput(f"script is longer than {limit} characters")
        if len(inputs) != 1:
            raise BadInput(f"AI stories take exactly one portrait image, not {len(inputs)} files")
        language = (story.language or "en").strip().lower()
        voice = voice_name(language, story.voice)
        espeak = self._espeak or Espeak.shared()
        if not espeak.has_voice(voice):
            raise BadInput(f"no voice for language {language!r} (voice {voice!r}); try one of {EXAMPLE_LANGUAGES}")

        image = load_portrait(inputs[0], self._max_pixels)
        layout = find_face(image)
        if layout is None:
            raise BadInput("no face found in the image: use a portrait with a clear, frontal face")
        height, width = image.shape[:2]
        ctx.log(f"face at {layout.face.as_list()} in a {width}x{height} portrait")

        speech = self._speak(espeak, script, voice, ctx)
        frames = math.ceil(len(speech) * fps / espeak.sample_rate)
        # Padding the speech to whole frames makes the audio and video streams end together.
        speech = np.pad(speech, (0, max(0, round(frames * espeak.sample_rate / fps) - len(speech))))
        opening = loudness_envelope(speech, espeak.sample_rate, fps, frames)
        blinks = blink_track(frames, fps)
        ctx.progress(10, f"spoke {len(speech) / espeak.sample_rate:.1f} s; rendering {frames} frames")

        path = ctx.output_dir / OUTPUT_NAME
        animator = FaceAnimator(image, layout, fps)
        with tempfile.TemporaryDirectory() as work:
            wav = ffmpeg.write_wav(Path(work) / "speech.wav", speech, espeak.sample_rate)
            with Mp4Pipe(path, width, height, fps, wav) as video:
                for index in range(frames):
                    if index % CHECK_EVERY == 0:
                        ctx.check_cancelled()
                    video.write(animator.render(index, float(opening[index]), float(blinks[index])))
                    if (index + 1) % fps == 0:
                        ctx.progress(10 + 88 * (index + 1) // frames, f"rendered {index + 1} of {frames} frames")
        ctx.progress(100, "story rendered")
        return EngineResult(
            outputs=[path],
            meta={
                "duration_seconds": round(frames / fps, 3),
                "fps": fps,
                "frames": frames,
                "width": width,
                "height": height,
                "face": layout.face.as_list(),
                "format": "mp4",
            },
        )

    @staticmethod
    def _speak(espeak: Espeak, script: str, voice: str, ctx: EngineContext) -> NDArray[np.float32]:
        parts: list[NDArray[np.float32]] = []
        for sentence in split_text(script):
            ctx.check_cancelled()
            samples = espeak.synthesize(sentence, voice)
            parts.append(np.asarray(samples, dtype=np.float32) / 32768.0)
        speech = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if not np.any(speech):
            raise BadInput("the script produced no speech")
        return speech


def load_portrait(path: Path, max_pixels: int) -> NDArray[np.uint8]:
    """The image as BGR, at most MAX_SIDE on the long side, with even sides (H.264 with 4:2:0 needs them)."""
    # imdecode rather than imread: it reads any path and returns None instead of printing for a non-image.
    try:
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        # OpenCV refuses images over its pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS) before decoding them.
        raise BadInput(f"{path.name} cannot be decoded: it is damaged or over the image size limit") from error
    if image is None:
        raise BadInput(f"{path.name} is not a readable image (use JPEG, PNG, WebP, BMP or TIFF)")
    height, width = image.shape[:2]
    if height * width > max_pixels:
        raise BadInput(f"{path.name} has {height * width} pixels; the limit is {max_pixels}")
    if min(height, width) < MIN_SIDE:
        raise BadInput(f"{path.name} is {width}x{height}; a portrait needs at least {MIN_SIDE} pixels on each side")
    scale = min(1.0, MAX_SIDE / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    return cast(NDArray[np.uint8], np.ascontiguousarray(image[: height - height % 2, : width - width % 2]))


def loudness_envelope(samples: NDArray[np.float32], rate: int, fps: int, frames: int) -> NDArray[np.float32]:
    """Per video frame, the speech's RMS over that frame's time window, smoothed and scaled to 0-1."""
    edges = np.round(np.arange(frames + 1) * rate / fps).astype(np.int64)
    rms = np.array(
        [np.sqrt(np.mean(np.square(samples[a:b]))) if b > a else 0.0 for a, b in itertools.pairwise(edges)],
        dtype=np.float32,
    )
    voiced = rms[rms > 0]
    if voiced.size == 0:
        return np.zeros(frames, dtype=np.float32)
    # The 95th percentile rather than the peak: one loud plosive must not leave the rest of the story mumbled.
    level = np.clip(rms / np.percentile(voiced, 95), 0.0, 1.0)
    level[level < 0.05] = 0.0
    smoothed = np.convolve(np.pad(level, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return smoothed.astype(np.float32)


def blink_track(frames: int, fps: int) -> NDArray[np.float32]:
    """Eyelid closure per frame (0 open, 1 shut): a short blink every few seconds, the same on every run."""
    track = np.zeros(frames, dtype=np.float32)
    rng = np.random.default_rng(BLINK_SEED)
    length = max(3, round(BLINK_SECONDS * fps))
    shape = np.sin(np.pi * (np.arange(length) + 0.5) / length).astype(np.float32)
    start = rng.uniform(1.0, 2.5)
    while (first := round(start * fps)) < frames:
        span = track[first : first + length]
        span[:] = shape[: span.size]
        start += rng.uniform(*BLINK_GAP_SECONDS)
    return track


def _bump(distance: NDArray[np.float32]) -> NDArray[np.float32]:
    """A raised cosine: 1 at distance 0, falling smoothly to 0 at distance 1 and beyond."""
    return cast(NDArray[np.float32], np.square(np.cos(np.minimum(np.abs(distance), 1.0) * (np.pi / 2))))


@dataclass(frozen=True)
class _Region:
    """The rows and columns of the frame where the face moves; outside it only the sway applies."""

    top: int
    bottom: int
    left: int
    right: int


class FaceAnimator:
    """Renders frames of one portrait with a given jaw opening and eyelid closure."""

    def __init__(self, image: NDArray[np.uint8], layout: FaceLayout, fps: int) -> None:
        self._image = image
        self._layout = layout
        self._fps = fps
        height, width = image.shape[:2]
        face = layout.face
        self._xs, self._ys = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32), indexing="xy"
        )
        margin = round(0.35 * face.w)
        self._region = _Region(
            top=max(0, face.y - margin),
            bottom=min(height, round(face.y + CHIN_BELOW * face.h) + margin),
            left=max(0, face.x - margin),
            right=min(width, face.x + face.w + margin),
        )

    def render(self, index: int, opening: float, blink: float) -> NDArray[np.uint8]:
        """Frame `index`: jaw open by `opening` (0-1), eyelids closed by `blink` (0-1), head swayed by time."""
        inverse = cv2.invertAffineTransform(self._sway(index / self._fps)).astype(np.float32)
        # Where each output pixel lies in the unswayed portrait.
        map_x = inverse[0, 0] * self._xs + inverse[0, 1] * self._ys + inverse[0, 2]
        map_y = inverse[1, 0] * self._xs + inverse[1, 1] * self._ys + inverse[1, 2]
        region = self._region
        rows, cols = slice(region.top, region.bottom), slice(region.left, region.right)
        x, y = map_x[rows, cols], map_y[rows, cols]
        source_y, shade = self._jaw(x, y, opening)
        if blink > 0:
            source_y, lashes = self._eyelids(x, y, source_y, blink)
            shade += lashes
        map_y[rows, cols] = source_y

        frame = cv2.remap(self._image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        patch = frame[rows, cols].astype(np.float32)
        patch += shade[..., None] * (SHADE_COLOUR - patch)
        frame[rows, cols] = patch.astype(np.uint8)
        return cast(NDArray[np.uint8], frame)

    def _jaw(
        self, x: NDArray[np.float32], y: NDArray[np.float32], opening: float
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Source rows and shade for a jaw opened by `opening`."""
        face = self._layout.face
        centre_x = face.x + face.w / 2
        mouth_line = self._layout.mouth_line
        chin = face.y + CHIN_BELOW * face.h
        below = y >= mouth_line
        # Content below the mouth line moves down: most at the lips, not at all past the chin.
        drop = (JAW_DROP * face.h * opening) * _bump((x - centre_x) / (JAW_HALF_WIDTH * face.w))
        drop *= _bump((y - mouth_line) / (chin - mouth_line)) * below
        source_y = y - drop
        # The rows that the lower lip left sample the lip line and are shaded: the open mouth.
        gap = np.where(below, np.clip(mouth_line - source_y, 0.0, None), 0.0)
        shade = MOUTH_SHADE * np.clip(gap / 1.5, 0.0, 1.0) * _bump((x - centre_x) / self._layout.mouth_half_width)
        source_y = np.where(below, np.maximum(source_y, mouth_line), source_y)
        return source_y.astype(np.float32), shade.astype(np.float32)

    def _eyelids(
        self, x: NDArray[np.float32], y: NDArray[np.float32], source_y: NDArray[np.float32], blink: float
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Source rows and shade with the lids closed by `blink`: each lid edge comes down in an arc, the skin
        just above it stretching to follow, and a line of lashes shades the edge."""
        shade = np.zeros_like(x)
        for eye in self._layout.eyes:
            eye_x, eye_y = eye.centre
            lid = eye_y - LID_TOP * eye.h
            skin = LID_SKIN * eye.h
            arc = np.sqrt(np.clip(1.0 - np.square((x - eye_x) / (LID_HALF_WIDTH * eye.w)), 0.0, None))
            edge = lid + (LID_DROP * eye.h * blink) * arc
            lidded = (y >= lid - skin) & (y < edge)
            source_y = np.where(lidded, lid - skin + (y - lid + skin) * skin / (edge - lid + skin), source_y)
            shade += (LASH_SHADE * blink) * arc * np.clip(1.0 - np.abs(y - edge) / 1.5, 0.0, 1.0)
        return source_y.astype(np.float32), shade

    def _sway(self, seconds: float) -> NDArray[np.float64]:
        """The head's affine motion at a time: slow, incommensurate sines so it never visibly repeats."""
        face = self._layout.face
        angle = SWAY_DEGREES * (
            0.7 * math.sin(2 * math.pi * seconds / 4.3) + 0.3 * math.sin(2 * math.pi * seconds / 2.9 + 1)
        )
        pivot = (face.x + face.w / 2, face.y + face.h * 1.2)  # the neck, so the head tilts rather than spins
        matrix = cv2.getRotationMatrix2D(pivot, angle, SWAY_ZOOM)
        matrix[0, 2] += SWAY_PIXELS * face.w * math.sin(2 * math.pi * seconds / 5.1)
        matrix[1, 2] += SWAY_PIXELS * face.w * 0.6 * math.sin(2 * math.pi * seconds / 3.7 + 0.5)
        return cast(NDArray[np.float64], matrix)


class Mp4Pipe:
    """ffmpeg encoding raw BGR frames from a pipe, muxed with a WAV file, into H.264 + AAC in MP4."""

    def __init__(self, path: Path, width: int, height: int, fps: int, audio: Path) -> None:
        self._path = path
        self._size = (height, width, 3)
        # Closed in __exit__. stderr goes to a file: a pipe nobody reads would fill up and stall ffmpeg.
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        # fmt: off
        command = [
            ffmpeg.executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-",
            "-i", str(audio),
            "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-ar", str(AUDIO_RATE),
            "-shortest", "-movflags", "+faststart", str(path),
        ]
        # fmt: on
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors)

    def __enter__(self) -> Mp4Pipe:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._finish()
            else:
                self._process.kill()
                self._process.wait()
                self._path.unlink(missing_ok=True)
        finally:
            self._errors.close()

    def write(self, frame: NDArray[np.uint8]) -> None:
        """Hand one frame to the encoder."""
        if frame.shape != self._size:
            raise ValueError(f"frame is {frame.shape}, the video {self._size}")
        stdin = cast(IO[bytes], self._process.stdin)
        try:
            stdin.write(frame.tobytes())
        except BrokenPipeError:
            self._process.wait()
            raise TransientError(f"the video encoder stopped: {self._error_text()}") from None

    def _finish(self) -> None:
        stdin = cast(IO[bytes], self._process.stdin)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
        if self._process.wait() != 0:
            self._path.unlink(missing_ok=True)
            raise TransientError(f"the video encoder failed: {self._error_text()}")

    def _error_text(self) -> str:
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._process.returncode}"
