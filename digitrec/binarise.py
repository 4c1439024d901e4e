"""Separate ink from paper under uneven light: the one thresholding used by the reader and by training."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

MIN_INK_CONTRAST = 0.12
"""Ink must be at least this much darker than the paper around it (fraction of the paper's brightness)."""

MAX_INK_CONTRAST_THRESHOLD = 0.45
"""Otsu's split is never placed deeper than this, so faint strokes beside dark ones survive."""

HYSTERESIS_LOW = 0.55
"""Pixels darker than this fraction of the threshold are ink too when they touch sure ink:
faint, thin or blurred parts of a stroke stay joined to the rest of it."""


def ink_channel(image: np.ndarray) -> np.ndarray:
    """The darkest of the three colour channels: blue, red or black ink all come out dark on white."""
    if image.ndim == 2:
        return image
    return _darkest_channel(image)


@njit(cache=True, nogil=True)
def _darkest_channel(image):  # pragma: no cover - compiled; tested through ink_channel
    """min(B, G, R) per pixel in one pass: `cv2.split` then two `cv2.min` cost five times as much
    at 1280x720 (three frame-sized planes written and read again)."""
    height, width = image.shape[0], image.shape[1]
    darkest = np.empty((height, width), np.uint8)
    for row in range(height):
        for column in range(width):
            blue, green, red = image[row, column, 0], image[row, column, 1], image[row, column, 2]
            lower = blue if blue < green else green
            darkest[row, column] = lower if lower < red else red
    return darkest


@njit(cache=True, nogil=True)
def label_lookup(table, labels):  # pragma: no cover - compiled; tested through its callers
    """`table[labels]` for a uint8 table and an int32 label image: `np.take` first copies the
    labels to 64-bit indices, which costs more than the lookup itself."""
    looked_up = np.empty(labels.shape, np.uint8)
    for row in range(labels.shape[0]):
        for column in range(labels.shape[1]):
            looked_up[row, column] = table[labels[row, column]]
    return looked_up


@njit(cache=True, nogil=True)
def _labels_reaching(labels, darkness, level, count):  # pragma: no cover - compiled; tested through binarise_ink
    """uint8 flags of the labels (of `count`, 0 = background never) holding a pixel darker than `level`."""
    reaching = np.zeros(count, np.uint8)
    for row in range(labels.shape[0]):
        for column in range(labels.shape[1]):
            if darkness[row, column] > level:
                reaching[labels[row, column]] = 1
    reaching[0] = 0
    return reaching


def load_compiled() -> None:
    """Load the compiled passes now rather than on the first frame."""
    ink_channel(np.zeros((2, 2, 3), np.uint8))
    labels = np.zeros((2, 2), np.int32)
    label_lookup(_labels_reaching(labels, np.zeros((2, 2), np.float32), np.float32(0.5), 1), labels)


def flatten_paper(gray: np.ndarray, paper_kernel: int) -> np.ndarray:
    """Divide out the light falling on the paper: (h, w) float32 where paper is about 1 and ink is below.

    The paper's brightness is estimated by a grey closing, which erases strokes narrower
    than `paper_kernel` but follows gradients, so shadows and light falloff cancel out.
    """
    return gray.astype(np.float32) / paper_brightness(gray, paper_kernel)


def paper_brightness(gray: np.ndarray, paper_kernel: int) -> np.ndarray:
    """The light on the paper, (h, w) float32 >= 1: a grey closing that erases strokes narrower than the kernel."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (paper_kernel, paper_kernel))
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, kernel)
    return np.maximum(paper.astype(np.float32), 1.0)


def ink_darkness_threshold(darkness: np.ndarray) -> float:
    """Otsu's split of how much darker than the paper each pixel is, kept within sane bounds."""
    darkness8 = cv2.convertScaleAbs(darkness, alpha=255.0)  # darkness is >= 0; saturates at 255
    otsu, _ = cv2.threshold(darkness8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(np.clip(otsu / 255.0, MIN_INK_CONTRAST, MAX_INK_CONTRAST_THRESHOLD))


def binarise_ink(gray: np.ndarray, paper_kernel: int, threshold: float | None = None) -> np.ndarray:
    """Mask of dark ink on lighter paper: (h, w) uint8, 1 = ink.

    Args:
        gray: (h, w) uint8 photograph of paper.
        paper_kernel: odd size in pixels larger than the widest stroke.
        threshold: darkness (1 - ink/paper) above which a pixel is ink; Otsu's choice if None.
    """
    return binarise_ink_on_paper(gray, paper_kernel, threshold).mask


@dataclass
class InkOnPaper:
    """The ink mask, and the paper's light and the darkness threshold it was cut with (to cut
    the same ink again elsewhere, e.g. at a higher resolution)."""

    mask: np.ndarray
    paper: np.ndarray
    """(h, w) float32 brightness of the paper, from `paper_brightness` of the blurred image."""
    threshold: float


def binarise_ink_on_paper(gray: np.ndarray, paper_kernel: int, threshold: float | None = None) -> InkOnPaper:
    """`binarise_ink`, also returning the paper's light and the threshold used."""
    # Smooth sensor noise first: the closing would otherwise track the brightest noise and
    # make plain paper look inked.
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    paper = paper_brightness(blurred, paper_kernel)
    darkness = 1.0 - blurred.astype(np.float32) / paper
    if threshold is None:
        threshold = ink_darkness_threshold(darkness)
    maybe = (darkness > HYSTERESIS_LOW * threshold).astype(np.uint8)
    count, labels = cv2.connectedComponents(maybe, connectivity=8)
    # The levels are compared in float32, as NumPy compares a float32 image with a Python float.
    keep = _labels_reaching(labels, darkness, np.float32(threshold), count)
    return InkOnPaper(label_lookup(keep, labels), paper, threshold)


SPECK_AREA_FRACTION = 0.04
"""Ink components smaller than this fraction of the largest one in a crop are specks, not strokes."""


def drop_specks(mask: np.ndarray, area_fraction: float = SPECK_AREA_FRACTION) -> np.ndarray:
    """Keep the connected ink components of a crop's mask that are not specks beside its largest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, np.uint8)
    keep[1:] = areas >= area_fraction * areas.max()
    return keep[labels]
