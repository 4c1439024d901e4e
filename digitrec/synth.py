"""Synthetic photos and videos of handwritten pages, with exact truth, to test and measure the reader."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from digitrec.types import Box

Range = tuple[float, float]

MARK_KINDS = ("dot", "dash", "box", "smudge", "scribble", "letters", "line")
"""The non-digit marks: dots, dashes, checkbox squares, smudges, wavy scribbles, cursive loops, long lines."""

CONDITIONS = (
    "clean", "ruled", "grid", "shadow", "perspective", "blue_pen", "marker", "noisy", "marks", "mixed",
)  # fmt: skip
"""The named page conditions; "mixed" combines a random few of the others."""

SAMPLE_SEED = 2044
"""Seed of the committed sample photo."""


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Style:
    """Ranges of one page condition. Heights are fractions of the frame height unless named otherwise."""

    paper: str = "plain"
    """plain | ruled | grid"""
    paper_white: Range = (0.85, 0.97)
    digit_height: Range = (0.04, 0.14)
    stroke: Range = (0.07, 0.13)
    """Stroke width as a fraction of digit height."""
    pens: tuple[str, ...] = ("black", "grey", "blue", "dark_blue")
    ink_strength: Range = (0.75, 0.95)
    tilt: float = 5.0
    """Largest out-of-plane tilt of the page, degrees."""
    roll: float = 3.0
    """Largest in-plane rotation of the page, degrees."""
    light_gradient: Range = (0.05, 0.25)
    shadow: Range = (0.0, 0.0)
    """Darkening at the core of a soft shadow blob (0 = none)."""
    blur: Range = (0.3, 0.9)
    """Gaussian sigma of the lens blur, pixels."""
    noise: Range = (1.0, 4.0)
    """Sensor noise sigma, grey levels."""
    contrast: Range = (0.85, 1.0)
    jpeg: tuple[int, int] = (70, 95)
    marks: tuple[int, int] = (0, 3)
    """How many non-digit marks (inclusive range)."""


BASE_STYLE = Style()

STYLES: dict[str, Style] = {
    "clean": Style(paper_white=(0.95, 1.0), pens=("black",), light_gradient=(0.0, 0.08), blur=(0.2, 0.6),
                   noise=(0.5, 2.0), jpeg=(85, 95), marks=(0, 0)),
    "ruled": Style(paper="ruled"),
    "grid": Style(paper="grid"),
    "shadow": Style(light_gradient=(0.3, 0.5), shadow=(0.35, 0.6)),
    "perspective": Style(tilt=25.0, roll=10.0),
    "blue_pen": Style(pens=("blue", "dark_blue"), stroke=(0.04, 0.07)),
    "marker": Style(stroke=(0.16, 0.24), ink_strength=(0.9, 0.98), pens=("black", "dark_blue")),
    "noisy": Style(digit_height=(0.06, 0.167), blur=(1.0, 1.8), noise=(6.0, 12.0), contrast=(0.5, 0.7),
                   ink_strength=(0.6, 0.85), jpeg=(60, 72)),
    "marks": Style(marks=(10, 16)),
}  # fmt: skip
"""Each condition's changes to BASE_STYLE; "mixed" is built per page."""

MIXED_PARTS: tuple[int, int] = (2, 3)
"""How many conditions a "mixed" page combines."""

PENS: dict[str, tuple[float, float, float]] = {
    "black": (0.10, 0.10, 0.12),
    "grey": (0.25, 0.25, 0.27),
    "blue": (0.62, 0.25, 0.10),
    "dark_blue": (0.42, 0.15, 0.08),
}
"""Pen colours as BGR transmittance: what fraction of the light a full stroke lets through."""


@dataclass(frozen=True)
class Layout:
    """Ranges of the page layout, in units of the digit height unless named otherwise."""

    min_digit_px: float = 22.0
    max_digit_fraction: float = 1 / 6
    """Largest digit height as a fraction of the frame height."""
    lines: tuple[int, int] = (2, 6)
    numbers_per_line: tuple[int, int] = (1, 4)
    digits_per_number: tuple[int, int] = (1, 5)
    digit_gap: Range = (0.1, 0.35)
    min_digit_gap_px: float = 3.0
    number_gap: Range = (1.3, 3.0)
    line_spacing: Range = (1.75, 2.4)
    min_line_spacing: float = 1.6
    ruling: Range = (1.3, 1.8)
    grid_cell: Range = (0.55, 0.85)
    ruled_sink: Range = (-0.02, 0.1)
    """How far a digit's bottom sits below its ruled line."""
    number_height_jitter: float = 0.12
    digit_height_jitter: float = 0.04
    baseline_jitter: float = 0.04
    line_slope: float = 0.02
    indent: Range = (0.0, 0.15)
    """Start of a line, fraction of the content width."""
    slant: Range = (-0.08, 0.25)
    """Writer's shear (top leans right for positive)."""
    slant_jitter: float = 0.06
    rotation_jitter: float = 4.0
    aspect: Range = (0.85, 1.15)
    max_aspect: float = 1.2
    """Widest digit, relative to its line's digit height."""
    min_stroke_px: float = 1.6
    paper_size: Range = (0.95, 1.1)
    """Paper size relative to the frame, before the camera fits it."""
    content_margin: Range = (0.04, 0.08)
    """Blank border of the paper, fraction of its size."""
    fill: Range = (0.92, 1.08)
    """Paper size in the image relative to the frame."""
    frame_margin: float = 0.03
    """Smallest gap between the written area and the frame edge, fraction of the frame."""
    mark_size: Range = (0.15, 0.8)
    letter_loops: tuple[int, int] = (2, 5)
    """Loops of a letter-like scribble (upper bound exclusive)."""
    letter_height: Range = (0.35, 0.6)
    """x-height of a letter-like scribble, in digit heights."""
    line_length: Range = (1.5, 3.0)
    mark_clearance: float = 0.35
    mark_tries: int = 600
    smudge_strength: Range = (0.25, 0.45)
    pressure: Range = (0.85, 1.0)


LAYOUT = Layout()

CLOSE_UP_LAYOUT = Layout(max_digit_fraction=0.65, lines=(1, 1), numbers_per_line=(1, 1), digits_per_number=(1, 2))
CLOSE_UP_HEIGHT: Range = (0.25, 0.65)
"""A close-up (`make_page(close_up=True)`): one number of one or two digits, each 25-65 % of the frame's height, as
when a sheet is held up close to a webcam. The condition's pen keeps its stroke width as a share of the digit's
height, so a marker's strokes reach 60 px at 640x480."""


def _close_up(style: Style) -> tuple[Style, Layout]:
    return dataclasses.replace(style, digit_height=CLOSE_UP_HEIGHT, marks=(0, 0)), CLOSE_UP_LAYOUT


@dataclass(frozen=True)
class Camera:
    """Ranges of the camera and the scene around the paper."""

    focal: float = 1.3
    """Focal length relative to the paper's larger side."""
    vignette: Range = (0.0, 0.2)
    white_balance: float = 0.05
    desk_bgr: tuple[Range, Range, Range] = ((0.15, 0.45), (0.2, 0.5), (0.25, 0.6))
    paper_shadow: Range = (0.2, 0.45)
    paper_texture: Range = (0.01, 0.03)
    grain: float = 0.012
    ink_texture: float = 0.12


CAMERA = Camera()


@dataclass(frozen=True)
class Handheld:
    """Ranges of a hand-held camera over a video; shifts are fractions of the frame width."""

    sheet_scale: float = 2.0
    """The page is rendered this much larger than the frame, then viewed through the camera."""
    frame_margin: float = 0.1
    drift_shift: float = 0.03
    drift_rotation: float = 2.5
    drift_scale: float = 0.04
    drift_smoothness: float = 10.0
    """Gaussian sigma of the drift, frames."""
    shake_shift: float = 0.003
    shake_smoothness: float = 1.2
    exposure: float = 0.15
    motion_blur_probability: float = 0.15
    motion_blur_px: tuple[int, int] = (3, 9)


HANDHELD = Handheld()


# ---------------------------------------------------------------------------------------------- truth


@dataclass
class TruthDigit:
    """One written digit: its tight box in the final image, its value, and its number's index."""

    box: Box
    digit: int
    number: int
    ident: int = -1
    """Which written digit of the sheet this is: the same in every frame of a video (-1 when unknown)."""


@dataclass
class TruthNumber:
    """One written number: its text and the union of its digits' boxes."""

    text: str
    box: Box


@dataclass
class SyntheticPage:
    """A synthetic photo and what is written on it."""

    image: np.ndarray
    """(h, w, 3) uint8 BGR."""
    digits: list[TruthDigit]
    numbers: list[TruthNumber]
    marks: list[Box]
    """Boxes of non-digit marks (dots, dashes, squares, smudges, scribbles)."""
    condition: str
    ignored: list[Box] = field(default_factory=list)
    """Digits and marks cut by the frame edge: neither to be found nor false when found."""


@dataclass
class SyntheticVideo:
    """A hand-held video of one page; truth[i] describes frames[i] (same array)."""

    frames: list[np.ndarray]
    truth: list[SyntheticPage]
    condition: str
    fps: float = 30.0


# ---------------------------------------------------------------------------------------------- glyphs


class DigitGlyphs(Protocol):
    """A source of single handwritten digits."""

    def sample(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """Float32 ink image in [0, 1] (1 = ink), any size, holding one `digit`."""
        ...


class MnistGlyphs:
    """Digits cut from MNIST arrays, upscaled smoothly so strokes look like pen, not pixels."""

    upscale = 4
    smoothing = 1.2

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        images = np.asarray(images)
        self.images = (
            images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
        )
        labels = np.asarray(labels).astype(np.int64)
        self.by_digit = [np.flatnonzero(labels == digit) for digit in range(10)]
        missing = [digit for digit, rows in enumerate(self.by_digit) if rows.size == 0]
        if missing:
            raise ValueError(f"MnistGlyphs: no images labelled {missing}")

    def sample(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """A random MNIST image of `digit`, about 112 px high, with smooth edges."""
        image = self.images[self.by_digit[digit][rng.integers(len(self.by_digit[digit]))]]
        side = image.shape[0] * self.upscale
        big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        big = cv2.GaussianBlur(np.clip(big, 0, 1), (0, 0), self.smoothing)
        return np.clip((big - 0.3) / 0.4, 0.0, 1.0)


STROKE_TEMPLATES: dict[int, tuple[str, ...]] = {
    0: ("~ 50,0 18,14 6,50 20,88 50,100 80,88 94,50 80,12 50,0 36,6",),
    1: ("- 50,0 47,100", "- 15,25 55,0 50,100"),
    2: ("~ 10,28 30,5 60,2 85,22 72,50 38,78 8,98 | - 8,98 95,96",
        "~ 12,20 45,0 85,20 60,60 8,98 | ~ 8,98 30,90 60,95 95,100"),
    3: ("~ 12,15 45,0 80,12 74,38 40,50 | ~ 40,50 82,62 88,86 50,100 8,88",),
    4: ("- 60,0 6,66 95,66 | - 68,30 66,100", "- 15,0 10,60 92,58 | - 72,0 70,100"),
    5: ("- 25,2 20,45 | ~ 20,45 50,36 84,55 82,85 50,100 10,90 | - 25,2 88,0",),
    6: ("~ 78,0 40,18 12,55 18,88 50,100 82,85 80,60 50,48 16,65",),
    7: ("- 6,5 94,2 42,100", "~ 6,8 50,2 94,0 | ~ 94,0 62,45 45,100"),
    8: ("~ 78,12 50,0 20,12 24,34 50,48 80,68 76,92 50,100 20,90 20,68 50,48 76,30 78,12 62,2",
        "~ 50,0 22,10 24,36 50,46 76,36 78,10 50,0 38,3 "
        "| ~ 50,46 14,60 16,90 50,100 86,90 84,60 50,46 36,50"),
    9: ("~ 82,18 55,0 22,10 18,34 45,46 75,36 82,18 | ~ 82,12 80,60 70,100",
        "~ 80,14 50,0 18,14 25,42 60,40 82,14 | - 82,12 68,100"),
}  # fmt: skip
"""Each digit's ways of being written: strokes split by "|", each "~" (a smooth curve through the
points) or "-" (straight segments), with x,y in percent of a unit box (x right, y down)."""


BOXY_TEMPLATES: dict[int, tuple[str, ...]] = {
    0: ("- 10,0 90,0 90,100 10,100 10,0",),
    1: ("- 80,0 80,100",),
    2: ("- 10,0 90,0 90,50 10,50 10,100 90,100",),
    3: ("- 10,0 90,0 90,50 10,50 | - 90,50 90,100 10,100",),
    4: ("- 10,0 10,50 90,50 | - 90,0 90,100",),
    5: ("- 90,0 10,0 10,50 90,50 90,100 10,100",),
    6: ("- 90,0 10,0 10,100 90,100 90,50 10,50",),
    7: ("- 10,0 90,0 90,100",),
    8: ("- 10,50 10,0 90,0 90,100 10,100 10,50 90,50",),
    9: ("- 90,50 10,50 10,0 90,0 90,100 10,100",),
}  # fmt: skip
"""A boxy hand that writes digits like a seven-segment display (an open-top 4, a square 0): one
that a model trained on MNIST reads poorly, for testing fine-tuning on a user's hand."""


def _parse_template(template: str) -> list[tuple[bool, np.ndarray]]:
    """[(smooth, (n, 2) points in [0, 1])] of one STROKE_TEMPLATES entry."""
    strokes = []
    for stroke in template.split("|"):
        kind, *points = stroke.split()
        strokes.append((kind == "~", np.array([p.split(",") for p in points], np.float64) / 100.0))
    return strokes


@dataclass(frozen=True)
class StrokeStyle:
    """Ranges of StrokeGlyphs' per-sample jitter."""

    height_px: float = 100.0
    width: float = 0.62
    """Glyph width relative to its height."""
    jitter: float = 0.025
    slant: Range = (-0.1, 0.3)
    aspect: Range = (0.85, 1.2)
    rotation: float = 5.0
    thickness: tuple[int, int] = (6, 12)
    samples_per_segment: int = 10


def _catmull_rom(points: np.ndarray, samples: int) -> np.ndarray:
    """A smooth curve through control points (n, 2), `samples` points per segment."""
    padded = np.vstack([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    p0, p1, p2, p3 = padded[:-3], padded[1:-2], padded[2:-1], padded[3:]
    t = np.linspace(0, 1, samples, endpoint=False)[:, None, None]
    curve = 0.5 * (
        2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3
    )
    return np.vstack([curve.transpose(1, 0, 2).reshape(-1, 2), points[-1:]])


class StrokeGlyphs:
    """Digits drawn by code from jittered pen-stroke templates: no data needed."""

    def __init__(self, style: StrokeStyle | None = None,
                 templates: dict[int, tuple[str, ...]] | None = None) -> None:
        """`templates` replaces STROKE_TEMPLATES (same format) to draw another hand's digits."""
        self.style = style or StrokeStyle()
        self.templates = templates or STROKE_TEMPLATES

    def sample(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """One freshly jittered `digit`, about 100 px high, antialiased."""
        s = self.style
        variants = self.templates[digit]
        variant = _parse_template(variants[rng.integers(len(variants))])
        slant, aspect = rng.uniform(*s.slant), rng.uniform(*s.aspect)
        angle = np.deg2rad(rng.uniform(-s.rotation, s.rotation))
        rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        curves = []
        for smooth, control in variant:
            points = control + rng.normal(0, s.jitter, control.shape)
            curve = _catmull_rom(points, s.samples_per_segment) if smooth else points
            x = (curve[:, 0] - 0.5) * s.width * aspect + slant * (0.5 - curve[:, 1])
            curves.append(np.column_stack([x, curve[:, 1] - 0.5]) @ rotate.T * s.height_px)
        thickness = int(rng.integers(s.thickness[0], s.thickness[1] + 1))
        every = np.vstack(curves)
        low = every.min(axis=0) - thickness
        width, height = np.ceil(every.max(axis=0) - low + thickness).astype(int)
        canvas = np.zeros((height, width), np.uint8)
        shift = 3
        polylines = [np.round((curve - low) * (1 << shift)).astype(np.int32) for curve in curves]
        cv2.polylines(canvas, polylines, False, 255, thickness, cv2.LINE_AA, shift)
        return canvas.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------- helpers


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _randint(rng: np.random.Generator, bounds: tuple[int, int] | Range) -> int:
    return int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))


def style_for(condition: str, rng: np.random.Generator) -> Style:
    """The ranges of a condition; "mixed" takes the changes of a random few conditions."""
    if condition in STYLES:
        return STYLES[condition]
    if condition != "mixed":
        raise ValueError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")
    names = list(STYLES)
    picked = rng.choice(len(names), _randint(rng, MIXED_PARTS), replace=False)
    changes: dict[str, object] = {}
    for index in picked:
        style = STYLES[names[index]]
        for item in dataclasses.fields(Style):
            if getattr(style, item.name) != getattr(BASE_STYLE, item.name):
                changes[item.name] = getattr(style, item.name)
    return dataclasses.replace(BASE_STYLE, **changes)


def _low_frequency(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1] varying over `cells` cells across the larger side."""
    height, width = shape
    grid = rng.standard_normal((max(2, cells * height // max(shape)), max(2, cells * width // max(shape))))
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC) / 2.0


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: twice its area over its outline's length."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0)


def _ink_bbox(ink: np.ndarray) -> Box:
    return cv2.boundingRect(cv2.findNonZero((ink > 0.5).astype(np.uint8)))


def _render_glyph(
    ink: np.ndarray, height: float, stroke: float, shear: float, angle: float, aspect: float
) -> np.ndarray:
    """A glyph scaled so its ink is `height` px high (at most) with strokes `stroke` px wide, slanted, turned.

    Very flat glyphs are shrunk so they are no wider than LAYOUT.max_aspect times `height`.
    """
    x, y, w, h = _ink_bbox(ink)
    ink = ink[y : y + h, x : x + w]
    natural = _stroke_width(ink > 0.5)
    scale = (height - stroke) / max(h - natural, 1.0)
    scale = max(min(scale, (LAYOUT.max_aspect * height - stroke) / max((w - natural) * aspect, 1.0)), 0.05)
    grow = (stroke - natural * scale) / 2.0
    angle = np.deg2rad(angle)
    linear = (
        np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, -shear], [0.0, 1.0]])
        @ np.diag([scale * aspect, scale])
    )
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ linear.T
    pad = abs(grow) + 3
    low = corners.min(axis=0) - pad
    size = np.ceil(corners.max(axis=0) - low + pad).astype(int)
    matrix = np.hstack([linear, -low[:, None]]).astype(np.float32)
    warped = cv2.warpAffine(ink, matrix, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR)
    mask = (warped > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    signed = np.where(mask > 0, inside - 0.5, 0.5 - outside)
    return np.clip(signed + grow + 0.5, 0.0, 1.0).astype(np.float32)


def _paste(
    layer: np.ndarray, labels: np.ndarray, ink: np.ndarray, x: int, y: int, label: int, alpha: float = 1.0
) -> None:
    """Max-blend `ink` (scaled by alpha) into `layer` at (x, y) and label its pixels over 0.5."""
    h, w = ink.shape
    top, left = max(0, -y), max(0, -x)
    bottom, right = min(h, layer.shape[0] - y), min(w, layer.shape[1] - x)
    if bottom <= top or right <= left:
        return
    piece = ink[top:bottom, left:right]
    region = (slice(y + top, y + bottom), slice(x + left, x + right))
    np.maximum(layer[region], piece * alpha, out=layer[region])
    labels[region][piece > 0.5] = label


# ---------------------------------------------------------------------------------------------- sheet


@dataclass
class _Sheet:
    """A flat page before the camera: lit paper with ink, and a label map of every digit and mark."""

    image: np.ndarray
    """(h, w, 3) float32 BGR in [0, 1]."""
    labels: np.ndarray
    """(h, w) uint16: digit i is i + 1, mark j is len(digits) + j + 1, 0 elsewhere."""
    digits: list[int]
    number_of: list[int]
    texts: list[str]
    marks: int


def _fit_camera(
    rng: np.random.Generator,
    style: Style,
    paper: tuple[int, int],
    content: tuple[float, float, float, float],
    frame: tuple[int, int],
    margin: float,
) -> np.ndarray:
    """A homography from paper to frame: a tilted, turned page filling the frame, content inside it."""
    pw, ph = paper
    fw, fh = frame
    ax, ay = (np.deg2rad(rng.uniform(-style.tilt, style.tilt)) for _ in range(2))
    roll = np.deg2rad(rng.uniform(-style.roll, style.roll))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    rotation = rz @ ry @ rx
    focal = CAMERA.focal * max(pw, ph)
    project = np.diag([focal, focal, 1.0]) @ np.column_stack([rotation[:, 0], rotation[:, 1], [0, 0, focal]])
    homography = project @ np.array([[1, 0, -pw / 2], [0, 1, -ph / 2], [0, 0, 1]]) / focal

    def mapped(points: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(
            -1, 2
        )

    x0, y0, x1, y1 = content
    inner = mapped(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    outer = mapped(np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]]))
    outer_size = outer.max(axis=0) - outer.min(axis=0)
    inner_size = inner.max(axis=0) - inner.min(axis=0)
    room = np.array([fw, fh]) * (1 - 2 * margin)
    scale = min(
        _uniform(rng, LAYOUT.fill) * min(fw / outer_size[0], fh / outer_size[1]),
        float(np.min(room / inner_size)),
    )
    low = inner.min(axis=0) * scale
    slack = np.maximum(room - inner_size * scale, 0)
    shift = np.array([fw, fh]) * margin + slack * rng.uniform(0.2, 0.8, 2) - low
    place = np.array([[scale, 0, shift[0]], [0, scale, shift[1]], [0, 0, 1]])
    return place @ homography


def _local_scale(homography: np.ndarray, point: tuple[float, float]) -> float:
    """How many frame pixels one paper pixel becomes near `point`."""
    x, y = point
    square = np.array([[[x, y]], [[x + 1, y]], [[x, y + 1]]], np.float64)
    a, b, c = cv2.perspectiveTransform(square, homography).reshape(3, 2)
    (ux, uy), (vx, vy) = b - a, c - a
    return float(math.sqrt(abs(ux * vy - uy * vx)))


def _paper(rng: np.random.Generator, style: Style, shape: tuple[int, int]) -> np.ndarray:
    """Off-white paper with a faint texture, (h, w, 3) float32."""
    white = _uniform(rng, style.paper_white)
    tint = np.array([white - rng.uniform(0, 0.04), white - rng.uniform(0, 0.015), white], np.float32)
    texture = 1 + _uniform(rng, CAMERA.paper_texture) * _low_frequency(rng, shape, 12)
    grain = 1 + CAMERA.grain * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(tint[None, None, :] * (texture * grain)[:, :, None], 0, 1)


def _rule(
    rng: np.random.Generator,
    paper: np.ndarray,
    rows: list[float],
    columns: list[float],
    height: float,
    margin_x: float | None = None,
) -> None:
    """Print ruled or grid lines on the paper (multiplied in, like printed ink), and maybe a margin line."""
    lines = np.zeros(paper.shape[:2], np.float32)
    h, w = lines.shape
    thickness = 1 if height < 60 or rng.random() < 0.5 else 2
    for y in rows:
        cv2.line(lines, (0, int(y * 16)), (w * 16, int(y * 16)), 1.0, thickness, cv2.LINE_AA, 4)
    for x in columns:
        cv2.line(lines, (int(x * 16), 0), (int(x * 16), h * 16), 1.0, thickness, cv2.LINE_AA, 4)
    blue = rng.random() < 0.7
    colour = np.array([0.85, 0.7, 0.55] if blue else [0.62, 0.62, 0.62], np.float32)
    colour = 1 - (1 - colour) * rng.uniform(0.5, 1.0) * (0.6 if columns else 1.0)
    paper *= 1 - lines[:, :, None] * (1 - colour)
    if margin_x is not None and rng.random() < 0.5:
        margin = np.zeros_like(lines)
        x = int(margin_x * 16)
        cv2.line(margin, (x, 0), (x, h * 16), 1.0, thickness, cv2.LINE_AA, 4)
        paper *= 1 - margin[:, :, None] * (1 - np.array([0.6, 0.6, 0.95], np.float32))


def _draw_mark(rng: np.random.Generator, height: float, stroke: float) -> tuple[np.ndarray, float]:
    """One non-digit mark as an ink image (1 = ink), and how dark it is drawn."""
    size = _uniform(rng, LAYOUT.mark_size) * height
    side = int(size + 2 * stroke + 6)
    canvas = np.zeros((side, side), np.uint8)
    thick = max(1, int(round(stroke)))
    centre = np.array([side / 2, side / 2])
    kind = rng.choice(MARK_KINDS)
    alpha = 1.0
    if kind == "dot":
        cv2.circle(
            canvas, (side // 2, side // 2), max(2, int(stroke * rng.uniform(0.8, 1.6))), 255, -1, cv2.LINE_AA
        )
    elif kind == "dash":
        half = max(size, 0.3 * height) / 2
        tilt = np.deg2rad(rng.uniform(-10, 10))
        offset = half * np.array([np.cos(tilt), np.sin(tilt)])
        start, end = (tuple(int(v) for v in centre - offset), tuple(int(v) for v in centre + offset))
        cv2.line(canvas, start, end, 255, thick, cv2.LINE_AA)
    elif kind == "box":
        half = int(max(size, 0.4 * height) / 2)
        low, high = side // 2 - half, side // 2 + half
        cv2.rectangle(canvas, (low, low), (high, high), 255, thick, cv2.LINE_AA)
    elif kind == "smudge":
        axes = (max(3, int(size / 2)), max(2, int(size * rng.uniform(0.2, 0.45))))
        cv2.ellipse(canvas, (side // 2, side // 2), axes, rng.uniform(0, 180), 0, 360, 255, -1)
        canvas = cv2.GaussianBlur(canvas, (0, 0), max(1.0, size / 8))
        alpha = _uniform(rng, LAYOUT.smudge_strength)
    elif kind == "letters":
        return _draw_letters(rng, height, stroke), 1.0
    elif kind == "line":
        return _draw_line(rng, height, stroke), 1.0
    else:
        count = int(rng.integers(5, 10))
        xs = np.linspace(-size / 2, size / 2, count)
        ys = rng.uniform(-size / 4, size / 4, count)
        curve = _catmull_rom(np.column_stack([xs, ys]), 6) + centre
        cv2.polylines(canvas, [np.round(curve * 8).astype(np.int32)], False, 255, thick, cv2.LINE_AA, 3)
    return canvas.astype(np.float32) / 255.0, alpha


def _draw_letters(rng: np.random.Generator, height: float, stroke: float) -> np.ndarray:
    """Cursive-looking loops, like a hurried word ("ele", "mm"): letter-like, never a digit."""
    loops = int(rng.integers(*LAYOUT.letter_loops))
    x_height = _uniform(rng, LAYOUT.letter_height) * height
    step = x_height * rng.uniform(0.5, 0.8)
    points = []
    for index in range(loops):
        tall = rng.random() < 0.35  # an ascender, as in "l" or "h"
        top = -x_height * (1.9 if tall else 1.0)
        points += [(index * step, 0.0), ((index + 0.7) * step, top), ((index + 0.35) * step, top * 0.9),
                   ((index + 0.55) * step, 0.0)]
    curve = _catmull_rom(np.array(points) + rng.normal(0, 0.05 * x_height, (len(points), 2)), 6)
    return _polyline_canvas([curve], max(1, int(round(stroke))))


def _draw_line(rng: np.random.Generator, height: float, stroke: float) -> np.ndarray:
    """A long, slightly tilted stroke: an underline or a crossing-out."""
    length = _uniform(rng, LAYOUT.line_length) * height
    tilt = np.deg2rad(rng.uniform(-15, 15))
    end = length * np.array([np.cos(tilt), np.sin(tilt)])
    return _polyline_canvas([np.array([[0.0, 0.0], end])], max(1, int(round(stroke))))


def _polyline_canvas(curves: list[np.ndarray], thickness: int) -> np.ndarray:
    """Curves drawn antialiased on a canvas just big enough for them, as a float ink image."""
    every = np.vstack(curves)
    low = every.min(axis=0) - thickness - 2
    width, height = np.ceil(every.max(axis=0) - low + thickness + 2).astype(int)
    canvas = np.zeros((height, width), np.uint8)
    lines = [np.round((curve - low) * 8).astype(np.int32) for curve in curves]
    cv2.polylines(canvas, lines, False, 255, thickness, cv2.LINE_AA, 3)
    return canvas.astype(np.float32) / 255.0


def _render_sheet(
    rng: np.random.Generator,
    glyphs: DigitGlyphs,
    style: Style,
    frame: tuple[int, int],
    sheet_scale: float,
    margin: float,
    draw_marks: bool = True,
    layout: Layout = LAYOUT,
) -> tuple[_Sheet, np.ndarray]:
    """Write a page of numbers (and marks) and choose the camera that sees it; returns (sheet, homography)."""
    fw, fh = frame
    pw = int(fw * sheet_scale * _uniform(rng, layout.paper_size))
    ph = int(fh * sheet_scale * _uniform(rng, layout.paper_size))
    mx, my = _uniform(rng, layout.content_margin) * pw, _uniform(rng, layout.content_margin) * ph
    content = (mx, my, pw - mx, ph - my)
    homography = _fit_camera(rng, style, (pw, ph), content, frame, margin)
    to_paper = 1.0 / _local_scale(homography, (pw / 2, ph / 2))
    shrink = (1 - layout.number_height_jitter) * (1 - layout.digit_height_jitter)
    low_px = max(layout.min_digit_px / shrink, style.digit_height[0] * fh)
    grow = (1 + layout.number_height_jitter) * (1 + layout.digit_height_jitter)
    high_px = max(low_px, min(style.digit_height[1], layout.max_digit_fraction) * fh / grow)
    height = _uniform(rng, (low_px, high_px)) * to_paper
    tallest = height * (1 + layout.number_height_jitter) * (1 + layout.digit_height_jitter)

    paper = _paper(rng, style, (ph, pw))
    first = my + tallest * rng.uniform(1.0, 1.3)
    if style.paper == "ruled":
        spacing = _uniform(rng, layout.ruling) * height
        rulings = list(np.arange(first % spacing, ph, spacing))
        _rule(rng, paper, rulings, [], height, mx * rng.uniform(0.4, 0.8))
        skip = math.ceil(layout.min_line_spacing * tallest / spacing)
        baselines = [y for y in rulings if y >= first][::skip]
        baselines = [y + _uniform(rng, layout.ruled_sink) * height for y in baselines]
    else:
        if style.paper == "grid":
            cell = _uniform(rng, layout.grid_cell) * height
            start = rng.uniform(0, cell)
            _rule(rng, paper, list(np.arange(start, ph, cell)), list(np.arange(start, pw, cell)), height)
        step = max(_uniform(rng, layout.line_spacing) * height, layout.min_line_spacing * tallest)
        baselines = list(np.arange(first, ph - my, step))
    lines = _randint(rng, layout.lines)
    room = ph - my - (baselines[min(lines, len(baselines)) - 1] if baselines else ph)
    if style.paper != "ruled" and room > 0:  # spread a short text down the page a little
        drop = rng.uniform(0, 0.5) * room
        baselines = [y + drop for y in baselines]
    baselines = [y for y in baselines if y <= ph - my][:lines]

    ink = np.zeros((ph, pw), np.float32)
    labels = np.zeros((ph, pw), np.uint16)
    stroke = max(layout.min_stroke_px * to_paper, _uniform(rng, style.stroke) * height)
    slant = _uniform(rng, layout.slant)
    digits: list[int] = []
    number_of: list[int] = []
    texts: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []
    for baseline in baselines:
        x = mx + _uniform(rng, layout.indent) * (pw - 2 * mx)
        slope = rng.uniform(-layout.line_slope, layout.line_slope)
        previous = 0.0
        for _ in range(_randint(rng, layout.numbers_per_line)):
            number_height = height * rng.uniform(
                1 - layout.number_height_jitter, 1 + layout.number_height_jitter
            )
            values = rng.integers(0, 10, _randint(rng, layout.digits_per_number))
            rendered = []
            for value in values:
                digit_height = number_height * rng.uniform(
                    1 - layout.digit_height_jitter, 1 + layout.digit_height_jitter
                )
                glyph = _render_glyph(
                    glyphs.sample(int(value), rng),
                    digit_height,
                    stroke,
                    slant + rng.uniform(-layout.slant_jitter, layout.slant_jitter),
                    rng.uniform(-layout.rotation_jitter, layout.rotation_jitter),
                    _uniform(rng, layout.aspect),
                )
                rendered.append((int(value), glyph, _ink_bbox(glyph)))
            gaps = [
                max(_uniform(rng, layout.digit_gap) * number_height, layout.min_digit_gap_px * to_paper)
                for _ in values[1:]
            ]
            width = sum(box[2] for _, _, box in rendered) + sum(gaps)
            if previous:
                x += _uniform(rng, layout.number_gap) * max(previous, number_height)
            if x + width > pw - mx:
                break
            number = len(texts)
            texts.append("".join(str(value) for value, _, _ in rendered))
            for index, (value, glyph, (gx, gy, gw, gh)) in enumerate(rendered):
                bottom = (
                    baseline + slope * (x - mx) + rng.uniform(-1, 1) * layout.baseline_jitter * number_height
                )
                left, top = int(round(x)), int(round(bottom - gh))
                pressure = _uniform(rng, layout.pressure)
                _paste(ink, labels, glyph, left - gx, top - gy, len(digits) + 1, pressure)
                digits.append(value)
                number_of.append(number)
                boxes.append((left, top, left + gw, top + gh))
                x += gw + (gaps[index] if index < len(gaps) else 0)
            previous = number_height

    if draw_marks:
        marks = _place_marks(rng, style, ink, labels, boxes, content, height, stroke, len(digits))
    else:  # draw them where nothing sees them, so the rest of the page comes out the same
        _place_marks(rng, style, ink.copy(), labels.copy(), boxes, content, height, stroke, len(digits))
        marks = 0
    pen = np.array(PENS[style.pens[rng.integers(len(style.pens))]], np.float32)
    strength = _uniform(rng, style.ink_strength)
    texture = 1 - CAMERA.ink_texture * np.abs(_low_frequency(rng, (ph, pw), 40))
    alpha = (ink * texture * strength)[:, :, None]
    image = paper * (1 - alpha * (1 - pen))
    sheet = _Sheet(image, labels, digits, number_of, texts, marks)
    return sheet, homography


def _place_marks(
    rng: np.random.Generator,
    style: Style,
    ink: np.ndarray,
    labels: np.ndarray,
    boxes: list,
    content: tuple,
    height: float,
    stroke: float,
    first_label: int,
) -> int:
    """Scatter non-digit marks on blank paper well clear of the digits; returns how many were placed."""
    wanted = _randint(rng, style.marks)
    if not wanted:
        return 0
    taken = np.zeros(ink.shape, np.uint8)
    clear = LAYOUT.mark_clearance * height
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(taken, (int(x0 - clear), int(y0 - clear)), (int(x1 + clear), int(y1 + clear)), 1, -1)
    integral = cv2.integral(taken)
    cx0, cy0, cx1, cy1 = (int(v) for v in content)
    placed = 0
    for _ in range(LAYOUT.mark_tries):
        if placed == wanted:
            break
        mark, alpha = _draw_mark(rng, height, stroke)
        h, w = mark.shape
        if cx1 - cx0 <= w or cy1 - cy0 <= h:
            continue
        x, y = int(rng.integers(cx0, cx1 - w)), int(rng.integers(cy0, cy1 - h))
        if integral[y + h, x + w] - integral[y, x + w] - integral[y + h, x] + integral[y, x]:
            continue
        _paste(ink, labels, mark, x, y, first_label + placed + 1, alpha)
        pad = int(clear)
        cv2.rectangle(taken, (x - pad, y - pad), (x + w + pad, y + h + pad), 1, -1)
        integral = cv2.integral(taken)
        placed += 1
    return placed


# ---------------------------------------------------------------------------------------------- camera


def _desk(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A dim, uneven desk or wall behind the paper, (h, w, 3) float32."""
    width, height = size
    colour = np.array([_uniform(rng, bounds) for bounds in CAMERA.desk_bgr], np.float32)
    shade = (
        1 + 0.25 * _low_frequency(rng, (height, width), 4) + 0.03 * _low_frequency(rng, (height, width), 60)
    )
    return np.clip(colour[None, None, :] * shade[:, :, None], 0, 1)


def _light(rng: np.random.Generator, style: Style, size: tuple[int, int]) -> np.ndarray:
    """Light falling on the scene: a gradient, a vignette and maybe a soft shadow, (h, w) float32."""
    width, height = size
    small = (max(8, width // 8), max(8, height // 8))
    ys, xs = np.mgrid[0 : small[1], 0 : small[0]].astype(np.float32)
    xs, ys = xs / small[0] - 0.5, ys / small[1] - 0.5
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(direction) * xs + np.sin(direction) * ys
    light = 1 - _uniform(rng, style.light_gradient) * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light *= 1 - _uniform(rng, CAMERA.vignette) * (xs**2 + ys**2) * 2
    darkness = _uniform(rng, style.shadow)
    if darkness > 0:
        blob = np.zeros(small[::-1], np.float32)
        centre = (int(rng.uniform(0.2, 0.8) * small[0]), int(rng.uniform(0.2, 0.8) * small[1]))
        axes = (int(rng.uniform(0.2, 0.5) * small[0]), int(rng.uniform(0.15, 0.4) * small[1]))
        cv2.ellipse(blob, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 0.06 * small[0])
        light *= 1 - darkness * blob
    return cv2.resize(light, size, interpolation=cv2.INTER_CUBIC)


@dataclass(frozen=True)
class _Shot:
    """Camera settings drawn once per photo or video: lens blur, contrast, white balance, noise, JPEG."""

    blur: float
    contrast: float
    balance: np.ndarray
    noise: float
    quality: int

    @classmethod
    def draw(cls, rng: np.random.Generator, style: Style) -> _Shot:
        balance = 1 + rng.uniform(-CAMERA.white_balance, CAMERA.white_balance, 3).astype(np.float32)
        return cls(
            _uniform(rng, style.blur),
            _uniform(rng, style.contrast),
            balance,
            _uniform(rng, style.noise) / 255.0,
            _randint(rng, style.jpeg),
        )


def _sensor(
    rng: np.random.Generator, shot: _Shot, image: np.ndarray, motion: np.ndarray | None = None
) -> np.ndarray:
    """What the camera makes of the scene: blur, contrast, white balance, fresh noise, JPEG; uint8 BGR."""
    if motion is not None:
        image = cv2.filter2D(image, -1, motion)
    image = cv2.GaussianBlur(image, (0, 0), shot.blur) if shot.blur > 0.1 else image
    image = (0.5 * (1 - shot.contrast) + image * shot.contrast) * shot.balance
    image = image + shot.noise * rng.standard_normal(image.shape, dtype=np.float32)
    photo = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, shot.quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else photo


def _label_boxes(labels: np.ndarray, count: int) -> list[Box | None]:
    """The bounding box of each label 1..count in a label map (None where it does not appear)."""
    ys, xs = np.nonzero(labels)
    values = labels[ys, xs]
    order = np.argsort(values, kind="stable")
    values, xs, ys = values[order], xs[order], ys[order]
    boxes: list[Box | None] = [None] * count
    if values.size == 0:
        return boxes
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    lows_x, highs_x = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
    lows_y, highs_y = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    for value, x0, x1, y0, y1 in zip(values[starts], lows_x, highs_x, lows_y, highs_y):
        if 1 <= value <= count:
            boxes[value - 1] = (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))
    return boxes


def _union(boxes: list[Box]) -> Box:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def _photograph(
    rng: np.random.Generator,
    sheet: _Sheet,
    homography: np.ndarray,
    shot: _Shot,
    size: tuple[int, int],
    desk: np.ndarray,
    light: np.ndarray,
    condition: str,
    exposure: float = 1.0,
    motion: np.ndarray | None = None,
) -> SyntheticPage:
    """View the sheet through `homography`: the photo and its truth, read from the warped label map."""
    width, height = size
    scale = _local_scale(homography, (sheet.image.shape[1] / 2, sheet.image.shape[0] / 2))
    source = sheet.image
    if scale < 0.9:  # smooth before shrinking, as a lens would, so thin strokes do not alias
        source = cv2.GaussianBlur(source, (0, 0), 0.45 * (1 / scale - 1))
    flat = cv2.warpPerspective(source, homography, size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(
        np.ones(source.shape[:2], np.float32), homography, size, flags=cv2.INTER_LINEAR
    )
    labels = cv2.warpPerspective(sheet.labels, homography, size, flags=cv2.INTER_NEAREST)
    offset = np.float32([[1, 0, 0.01 * width], [0, 1, 0.015 * height]])
    cast = cv2.GaussianBlur(cv2.warpAffine(cover, offset, size), (0, 0), 0.01 * width + 1)
    backdrop = desk * (1 - _uniform(rng, CAMERA.paper_shadow) * cast)[:, :, None]
    scene = backdrop * (1 - cover[:, :, None]) + flat * cover[:, :, None]
    image = _sensor(rng, shot, scene * (light * exposure)[:, :, None], motion)

    count = len(sheet.digits)
    boxes = _label_boxes(labels, count + sheet.marks)
    cut = [_touches_edge(box, size) for box in boxes]
    broken = {sheet.number_of[i] for i in range(count) if boxes[i] is None or cut[i]}
    renumber: dict[int, int] = {}
    numbers: list[TruthNumber] = []
    for number, text in enumerate(sheet.texts):
        members = [boxes[i] for i in range(count) if sheet.number_of[i] == number]
        if number not in broken and members:
            renumber[number] = len(numbers)
            numbers.append(TruthNumber(text, _union(members)))
    digits = [
        TruthDigit(box, sheet.digits[i], renumber.get(sheet.number_of[i], -1), i)
        for i, box in enumerate(boxes[:count])
        if box is not None and not cut[i]
    ]
    marks = [box for box, edge in zip(boxes[count:], cut[count:]) if box is not None and not edge]
    ignored = [box for box, edge in zip(boxes, cut) if box is not None and edge]
    return SyntheticPage(image, digits, numbers, marks, condition, ignored)


def _touches_edge(box: Box | None, size: tuple[int, int]) -> bool:
    if box is None:
        return False
    x, y, w, h = box
    return x <= 0 or y <= 0 or x + w >= size[0] or y + h >= size[1]


# ---------------------------------------------------------------------------------------------- public


def make_page(
    seed: int,
    glyphs: DigitGlyphs,
    condition: str = "mixed",
    size: tuple[int, int] = (1280, 720),
    without_marks: bool = False,
    close_up: bool = False,
    turn: float = 0.0,
) -> SyntheticPage:
    """A synthetic photo (width, height = `size`) of a handwritten page under `condition`, with its truth.

    `without_marks` gives the same page with its non-digit marks left off, to compare reading with and
    without them. `close_up` writes one big number instead (`CLOSE_UP_LAYOUT`). `turn` (degrees) turns the
    page in its plane by up to that much either way instead of the condition's `Style.roll`, as a sheet held
    at an angle (0: the condition's own, and the same page as without it).
    """
    rng = np.random.default_rng(seed)
    style, layout = style_for(condition, rng), LAYOUT
    if turn:
        style = dataclasses.replace(style, roll=turn)
    if close_up:
        style, layout = _close_up(style)
    sheet, homography = _render_sheet(rng, glyphs, style, size, 1.0, LAYOUT.frame_margin, not without_marks, layout)
    while close_up and not sheet.digits:  # the number drawn was too wide for the sheet: draw another
        sheet, homography = _render_sheet(rng, glyphs, style, size, 1.0, LAYOUT.frame_margin, True, layout)
    desk, light, shot = _desk(rng, size), _light(rng, style, size), _Shot.draw(rng, style)
    return _photograph(rng, sheet, homography, shot, size, desk, light, condition)


def _smooth_walk(rng: np.random.Generator, frames: int, sigma: float) -> np.ndarray:
    """A smooth random series of `frames` values, scaled to a peak of about 1."""
    radius = int(3 * sigma) + 1
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma, 1e-3)) ** 2)
    walk = np.convolve(rng.standard_normal(frames + 2 * radius), kernel / kernel.sum(), mode="valid")
    return walk / max(float(np.abs(walk).max()), 1e-6)


def make_page_mosaic(seed: int, glyphs: DigitGlyphs, side: int) -> SyntheticPage:
    """`side` x `side` synthetic 1280x720 pages (seeds `seed`, `seed` + 1, ...; the conditions in turn) in one photo,
    with their truth: a large photo whose digits are `side` times smaller against its height than a page's
    (4-14 %), as in a phone's photo of a whole sheet."""
    pages = [make_page(seed + i, glyphs, CONDITIONS[(seed + i) % len(CONDITIONS)]) for i in range(side * side)]
    height, width = pages[0].image.shape[:2]
    image = np.zeros((side * height, side * width, 3), np.uint8)
    digits: list[TruthDigit] = []
    numbers: list[TruthNumber] = []
    marks: list[Box] = []
    ignored: list[Box] = []
    for i, page in enumerate(pages):
        dy, dx = (i // side) * height, (i % side) * width
        image[dy : dy + height, dx : dx + width] = page.image

        def moved(box: Box, dx: int = dx, dy: int = dy) -> Box:
            return (box[0] + dx, box[1] + dy, box[2], box[3])

        digits += [dataclasses.replace(d, box=moved(d.box), number=d.number + len(numbers)) for d in page.digits]
        numbers += [dataclasses.replace(number, box=moved(number.box)) for number in page.numbers]
        marks += [moved(box) for box in page.marks]
        ignored += [moved(box) for box in page.ignored]
    return SyntheticPage(image, digits, numbers, marks, "mosaic", ignored)


def make_video(
    seed: int,
    glyphs: DigitGlyphs,
    frames: int = 60,
    size: tuple[int, int] = (640, 480),
    condition: str = "mixed",
    close_up: bool = False,
) -> SyntheticVideo:
    """A hand-held video of one page: slow drift, shake, exposure changes and some motion blur, with truth.
    `close_up` writes one big number instead of a page (`CLOSE_UP_LAYOUT`)."""
    rng = np.random.default_rng(seed)
    style, layout = style_for(condition, rng), LAYOUT
    if close_up:
        style, layout = _close_up(style)
    sheet, base = _render_sheet(rng, glyphs, style, size, HANDHELD.sheet_scale, HANDHELD.frame_margin, True, layout)
    while close_up and not sheet.digits:  # the number drawn was too wide for the sheet: draw another
        sheet, base = _render_sheet(rng, glyphs, style, size, HANDHELD.sheet_scale, HANDHELD.frame_margin, True, layout)
    desk, light, shot = _desk(rng, size), _light(rng, style, size), _Shot.draw(rng, style)
    width, height = size

    def walks(sigma: float) -> np.ndarray:
        return np.column_stack([_smooth_walk(rng, frames, sigma) for _ in range(2)])

    shift = (
        HANDHELD.drift_shift * walks(HANDHELD.drift_smoothness)
        + HANDHELD.shake_shift * walks(HANDHELD.shake_smoothness)
    ) * width
    angle = np.deg2rad(HANDHELD.drift_rotation) * _smooth_walk(rng, frames, HANDHELD.drift_smoothness)
    zoom = 1 + HANDHELD.drift_scale * _smooth_walk(rng, frames, HANDHELD.drift_smoothness)
    exposure = 1 + HANDHELD.exposure * _smooth_walk(rng, frames, HANDHELD.drift_smoothness)
    centre = np.array([width / 2, height / 2])
    truth = []
    for index in range(frames):
        cos, sin = zoom[index] * np.cos(angle[index]), zoom[index] * np.sin(angle[index])
        linear = np.array([[cos, -sin], [sin, cos]])
        move = centre + shift[index] - linear @ centre
        drift = np.array([[cos, -sin, move[0]], [sin, cos, move[1]], [0, 0, 1]])
        motion = None
        if rng.random() < HANDHELD.motion_blur_probability:
            motion = _motion_kernel(rng, shift[index] - shift[index - 1] if index else rng.standard_normal(2))
        truth.append(
            _photograph(
                rng, sheet, drift @ base, shot, size, desk, light, condition, float(exposure[index]), motion
            )
        )
    return SyntheticVideo([page.image for page in truth], truth, condition)


def _motion_kernel(rng: np.random.Generator, direction: np.ndarray) -> np.ndarray:
    """A line kernel along `direction`, a few pixels long, summing to 1."""
    length = _randint(rng, HANDHELD.motion_blur_px)
    kernel = np.zeros((length, length), np.float32)
    angle = math.atan2(float(direction[1]), float(direction[0]))
    half = (length - 1) / 2
    start = (int(round(half - half * math.cos(angle))), int(round(half - half * math.sin(angle))))
    end = (int(round(half + half * math.cos(angle))), int(round(half + half * math.sin(angle))))
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA)
    return kernel / kernel.sum()


@dataclass(frozen=True)
class TouchingStyle:
    """Ranges of a touching-pair photo; heights in pixels, the rest in units of the digit height."""

    digit_px: Range = (28.0, 70.0)
    overlap: Range = (0.0, 0.12)
    """How far the right digit is pushed into the left one after their strokes first touch."""
    baseline_jitter: float = 0.06
    neighbour_gap: Range = (0.3, 0.6)
    """Gap to the untouched digits on either side, which give the line its digit height."""


TOUCHING = TouchingStyle()


@dataclass
class TouchingPair:
    """A photo of a line of digits where two neighbours touch; `page.digits[pair[0]]` and `[pair[1]]` touch."""

    page: SyntheticPage
    pair: tuple[int, int]


def _touching_offset(left: np.ndarray, right: np.ndarray, dy: int) -> int:
    """The largest x offset of `right` from `left` (its top `dy` px lower) at which their inks touch."""
    left_mask, right_mask = (left > 0.5).astype(np.uint8), right > 0.5
    first_row = min(0, dy)
    rows = max(left.shape[0], dy + right.shape[0]) - first_row
    canvas = np.zeros((rows, left.shape[1] + right.shape[1]), np.uint8)
    canvas[-first_row : -first_row + left.shape[0], : left.shape[1]] = left_mask
    top = dy - first_row
    for offset in range(left.shape[1], 0, -1):
        if (canvas[top : top + right.shape[0], offset : offset + right.shape[1]] & right_mask).any():
            return offset
    return 0


def make_touching_pair(seed: int, glyphs: DigitGlyphs, size: tuple[int, int] = (640, 240)) -> TouchingPair:
    """A photo of four digits on a line, the middle two written so that their strokes touch or overlap."""
    rng = np.random.default_rng(seed)
    width, height = size
    digit_px = _uniform(rng, TOUCHING.digit_px)
    stroke = max(LAYOUT.min_stroke_px, _uniform(rng, BASE_STYLE.stroke) * digit_px)
    slant = _uniform(rng, LAYOUT.slant)
    values = [int(v) for v in rng.integers(0, 10, 4)]
    inks = [
        _render_glyph(glyphs.sample(value, rng), digit_px * rng.uniform(0.96, 1.04), stroke,
                      slant + rng.uniform(-LAYOUT.slant_jitter, LAYOUT.slant_jitter),
                      rng.uniform(-LAYOUT.rotation_jitter, LAYOUT.rotation_jitter), _uniform(rng, LAYOUT.aspect))
        for value in values
    ]
    ink = np.zeros((height, width), np.float32)
    labels = np.zeros((height, width), np.uint16)
    baseline = height / 2 + digit_px / 2
    placed: list[tuple[np.ndarray, int, int]] = []  # (tight ink, left, top)
    x = 0.15 * width
    for index, glyph in enumerate(inks):
        gx, gy, gw, gh = _ink_bbox(glyph)
        tight = glyph[gy : gy + gh, gx : gx + gw]
        top = int(round(baseline - gh + rng.uniform(-1, 1) * TOUCHING.baseline_jitter * digit_px))
        if index == 2:  # slide the third digit left until it touches the second, then a little further
            previous, previous_left, previous_top = placed[-1]
            offset = _touching_offset(previous, tight, top - previous_top)
            x = previous_left + offset - _uniform(rng, TOUCHING.overlap) * digit_px
        elif index:
            x += _uniform(rng, TOUCHING.neighbour_gap) * digit_px
        left = int(round(x))
        _paste(ink, labels, tight, left, top, index + 1, _uniform(rng, LAYOUT.pressure))
        placed.append((tight, left, top))
        x = left + gw
    paper = _paper(rng, BASE_STYLE, (height, width))
    pen = np.array(PENS[BASE_STYLE.pens[rng.integers(len(BASE_STYLE.pens))]], np.float32)
    alpha = (ink * _uniform(rng, BASE_STYLE.ink_strength))[:, :, None]
    scene = paper * (1 - alpha * (1 - pen)) * _light(rng, BASE_STYLE, size)[:, :, None]
    image = _sensor(rng, _Shot.draw(rng, BASE_STYLE), scene)
    boxes = _label_boxes(labels, len(values))
    digits = [TruthDigit(box, value, 0, index) for index, (box, value) in enumerate(zip(boxes, values)) if box]
    text = "".join(str(v) for v in values)
    page = SyntheticPage(image, digits, [TruthNumber(text, _union([d.box for d in digits]))], [], "touching")
    return TouchingPair(page, (1, 2))


def write_video(video: SyntheticVideo, path: str | Path, fps: float | None = None) -> Path:
    """Write the frames with mp4v, or as MJPG .avi where mp4v cannot be opened; returns the path written."""
    path = Path(path)
    height, width = video.frames[0].shape[:2]
    fps = fps or video.fps
    for target, codec in ((path, "mp4v"), (path.with_suffix(".avi"), "MJPG")):
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if writer.isOpened():
            for frame in video.frames:
                writer.write(frame)
            writer.release()
            return target
        writer.release()
    raise OSError(f"{path}: OpenCV can open neither an mp4v nor an MJPG video writer here")


def draw_sample_page(path: str | Path, seed: int = SAMPLE_SEED) -> SyntheticPage:
    """Write the sample photo of digits drawn by code (no dataset images) to `path`; returns its truth."""
    page = make_page(seed, StrokeGlyphs(), "ruled", (1280, 720))
    if not cv2.imwrite(str(path), page.image):
        raise OSError(f"{path}: could not write the image (check the folder exists and the extension)")
    return page
