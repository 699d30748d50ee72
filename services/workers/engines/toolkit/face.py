"""Finding a face and its features in a portrait, with the Haar cascades that the OpenCV wheel ships.

Haar cascades find frontal faces reliably but place features loosely (the NOTES measured the mouth box landing
on the upper lip), so feature positions start from the proportions of a frontal face box and a cascade hit only
refines them when it lies where that feature can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

# The cascades travel inside the wheel; cv2.data has no type stubs, so the folder is found from cv2 itself.
CASCADES = Path(cv2.__file__).parent / "data"
FACE_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
MIN_FACE_SIDE = 48  # pixels; smaller faces are too coarse to animate
SURE_FACE_NEIGHBOURS = 20  # a hit this well supported is a face even where no eye is found (glasses, shade)

# Proportions of a Haar frontal face box (measured on skimage's astronaut portrait and typical of the cascade).
MOUTH_LINE = 0.78  # the line between the lips, as a fraction of the box height
MOUTH_HALF_WIDTH = 0.2  # half the mouth's width, as a fraction of the box width
EYE_LINE = 0.36
EYE_OFFSET = 0.21  # eye centres left and right of the box centre, as a fraction of the box width
EYE_SIDE = 0.24


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def centre(self) -> tuple[float, float]:
        """(x, y) of the middle."""
        return self.x + self.w / 2, self.y + self.h / 2

    def as_list(self) -> list[int]:
        """[x, y, w, h], for meta."""
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class FaceLayout:
    """Where a face and the features that a talking head moves are."""

    face: Box
    mouth_line: float  # y of the line between the lips
    mouth_half_width: float
    eyes: tuple[Box, Box]  # left then right, as seen in the image


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    classifier = cv2.CascadeClassifier(str(CASCADES / name))
    if classifier.empty():
        raise RuntimeError(f"OpenCV's {name} is missing from the installed wheel")
    return classifier


def _detect(gray: NDArray[np.uint8], name: str, min_neighbors: int, min_side: int) -> list[tuple[Box, int]]:
    """Hits of a cascade with how many overlapping detections (neighbours) each merged."""
    found, neighbours = _cascade(name).detectMultiScale2(
        gray, scaleFactor=1.1, minNeighbors=min_neighbors, minSize=(min_side, min_side)
    )
    return [(Box(int(x), int(y), int(w), int(h)), int(n)) for (x, y, w, h), n in zip(found, neighbours, strict=True)]


def find_face(image: NDArray[np.uint8]) -> FaceLayout | None:
    """The layout of the largest frontal face in a BGR image, or None when there is none."""
    gray = cast(NDArray[np.uint8], cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)))
    for name in FACE_CASCADES:
        hits = sorted(_detect(gray, name, 4, MIN_FACE_SIDE), key=lambda hit: hit[0].w * hit[0].h, reverse=True)
        for face, neighbours in hits:
            eyes = _eye_hits(gray, face)
            # Texture (the moon, coins, fur) can pass the face cascade weakly; a face also has an eye.
            if neighbours >= SURE_FACE_NEIGHBOURS or eyes:
                return FaceLayout(
                    face=face,
                    mouth_line=_mouth_line(gray, face),
                    mouth_half_width=MOUTH_HALF_WIDTH * face.w,
                    eyes=_eyes(face, eyes),
                )
    return None


def _mouth_line(gray: NDArray[np.uint8], face: Box) -> float:
    """The smile cascade's centre when it lies low and central in the face, else the face proportion."""
    top = face.y + face.h // 2
    lower = gray[top : face.y + face.h, face.x : face.x + face.w]
    hits = _detect(lower, "haarcascade_smile.xml", 15, max(8, face.w // 6))
    default = face.y + MOUTH_LINE * face.h
    plausible = [
        box
        for box, _ in hits
        if abs(box.x + box.w / 2 - face.w / 2) < 0.12 * face.w
        and 0.68 * face.h < top - face.y + box.y + box.h / 2 < 0.88 * face.h
    ]
    if not plausible:
        return default
    best = min(plausible, key=lambda box: abs(top + box.y + box.h / 2 - default))
    return float(top + best.y + best.h / 2)


def _eye_hits(gray: NDArray[np.uint8], face: Box) -> list[Box]:
    """The eye cascade's hits where eyes can be in a face box, in image coordinates."""
    upper = gray[face.y : face.y + face.h * 6 // 10, face.x : face.x + face.w]
    hits = _detect(upper, "haarcascade_eye.xml", 5, max(6, face.w // 10))
    found: list[Box] = []
    for box, _ in hits:
        centre_x, centre_y = box.x + box.w / 2, box.y + box.h / 2
        for direction in (-1, 1):
            expected_x = face.w / 2 + direction * EYE_OFFSET * face.w
            if abs(centre_x - expected_x) < 0.12 * face.w and abs(centre_y - EYE_LINE * face.h) < 0.12 * face.h:
                found.append(Box(face.x + box.x, face.y + box.y, box.w, box.h))
    return found


def _eyes(face: Box, hits: list[Box]) -> tuple[Box, Box]:
    """Eye boxes of the face's proportions, centred on the eye cascade's hit on each side where there is one.

    The cascade's boxes vary in size (some take in the brow), so only their centres are used.
    """
    side = EYE_SIDE * face.w
    eyes: list[Box] = []
    for direction in (-1, 1):
        centre_x, centre_y = face.x + face.w / 2 + direction * EYE_OFFSET * face.w, face.y + EYE_LINE * face.h
        near = [box for box in hits if abs(box.centre[0] - centre_x) < 0.12 * face.w]
        if near:
            centre_x, centre_y = max(near, key=lambda box: box.w * box.h).centre
        eyes.append(Box(round(centre_x - side / 2), round(centre_y - side / 2), round(side), round(side)))
    return eyes[0], eyes[1]
