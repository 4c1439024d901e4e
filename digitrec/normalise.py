"""Turn a cropped ink region into the 28x28 MNIST format: the one normaliser for training and reading."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

from digitrec.types import Region

MNIST_SIZE = 28
"""Side of the MNIST image."""

MNIST_BOX = 20
"""MNIST fits each digit's longer side into this box, keeping the aspect ratio."""

WORK_SCALE = 4
"""The mask is reshaped at this multiple of the 20x20 box, so stroke changes are sub-pixel at 28x28."""

MNIST_STROKE_WIDTH = 2.0
"""Median stroke width of MNIST training digits at 28x28, measured with `estimate_stroke_width`."""

STROKE_TOLERANCE = 0.35
"""Relative deviation from the MNIST stroke width that is left alone."""

MIN_THIN_SIDE = 0.12
"""A digit narrower than this fraction of its height (a '1') is not widened beyond it."""

InkPolarity = Literal["auto", "light", "dark"]


@dataclass(frozen=True)
class StrokeTarget:
    """The stroke width the normaliser brings a digit to, at 28x28, and the deviation it leaves alone."""

    width: float = MNIST_STROKE_WIDTH
    tolerance: float = STROKE_TOLERANCE


MNIST_STROKE = StrokeTarget()
"""The target of training and of still photos: MNIST's own stroke."""

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


class EmptyCropError(ValueError):
    """The crop holds no ink to normalise."""


def ink_mask(crop: np.ndarray, ink: InkPolarity = "auto") -> np.ndarray:
    """Binarise a crop into a uint8 mask with ink = 1.

    Args:
        crop: grayscale ((h, w) or (h, w, 1)), BGR or BGRA image, or a mask; any numeric dtype.
        ink: "light" if the ink is brighter than the paper (a mask, MNIST), "dark" for pen on
            paper, "auto" to decide: the Otsu class that owns most of the crop's border is paper.

    Returns:
        (h, w) uint8 array of 0 and 1.
    """
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    elif crop.ndim == 3 and crop.shape[2] in (3, 4):
        colour = crop[..., :3]
        # In floats unless 8-bit: a 0..1 crop made 8-bit first would be all 0 (no ink).
        crop = cv2.cvtColor(np.ascontiguousarray(colour if colour.dtype == np.uint8 else colour.astype(np.float32)),
                            cv2.COLOR_BGR2GRAY)
    if crop.ndim != 2 or crop.size == 0:
        raise EmptyCropError(f"expected a non-empty 2-D crop, got shape {crop.shape}")
    gray = crop.astype(np.float32)
    low, high = float(gray.min()), float(gray.max())
    if high - low < 1e-6:
        raise EmptyCropError("the crop is a single flat colour: there is no ink in it")
    gray8 = ((gray - low) * (255.0 / (high - low))).astype(np.uint8)
    _, light = cv2.threshold(gray8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if ink == "auto":
        border = np.concatenate([light[0], light[-1], light[1:-1, 0], light[1:-1, -1]])
        ink = "dark" if border.mean() > 0.5 else "light"
    if ink == "dark":
        return 1 - light
    if ink == "light":
        return light
    raise ValueError(f"ink must be 'auto', 'light' or 'dark', not {ink!r}")


def estimate_stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask in pixels: twice the ink area over its boundary length."""
    return _stroke_width(mask, cv2.countNonZero(mask))


def _stroke_width(mask: np.ndarray, area: int) -> float:
    if area == 0:
        return 0.0
    boundary = area - cv2.countNonZero(cv2.erode(mask, _CROSS))
    return 2.0 * area / max(boundary, 1)


@lru_cache(maxsize=16)
def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _crop_to_ink(mask: np.ndarray) -> np.ndarray:
    x, y, w, h = cv2.boundingRect(mask)  # of the nonzero pixels of a uint8 image
    if w == 0:
        raise EmptyCropError("the crop holds no ink")
    return mask[y : y + h, x : x + w]


def _match_stroke(work: np.ndarray, stroke: StrokeTarget) -> np.ndarray:
    """Dilate thin pen or erode thick marker so the stroke is as wide as `stroke` (MNIST's by default)."""
    target = stroke.width * WORK_SCALE
    area = cv2.countNonZero(work)
    width = _stroke_width(work, area)
    if abs(width - target) <= stroke.tolerance * target:
        return work
    # Widen by at most one target stroke: a wider gap means the estimate is off, not the pen.
    radius = int(round(min(abs(target - width), target) / 2))
    if radius == 0:
        return work
    if width < target:
        return cv2.dilate(work, _disc(radius))
    eroded = cv2.erode(work, _disc(radius))
    # Never erode a digit away: keep the original when erosion would lose most of it.
    if cv2.countNonZero(eroded) < 0.25 * area:
        return work
    return eroded


@dataclass(frozen=True)
class CropFormat:
    """The image a region is normalised into, and the box its ink is fitted into (keeping its aspect)."""

    height: int
    width: int
    box_height: int
    box_width: int


MNIST_FORMAT = CropFormat(MNIST_SIZE, MNIST_SIZE, MNIST_BOX, MNIST_BOX)
"""One digit, as MNIST: 20x20 box in 28x28."""

PAIR_FORMAT = CropFormat(MNIST_SIZE, 2 * MNIST_SIZE, MNIST_BOX, 48)
"""A blob that may be two touching digits, side by side at MNIST's height: 20x48 box in 28x56."""


def normalise_mask_to_mnist(mask: np.ndarray, stroke: StrokeTarget = MNIST_STROKE) -> np.ndarray:
    """Normalise a binary ink mask (ink = nonzero) to a 28x28 float32 MNIST image.

    The MNIST recipe: crop to the ink, bring the stroke to MNIST's width (or `stroke`'s), fit the
    longer side in 20 px keeping the aspect ratio, and place it in 28x28 with its centre of mass
    at the centre. White ink on black, values in [0, 1].
    """
    return normalise_mask(mask, stroke, MNIST_FORMAT)


def normalise_mask(mask: np.ndarray, stroke: StrokeTarget = MNIST_STROKE, layout: CropFormat = MNIST_FORMAT) -> np.ndarray:
    """`normalise_mask_to_mnist` into any `CropFormat`: the same recipe, the ink fitted into the
    format's box and placed by its centre of mass. Returns (layout.height, layout.width) float32."""
    if mask.size == 0:
        raise EmptyCropError("the crop is empty")
    if mask.dtype != np.uint8 or mask.max() > 1:
        mask = (mask > 0).astype(np.uint8)
    ink = _crop_to_ink(mask)
    height, width = ink.shape
    # For a square box this is box * WORK_SCALE / max(height, width), to the bit (WORK_SCALE is a power of 2).
    scale = min(layout.box_height / height, layout.box_width / width) * WORK_SCALE
    work_w = max(1, int(round(width * scale)))
    work_h = max(1, int(round(height * scale)))
    # A thin '1' scaled by its height alone would vanish; keep it at least a stroke wide.
    work_w = max(work_w, int(round(MIN_THIN_SIDE * work_h)))
    work = cv2.resize(ink * np.uint8(255), (work_w, work_h), interpolation=cv2.INTER_AREA)
    work = cv2.threshold(work, 127, 1, cv2.THRESH_BINARY)[1]
    if not cv2.countNonZero(work):
        raise EmptyCropError("the ink vanished when scaled: the crop is too small to read")
    pad = WORK_SCALE * 2
    work = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    work = _crop_to_ink(_match_stroke(work, stroke))

    height, width = work.shape
    fit = min(layout.box_height / height, layout.box_width / width)
    box_w = min(layout.box_width, max(1, int(round(width * fit))))
    box_h = min(layout.box_height, max(1, int(round(height * fit))))
    digit = cv2.resize(work.astype(np.float32), (box_w, box_h), interpolation=cv2.INTER_AREA)

    # cv2.moments would read a (h, 2) image as a list of points, so weigh the pixels directly.
    columns = digit.sum(axis=0)
    mass = float(digit.sum())
    if mass <= 0:
        raise EmptyCropError("the crop holds no ink")
    centre_x = float(columns @ np.arange(box_w)) / mass
    centre_y = float(digit.sum(axis=1) @ np.arange(box_h)) / mass
    # Shift the centre of mass onto the image's centre as MNIST does, but never push ink off the image.
    shift_x = min(max(layout.width / 2 - centre_x, 0.0), float(layout.width - box_w))
    shift_y = min(max(layout.height / 2 - centre_y, 0.0), float(layout.height - box_h))
    transform = np.float32([[1, 0, shift_x], [0, 1, shift_y]])
    placed = cv2.warpAffine(
        digit, transform, (layout.width, layout.height), flags=cv2.INTER_LINEAR, borderValue=0
    )
    # Area and linear interpolation of values in [0, 1] stay in it, but for rounding above 1.
    return np.minimum(placed, 1.0, out=placed)


def normalise_to_mnist(crop: np.ndarray, ink: InkPolarity = "auto") -> np.ndarray:
    """Normalise one cropped digit (grayscale, BGR or mask, either polarity) to 28x28 MNIST.

    Args:
        crop: the region around one digit. With ink="auto" leave a margin of paper round it.
        ink: which side of the threshold the ink is on; see `ink_mask`.

    Returns:
        (28, 28) float32 in [0, 1], white ink on black.

    Raises:
        EmptyCropError: the crop holds no ink.
    """
    return normalise_mask_to_mnist(ink_mask(crop, ink))


def normalise_batch(crops: list[np.ndarray], ink: InkPolarity = "auto") -> np.ndarray:
    """Normalise several crops into one (N, 28, 28, 1) float32 batch for the classifier."""
    batch = np.zeros((len(crops), MNIST_SIZE, MNIST_SIZE, 1), np.float32)
    for index, crop in enumerate(crops):
        batch[index, :, :, 0] = normalise_to_mnist(crop, ink)
    return batch


def normalise_regions(regions: list[Region], stroke: StrokeTarget = MNIST_STROKE,
                      layout: CropFormat = MNIST_FORMAT) -> tuple[np.ndarray, list[int]]:
    """The (N, 28, 28, 1) batch (or `layout`'s size) of the regions that hold ink, and their indices in `regions`."""
    batch = np.zeros((len(regions), layout.height, layout.width, 1), np.float32)
    kept: list[int] = []
    for index, region in enumerate(regions):
        try:
            batch[len(kept), :, :, 0] = normalise_mask(region.mask, stroke, layout)
        except EmptyCropError:
            continue
        kept.append(index)
    return batch[: len(kept)], kept
