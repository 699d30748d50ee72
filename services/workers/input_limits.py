"""Limits on what an input file holds, read from its header before any engine decodes it.

A small file can still be a bomb: a PNG that claims 50,000 x 50,000 pixels decodes to gigabytes, and a
compressed audio file of hours of silence keeps an engine busy for hours. Both are refused here, as bad
input (no retry), from the header alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from services.common import job_types
from services.common.job_types import InputKind
from services.workers.engines.base import BadInput
from services.workers.engines.toolkit.ffmpeg import media_info


@dataclass(frozen=True)
class InputLimits:
    """Largest image (pixels) and longest audio or video (seconds, per job type) accepted.

    A type's duration limit is its setting in `max_seconds_by_type` if any, else its default in the job-type
    registry (services/common/job_types.py: what its engine's work and memory allow), capped by
    `max_seconds`.
    """

    max_pixels: int = 40_000_000
    max_seconds: float = 4 * 3600.0
    max_seconds_by_type: dict[str, float] = field(default_factory=dict)

    def seconds_for(self, job_type: str) -> float:
        """The longest input `job_type` takes."""
        configured = self.max_seconds_by_type.get(job_type.upper())
        if configured is not None:
            return configured
        default = job_types.get(job_type).max_input_seconds
        return self.max_seconds if default is None else min(default, self.max_seconds)


def image_pixels(path: Path) -> int:
    """Width x height from the image header (nothing is decoded); BadInput for a file that is no image."""
    try:
        with warnings.catch_warnings():
            # Pillow warns of large images on open; the limit below is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise BadInput(f"{path.name} is far over the image size limit") from None
    except (UnidentifiedImageError, OSError):
        raise BadInput(f"{path.name} is not a readable image (use JPEG, PNG, WebP, BMP or TIFF)") from None
    return int(width) * int(height)


def check_media_limits(job_type: str, inputs: Sequence[Path], limits: InputLimits) -> None:
    """BadInput if an input is larger (pixels) or longer (seconds) than the job type takes."""
    for path in inputs:
        if InputKind.IMAGE in job_types.get(job_type).input_kinds:
            pixels = image_pixels(path)
            if pixels > limits.max_pixels:
                raise BadInput(
                    f"{path.name} has {pixels / 1e6:.0f} megapixels; the limit is {limits.max_pixels / 1e6:.0f}"
                )
            continue
        # ffmpeg reads the duration from the container header (or estimates it from the bitrate).
        seconds, _, _ = media_info(path)
        limit = limits.seconds_for(job_type)
        if seconds > limit:
            raise BadInput(f"{path.name} lasts {seconds:.0f} s; {job_type} inputs may last at most {limit:.0f} s")
