"""Separate ink from paper under uneven light: the one thresholding used by the reader and by training."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from numba import njit

MIN_INK_CONTRAST = 0.12
"""Ink must be at least this much darker than the paper around it (fraction of the paper's brightness)."""

MAX_INK_CONTRAST_THRESHOLD = 0.45
"""Otsu's split is never placed deeper than this, so faint strokes beside dark ones survive."""

NOISY_FRAME = 7
"""A frame whose `sensor_noise` reaches this is smoothed over 5x5 pixels instead of 3x3 before thresholding: in
dim light a webcam's noise on grey paper otherwise crosses the ink threshold in specks everywhere, which
join faint digits to each other and make false ones (seed 221's noisy held-out video read 23.5 %)."""

HYSTERESIS_LOW = 0.55
"""Pixels darker than this fraction of the threshold are ink too when they touch sure ink:
faint, thin or blurred parts of a stroke stay joined to the rest of it."""


INK_COLOURS = ("dark", "light")
"""Ink darker than its ground (pen, pencil or marker on paper, a whiteboard), or lighter (chalk on a blackboard,
white digits on black such as MNIST's own images)."""


def ink_channel(image: np.ndarray, ink: str = "dark") -> np.ndarray:
    """The darkest of the three colour channels: blue, red or black ink all come out dark on white.

    With `ink` "light" the image is first inverted (255 - each value), so light ink on a dark ground comes out
    dark on light too, exactly as the same page written dark on light would: the thresholding after it is
    the same either way. A grey (2-D) image is returned as it is, or inverted."""
    if ink not in INK_COLOURS:
        raise ValueError(f"ink must be one of {', '.join(INK_COLOURS)}, not {ink!r}")
    if ink == "light":
        image = cv2.bitwise_not(image)
    if image.ndim == 2:
        return image
    return _darkest_channel(np.ascontiguousarray(image))


@njit(cache=True, nogil=True)
def _darkest_channel(image):  # pragma: no cover - compiled; tested through ink_channel
    """min(B, G, R) per pixel in one pass over the flat pixels (a C-contiguous image): `cv2.split` then two
    `cv2.min` write and read three frame-sized planes (at 1280x720, 2.9 against 0.5 ms on frames in memory),
    and a loop over rows and columns is not vectorised by the compiler (640x480: 0.13 ms, flat 0.02 ms)."""
    height, width = image.shape[0], image.shape[1]
    channels = image.reshape(-1)
    darkest = np.empty(height * width, np.uint8)
    for pixel in range(height * width):
        blue, green, red = channels[3 * pixel], channels[3 * pixel + 1], channels[3 * pixel + 2]
        lower = blue if blue < green else green
        darkest[pixel] = lower if lower < red else red
    return darkest.reshape(height, width)


@njit(cache=True, nogil=True)
def label_lookup(table, labels):  # pragma: no cover - compiled; tested through its callers
    """`table[labels]` for a uint8 table and an int32 label image: `np.take` first copies the
    labels to 64-bit indices, which costs more than the lookup itself."""
    looked_up = np.empty(labels.shape, np.uint8)
    for row in range(labels.shape[0]):
        for column in range(labels.shape[1]):
            looked_up[row, column] = table[labels[row, column]]
    return looked_up


@njit(cache=True, nogil=True, inline="always")
def _darkness(gray, paper):  # pragma: no cover - compiled
    """How much darker than the paper a pixel is, 1 - gray / max(paper, 1), in float32 as NumPy computes it."""
    return np.float32(1.0) - np.float32(gray) / np.float32(max(paper, 1))


@njit(cache=True, nogil=True)
def _darkness_levels():  # pragma: no cover - compiled; tested through ink_darkness_threshold
    """(256, 256) uint8 table: for a pixel `gray` under paper light `paper`, its darkness scaled to
    0-255 and rounded as `cv2.convertScaleAbs` rounds it (the levels Otsu's split is chosen among)."""
    levels = np.empty((256, 256), np.uint8)
    for gray in range(256):
        for paper in range(256):
            level = np.rint(abs(_darkness(np.uint8(gray), np.uint8(paper)) * np.float32(255.0)))
            levels[gray, paper] = np.uint8(min(level, np.float32(255.0)))
    return levels


@njit(cache=True, nogil=True)
def _darkness_histogram(gray, paper, levels):  # pragma: no cover - compiled; tested through ink_darkness_threshold
    """Histogram of the pixels' darkness levels (`_darkness_levels`), counted in four partial
    histograms so that neighbouring pixels of one level do not wait on each other's count."""
    partial = np.zeros((4, 256), np.int64)
    for row in range(gray.shape[0]):
        for column in range(gray.shape[1]):
            partial[column & 3, levels[gray[row, column], paper[row, column]]] += 1
    return partial.sum(axis=0)


@njit(cache=True, nogil=True)
def _otsu_level(histogram):  # pragma: no cover - compiled; tested through ink_darkness_threshold
    """The level OpenCV's THRESH_OTSU picks for an 8-bit image with this histogram (its arithmetic, step for step)."""
    scale = 1.0 / histogram.sum()
    mu = 0.0
    for value in range(256):
        mu += value * float(histogram[value])
    mu *= scale
    mu1, q1, max_sigma, max_value = 0.0, 0.0, 0.0, 0.0
    epsilon = 1.1920928955078125e-07  # FLT_EPSILON
    for value in range(256):
        p_value = histogram[value] * scale
        mu1 *= q1
        q1 += p_value
        q2 = 1.0 - q1
        if min(q1, q2) < epsilon or max(q1, q2) > 1.0 - epsilon:
            continue
        mu1 = (mu1 + value * p_value) / q1
        mu2 = (mu - q1 * mu1) / q2
        sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2)
        if sigma > max_sigma:
            max_sigma = sigma
            max_value = float(value)
    return max_value


@njit(cache=True, nogil=True)
def _hysteresis(gray, paper, low, high):  # pragma: no cover - compiled; tested through binarise_ink
    """uint8 mask of the pixels darker than `low` (float32) that are 8-connected through such pixels
    to one darker than `high`: sure ink and the faint ink joined to it.

    The set that labelling the faint mask's components and keeping those holding sure ink gives,
    found by spreading from the sure pixels through the faint ones instead: labelling the whole
    frame (cv2.connectedComponents, then a pass over the labels) cost 0.45 ms at 640x480 on two
    threads and 0.55 on one, this 0.35.
    """
    height, width = gray.shape
    state = np.empty((height, width), np.uint8)  # 0 paper, 1 faint and not yet reached, 2 sure
    for row in range(height):
        for column in range(width):
            darkness = _darkness(gray[row, column], paper[row, column])
            state[row, column] = np.uint8(darkness > low) + np.uint8(darkness > high)
    ink = np.zeros((height, width), np.uint8)
    # Pixels to spread from; each enters at most once (sure ones here, faint ones when reached).
    rows = np.empty(height * width, np.int32)
    columns = np.empty(height * width, np.int32)
    count = 0
    for row in range(height):
        for column in range(width):
            if state[row, column] == 2:
                ink[row, column] = 1
                rows[count], columns[count] = row, column
                count += 1
    while count:
        count -= 1
        row, column = rows[count], columns[count]
        for near_row in range(max(row - 1, 0), min(row + 2, height)):
            for near_column in range(max(column - 1, 0), min(column + 2, width)):
                if state[near_row, near_column] == 1:
                    state[near_row, near_column] = 0
                    ink[near_row, near_column] = 1
                    rows[count], columns[count] = near_row, near_column
                    count += 1
    return ink


def load_compiled() -> None:
    """Load the compiled passes now rather than on the first frame."""
    ink_channel(np.zeros((2, 2, 3), np.uint8))
    binarise_ink(np.full((8, 8), 200, np.uint8), 3)


def sensor_noise(gray: np.ndarray) -> int:
    """How rough the picture is from pixel to pixel: the 60th percentile of |2 g[x] - g[x-1] - g[x+1]| along every
    8th row. Strokes and edges are a small share of the pixels, so this is mostly the sensor's noise: 0-3 on most
    synthetic frames, up to 4 on grid paper and 6 on some marker frames, 3-9 on noisy ones (docs/history.md,
    session 24)."""
    rows = gray[::8].astype(np.int16)
    roughness = np.abs(2 * rows[:, 1:-1] - rows[:, :-2] - rows[:, 2:]).ravel()
    if roughness.size == 0:
        return 0
    counts = np.bincount(np.minimum(roughness, 255))
    return int(np.searchsorted(np.cumsum(counts), 0.6 * roughness.size))


def smoothing_for(noise: int) -> int:
    """The Gaussian kernel the ink is thresholded after, for a picture's `sensor_noise`: 3 (3x3), or 5 on a
    noisy picture (`NOISY_FRAME`)."""
    return 5 if noise >= NOISY_FRAME else 3


def paper_light(gray: np.ndarray, paper_kernel: int) -> np.ndarray:
    """The light on the paper, (h, w) uint8: a grey closing that erases strokes narrower than the
    kernel but follows gradients, so that dividing by it cancels shadows and light falloff."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (paper_kernel, paper_kernel))
    return cv2.morphologyEx(gray, cv2.MORPH_CLOSE, kernel)


def paper_brightness(paper: np.ndarray) -> np.ndarray:
    """`paper_light` (or a window of it) as float32 >= 1, the divisor of the darkness."""
    return np.maximum(paper.astype(np.float32), 1.0)


@lru_cache(maxsize=1)
def _levels() -> np.ndarray:
    return _darkness_levels()


def ink_darkness_threshold(gray: np.ndarray, paper: np.ndarray) -> float:
    """Otsu's split of how much darker than the paper each pixel is, kept within sane bounds."""
    otsu = _otsu_level(_darkness_histogram(gray, paper, _levels()))
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
    """(h, w) uint8 light on the paper, `paper_light` of the blurred image."""
    threshold: float
    smoothing: int = 3
    """The Gaussian kernel the picture was smoothed with before thresholding (`smoothing_for`)."""
    noise: int = 0
    """The picture's `sensor_noise`, in grey levels."""


def binarise_ink_on_paper(gray: np.ndarray, paper_kernel: int, threshold: float | None = None) -> InkOnPaper:
    """`binarise_ink`, also returning the paper's light and the threshold used.

    The darkness of each pixel, 1 - pixel / paper, is computed on the fly in each compiled pass
    (Otsu's histogram, the faint-ink mask, the sure-ink test): a float image of it would cost
    more to allocate and fill than the passes themselves.
    """
    # Smooth sensor noise first: the closing would otherwise track the brightest noise and
    # make plain paper look inked.
    noise = sensor_noise(gray)
    smoothing = smoothing_for(noise)
    blurred = cv2.GaussianBlur(gray, (smoothing, smoothing), 0)
    paper = paper_light(blurred, paper_kernel)
    if threshold is None:
        threshold = ink_darkness_threshold(blurred, paper)
    mask = _hysteresis(blurred, paper, np.float32(HYSTERESIS_LOW * threshold), np.float32(threshold))
    return InkOnPaper(mask, paper, threshold, smoothing, noise)


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


COARSE_SHRINK = 4
"""Thick strokes are looked for at this fraction of the working resolution (`widen_for_thick_strokes`)..."""

COARSE_PAPER_FRACTION = 0.25
"""...with a paper window this share of the frame's shorter side: wide enough for a marker's stroke on a digit
that fills most of the frame."""

THICK_STROKE = 0.5
"""A stroke at least this share of the paper window wide is too thick for it: the window's grey closing cannot
erase it, so the stroke's middle is taken for paper and only its edges come out as ink, in pieces."""

EDGE_DROP = 0.5
"""A dark shape is a thick stroke, not a shadow, where the paper one or two coarse pixels outside it is less dark
than this share of the ink threshold: a stroke's edges are sharp, a shadow's soft."""

THICK_PAPER_KERNEL = 2.5
"""A thick stroke's window is looked at again with a paper window this many times its stroke width."""


def widen_for_thick_strokes(gray: np.ndarray, ink: InkOnPaper, paper_kernel: int, min_height: float,
                            max_height: float) -> InkOnPaper:
    """`ink` with digits drawn in strokes too thick for `paper_kernel` cut again with a window sized from their
    strokes: a marker's digit held close to the camera (a quarter of the frame's height or more) otherwise comes
    out as the outlines of its strokes in pieces, and is read as nothing or as wrong digits.

    They are found in a coarse look (1 / `COARSE_SHRINK` of the frame, a paper window `COARSE_PAPER_FRACTION` of
    its shorter side, the same darkness threshold): dark shapes `min_height` to `max_height` pixels tall, clear of
    the frame's edges, whose stroke is at least `THICK_STROKE` of `paper_kernel` wide and whose edges are sharp
    (`EDGE_DROP`). Each such shape's box is cut again from `gray` with a paper window
    `THICK_PAPER_KERNEL` times its stroke width, in place of the first look's mask and paper there. A frame
    without such a shape (every page of ordinary handwriting) is returned as it is, `ink` itself."""
    height, width = gray.shape
    coarse_size = (max(1, width // COARSE_SHRINK), max(1, height // COARSE_SHRINK))
    coarse = cv2.resize(gray, coarse_size, interpolation=cv2.INTER_LINEAR)  # INTER_AREA costs 0.17 ms, this 0.02
    coarse_kernel = max(3, int(COARSE_PAPER_FRACTION * min(coarse.shape))) | 1
    coarse_paper = paper_light(coarse, coarse_kernel)
    darkness = 1.0 - coarse.astype(np.float32) / paper_brightness(coarse_paper)
    dark = (darkness > ink.threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    boxes = stats[1:, :4] * COARSE_SHRINK
    tall = (boxes[:, 3] >= min_height) & (boxes[:, 3] <= max_height)
    clear = (stats[1:, 0] > 0) & (stats[1:, 1] > 0) & (stats[1:, 0] + stats[1:, 2] < coarse.shape[1]) \
        & (stats[1:, 1] + stats[1:, 3] < coarse.shape[0])
    candidates = np.nonzero(tall & clear)[0] + 1
    if len(candidates) == 0:
        return ink
    mask, paper = ink.mask, ink.paper
    for label in candidates:
        x, y, w, h = stats[label, :4]
        shape = (labels[y : y + h, x : x + w] == label).astype(np.uint8)
        # Across a stroke s pixels wide the distances to the paper run 1, 2, ..., s/2, ..., 2, 1: a mean of s/4 + 1/2.
        distances = cv2.distanceTransform(np.pad(shape, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        stroke = 4.0 * (float(distances[shape > 0].mean()) - 0.5) * COARSE_SHRINK
        if stroke < THICK_STROKE * paper_kernel:
            continue
        # Just outside a stroke the paper is plain; just outside a shadow's edge it is still nearly as dark.
        px0, py0 = max(0, x - 2), max(0, y - 2)
        px1, py1 = min(coarse.shape[1], x + w + 2), min(coarse.shape[0], y + h + 2)
        around = (labels[py0:py1, px0:px1] == label).astype(np.uint8)
        ring = cv2.dilate(around, np.ones((5, 5), np.uint8)) - cv2.dilate(around, np.ones((3, 3), np.uint8))
        if np.median(darkness[py0:py1, px0:px1][ring > 0]) > EDGE_DROP * ink.threshold:
            continue  # soft edges: a shadow, not ink
        box_x, box_y = x * COARSE_SHRINK, y * COARSE_SHRINK
        kernel = int(THICK_PAPER_KERNEL * stroke) | 1
        # The window's closing needs the paper half a kernel round it.
        x0, y0 = max(0, box_x - kernel), max(0, box_y - kernel)
        x1 = min(width, box_x + w * COARSE_SHRINK + kernel)
        y1 = min(height, box_y + h * COARSE_SHRINK + kernel)
        blurred = cv2.GaussianBlur(gray[y0:y1, x0:x1], (ink.smoothing, ink.smoothing), 0)
        window_paper = paper_light(blurred, kernel)
        window_mask = _hysteresis(blurred, window_paper, np.float32(HYSTERESIS_LOW * ink.threshold),
                                  np.float32(ink.threshold))
        if mask is ink.mask:
            mask, paper = ink.mask.copy(), ink.paper.copy()
        # Only the shape's box (and a stroke round it) takes the new cut.
        bx0, by0 = max(0, box_x - int(stroke)), max(0, box_y - int(stroke))
        bx1 = min(width, box_x + w * COARSE_SHRINK + int(stroke))
        by1 = min(height, box_y + h * COARSE_SHRINK + int(stroke))
        mask[by0:by1, bx0:bx1] = window_mask[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
        paper[by0:by1, bx0:bx1] = window_paper[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
    if mask is ink.mask:
        return ink
    return InkOnPaper(mask, paper, ink.threshold, ink.smoothing, ink.noise)
