"""Seeded augmentation that makes clean digits look like camera crops of paper, and non-digit marks.

Every sample is drawn at camera size, spoilt the way paper under a webcam spoils it,
binarised and passed through the shared normaliser, so the model trains on exactly what
the reader will feed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitrec.binarise import binarise_ink, drop_specks
from digitrec.normalise import MNIST_SIZE, EmptyCropError, normalise_mask_to_mnist

NOT_A_DIGIT = 10
"""Label of the eleventh class: marks on paper that are not digits."""


@dataclass(frozen=True)
class CameraAugmentation:
    """Ranges of every distortion, named once. Angles in degrees, sizes in pixels of the camera crop."""

    digit_height: tuple[float, float] = (16.0, 64.0)
    rotation: float = 14.0
    shear: float = 0.3
    scale_x: tuple[float, float] = (0.75, 1.2)
    stroke_change: tuple[float, float] = (-0.35, 1.3)
    """Change of stroke width relative to the digit's: thin pen to thick marker."""
    blur_sigma: tuple[float, float] = (0.0, 1.6)
    noise_sigma: tuple[float, float] = (0.0, 0.05)
    contrast: tuple[float, float] = (0.3, 1.0)
    light_gradient: float = 0.35
    broken_stroke_probability: float = 0.2
    neighbour_probability: float = 0.12
    ruled_line_probability: float = 0.2
    jpeg_probability: float = 0.3
    jpeg_quality: tuple[int, int] = (35, 90)


DEFAULT_AUGMENTATION = CameraAugmentation()


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _affine_to_canvas(ink: np.ndarray, rng: np.random.Generator, config: CameraAugmentation, height: float):
    """Scale a 28x28 ink image to camera size with rotation, shear and aspect change."""
    size = height * MNIST_SIZE / 20.0
    angle = np.deg2rad(rng.uniform(-config.rotation, config.rotation))
    shear = rng.uniform(-config.shear, config.shear)
    scale = size / MNIST_SIZE
    stretch = np.array([[scale * _uniform(rng, config.scale_x), 0], [0, scale]])
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear_matrix = np.array([[1, shear], [0, 1]])
    linear = rotate @ shear_matrix @ stretch
    corners = np.array([[0, 0], [MNIST_SIZE, 0], [0, MNIST_SIZE], [MNIST_SIZE, MNIST_SIZE]], float)
    mapped = corners @ linear.T
    margin = int(size * 0.25) + 4
    low = mapped.min(axis=0)
    out_w, out_h = (np.ceil(mapped.max(axis=0) - low).astype(int) + 2 * margin).tolist()
    offset = margin - low
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float32)
    return cv2.warpAffine(ink, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderValue=0), size


def _change_stroke(ink: np.ndarray, rng: np.random.Generator, config: CameraAugmentation, size: float):
    change = _uniform(rng, config.stroke_change)
    radius = int(round(abs(change) * size / MNIST_SIZE))
    if radius == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(ink, kernel) if change > 0 else cv2.erode(ink, kernel)


def _break_strokes(ink: np.ndarray, rng: np.random.Generator, size: float):
    """Cut one or two thin gaps across the strokes, as a pen skipping on paper does."""
    height, width = ink.shape
    for _ in range(int(rng.integers(1, 3))):
        centre = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height)
        angle = rng.uniform(0, np.pi)
        half = size * 0.2
        start = (int(centre[0] - half * np.cos(angle)), int(centre[1] - half * np.sin(angle)))
        end = (int(centre[0] + half * np.cos(angle)), int(centre[1] + half * np.sin(angle)))
        cv2.line(ink, start, end, 0.0, max(1, int(size * 0.04)))
    return ink


def _add_ruled_line(ink: np.ndarray, rng: np.random.Generator, size: float):
    """Leave a stub of a ruled line under or through the digit, as imperfect line removal does."""
    height, width = ink.shape
    y = int(rng.uniform(0.55, 0.95) * height)
    x0 = int(rng.uniform(0.0, 0.4) * width)
    x1 = int(rng.uniform(0.6, 1.0) * width)
    cv2.line(ink, (x0, y), (x1, y), float(rng.uniform(0.4, 1.0)), max(1, int(size * 0.03)))
    return ink


def _add_neighbour(ink: np.ndarray, neighbour: np.ndarray, rng: np.random.Generator):
    """Paste a sliver of another digit at a side, as a crop that reached into its neighbour."""
    height, width = ink.shape
    other = cv2.resize(neighbour, (width, height), interpolation=cv2.INTER_LINEAR)
    sliver = max(1, int(width * rng.uniform(0.08, 0.2)))
    if rng.random() < 0.5:
        ink[:, :sliver] = np.maximum(ink[:, :sliver], other[:, width - sliver :])
    else:
        ink[:, width - sliver :] = np.maximum(ink[:, width - sliver :], other[:, :sliver])
    return ink


def photograph_ink(ink: np.ndarray, rng: np.random.Generator, config: CameraAugmentation) -> np.ndarray:
    """Put an ink image (1 = ink) on lit, blurred, noisy paper as a camera would, then binarise it.

    Returns the uint8 mask (1 = ink) that the reader's thresholding gives for that photograph.
    """
    height, width = ink.shape
    contrast = _uniform(rng, config.contrast)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xs / max(width, 1) + np.sin(direction) * ys / max(height, 1))
    light = 1.0 - config.light_gradient * rng.random() * (ramp - ramp.min())
    paper = light * (1.0 - contrast * np.clip(ink, 0, 1))
    sigma = _uniform(rng, config.blur_sigma)
    if sigma > 0.3:
        paper = cv2.GaussianBlur(paper, (0, 0), sigma)
    paper = paper + _uniform(rng, config.noise_sigma) * rng.standard_normal(paper.shape, dtype=np.float32)
    photo = np.clip(paper * 255, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_probability:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        _, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
        photo = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return drop_specks(binarise_ink(photo, paper_kernel=(max(height, width) // 2) | 1))


def camera_digit(
    digit: np.ndarray,
    rng: np.random.Generator,
    config: CameraAugmentation = DEFAULT_AUGMENTATION,
    neighbour: np.ndarray | None = None,
) -> np.ndarray:
    """One MNIST-style digit (28x28, 1 = ink) as the reader would see it after a camera: 28x28 float32."""
    height = _uniform(rng, config.digit_height)
    ink, size = _affine_to_canvas(digit.astype(np.float32), rng, config, height)
    ink = _change_stroke(ink, rng, config, size)
    if rng.random() < config.broken_stroke_probability:
        ink = _break_strokes(ink, rng, size)
    if rng.random() < config.ruled_line_probability:
        ink = _add_ruled_line(ink, rng, size)
    if neighbour is not None and rng.random() < config.neighbour_probability:
        ink = _add_neighbour(ink, neighbour.astype(np.float32), rng)
    mask = photograph_ink(ink, rng, config)
    try:
        return normalise_mask_to_mnist(mask)
    except EmptyCropError:
        # A faint, eroded digit can vanish under the threshold; fall back to its clean ink.
        return normalise_mask_to_mnist(ink > 0.5)


def camera_digits(images: np.ndarray, seed: int, config: CameraAugmentation = DEFAULT_AUGMENTATION) -> np.ndarray:
    """Camera-style versions of (N, 28, 28) digits in [0, 1]; the same seed gives the same batch."""
    rng = np.random.default_rng(seed)
    out = np.zeros(images.shape, np.float32)
    neighbours = rng.permutation(len(images))
    for index, image in enumerate(images):
        out[index] = camera_digit(image, rng, config, neighbour=images[neighbours[index]])
    return out


def _draw_not_a_digit(rng: np.random.Generator, digits: np.ndarray, size: int) -> np.ndarray:
    """Draw one mark that is not a digit on a size x size ink canvas (1 = ink)."""
    canvas = np.zeros((size, size), np.float32)
    thickness = max(1, int(size * rng.uniform(0.04, 0.14)))
    centre = (size // 2, size // 2)
    kind = rng.choice(["dot", "dash", "cross", "box", "scribble", "smudge", "ruled", "fragment", "letter_arc"])
    if kind == "dot":
        radius = max(1, int(size * rng.uniform(0.08, 0.4)))
        axes = (radius, max(1, int(radius * rng.uniform(0.5, 1.0))))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    elif kind == "dash":
        # Horizontal-ish only: a vertical stroke is a '1', and telling the two apart is the
        # segmenter's job (it knows the line's digit height).
        angle = np.deg2rad(rng.uniform(-35, 35))
        half = size * rng.uniform(0.2, 0.45)
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        cv2.line(canvas, (int(centre[0] - dx), int(centre[1] - dy)), (int(centre[0] + dx), int(centre[1] + dy)), 1.0, thickness)
    elif kind == "cross":
        half = int(size * rng.uniform(0.2, 0.4))
        tilt = rng.random() < 0.5
        for sign in (-1, 1):
            if tilt:
                cv2.line(canvas, (centre[0] - half, centre[1] - sign * half), (centre[0] + half, centre[1] + sign * half), 1.0, thickness)
            else:
                start = (centre[0] - half, centre[1]) if sign < 0 else (centre[0], centre[1] - half)
                end = (centre[0] + half, centre[1]) if sign < 0 else (centre[0], centre[1] + half)
                cv2.line(canvas, start, end, 1.0, thickness)
    elif kind == "box":
        half_w, half_h = int(size * rng.uniform(0.25, 0.42)), int(size * rng.uniform(0.25, 0.42))
        cv2.rectangle(canvas, (centre[0] - half_w, centre[1] - half_h), (centre[0] + half_w, centre[1] + half_h), 1.0, thickness)
        if rng.random() < 0.4:  # a ticked checkbox
            cv2.line(canvas, (centre[0] - half_w // 2, centre[1]), (centre[0], centre[1] + half_h // 2), 1.0, thickness)
            cv2.line(canvas, (centre[0], centre[1] + half_h // 2), (centre[0] + half_w, centre[1] - half_h), 1.0, thickness)
    elif kind == "scribble":
        points = rng.uniform(0.15, 0.85, (int(rng.integers(5, 12)), 2)) * size
        cv2.polylines(canvas, [points.astype(np.int32)], False, 1.0, thickness)
    elif kind == "smudge":
        blob = (rng.random((6, 6)) > 0.45).astype(np.float32)
        blob = cv2.resize(blob, (size, size), interpolation=cv2.INTER_CUBIC)
        canvas = (cv2.GaussianBlur(blob, (0, 0), size * 0.05) > 0.5).astype(np.float32)
    elif kind == "ruled":
        for _ in range(int(rng.integers(1, 3))):
            y = int(rng.uniform(0.3, 0.7) * size)
            cv2.line(canvas, (0, y), (size - 1, y + int(rng.integers(-2, 3))), 1.0, max(1, thickness // 2))
        if rng.random() < 0.5:  # a stub of the digit above or below left on the line
            x = int(rng.uniform(0.2, 0.8) * size)
            cv2.line(canvas, (x, y), (x + int(rng.integers(-3, 4)), y - int(size * rng.uniform(0.05, 0.12))), 1.0, thickness)
    elif kind == "fragment":
        # A small piece of a real digit, such as a speck left when a stroke broke off.
        digit = cv2.resize(digits[int(rng.integers(len(digits)))], (size, size), interpolation=cv2.INTER_LINEAR)
        window = int(size * rng.uniform(0.18, 0.3))
        ys, xs = np.nonzero(digit > 0.5)
        if len(ys):
            pick = int(rng.integers(len(ys)))
            y0, x0 = max(0, ys[pick] - window // 2), max(0, xs[pick] - window // 2)
            canvas[y0 : y0 + window, x0 : x0 + window] = digit[y0 : y0 + window, x0 : x0 + window]
        else:
            cv2.circle(canvas, centre, thickness, 1.0, -1)
    else:  # an arc such as a 'c' or a bracket
        radius = int(size * rng.uniform(0.2, 0.4))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(canvas, centre, (radius, radius), 0, start, start + float(rng.uniform(90, 200)), 1.0, thickness)
    return canvas


def not_a_digit_marks(count: int, digits: np.ndarray, seed: int,
                      config: CameraAugmentation = DEFAULT_AUGMENTATION) -> np.ndarray:
    """(count, 28, 28) float32 marks that are not digits, photographed and normalised like digits."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, MNIST_SIZE, MNIST_SIZE), np.float32)
    filled = 0
    while filled < count:
        size = int(rng.uniform(config.digit_height[0], config.digit_height[1]))
        canvas = _draw_not_a_digit(rng, digits, size)
        if not canvas.any():
            continue
        mask = photograph_ink(np.pad(canvas, size // 4), rng, config)
        try:
            out[filled] = normalise_mask_to_mnist(mask)
        except EmptyCropError:
            continue
        filled += 1
    return out


@dataclass(frozen=True)
class OneFlags:
    """The flag many hands write on a '1' (a short up-stroke at its top, left of the stem), which MNIST
    and USPS rarely show."""

    angle: tuple[float, float] = (25.0, 50.0)
    """Degrees between the flag and the stem, on the stem's left..."""
    length: tuple[float, float] = (0.2, 0.35)
    """...and its length as a fraction of the '1''s height."""
    max_slant: float = 0.26
    """A '1' whose stem leans more than this (the sine, about 15 degrees) is left alone: a flag on a
    slanted stem makes a '7'."""
    draw_scale: int = 8
    """The flag is drawn at this multiple of 28 px with sub-pixel ends, then shrunk."""


def flag_ones(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
              config: OneFlags = OneFlags()) -> tuple[np.ndarray, int]:
    """A copy of (N, 28, 28) float digits in [0, 1] with a flag drawn on about `fraction` of the
    near-upright '1's; returns it and how many were flagged.

    The flag leaves the top of the stem at an acute angle to the stem's own direction (its principal
    axis), so it follows the '1''s slant rather than the page's."""
    rng = np.random.default_rng(seed)
    out = images.copy()
    ones = np.flatnonzero(labels == 1)
    flagged = 0
    for index in ones[rng.random(len(ones)) < fraction]:
        image = out[index]
        ink = image > 0.4
        rows = np.flatnonzero(ink.any(axis=1))
        if len(rows) < 8:
            continue
        top, height = rows[0], rows[-1] - rows[0] + 1
        top_column = float(np.flatnonzero(ink[top]).mean())
        thickness = int(np.clip(round(ink.sum() / height), 1, 4))
        ys, xs = np.nonzero(ink)
        centred = np.stack([xs - xs.mean(), ys - ys.mean()])
        _, axes = np.linalg.eigh(centred @ centred.T)
        down = axes[:, -1] * (1 if axes[1, -1] > 0 else -1)
        if abs(down[0]) > config.max_slant:
            continue
        angle = np.deg2rad(rng.uniform(*config.angle))
        flag = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ down
        length = rng.uniform(*config.length) * height
        scale = config.draw_scale
        canvas = np.zeros((MNIST_SIZE * scale, MNIST_SIZE * scale), np.uint8)
        start = (int(top_column * scale + scale / 2), int(top * scale + scale / 2))
        end = (int((top_column + length * flag[0]) * scale + scale / 2), int((top + length * flag[1]) * scale + scale / 2))
        cv2.line(canvas, start, end, 255, thickness * scale, cv2.LINE_AA)
        drawn = cv2.resize(canvas, (MNIST_SIZE, MNIST_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
        out[index] = np.maximum(image, drawn / 255.0 * image.max())
        flagged += 1
    return out, flagged


HERSHEY_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                 cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
                 cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
"""OpenCV's own fonts, so that printed digits are drawn the same on every machine with no font files."""


@dataclass(frozen=True)
class PrintedDigits:
    """Printed digits: a '1' with a flag and a foot, a narrow '0', which handwriting rarely shows."""

    italic: float = 0.3
    """Share drawn in the italic form of their font..."""
    height: tuple[float, float] = (24.0, 80.0)
    """...at a height in pixels from this range..."""
    stroke: float = 7.0
    """...with strokes from 1 px up to the height over this thick..."""
    turn_degrees: float = 6.0
    shear: float = 0.15
    squeeze: tuple[float, float] = (0.8, 1.2)
    """...turned, sheared and squeezed as a page held to a camera gives..."""
    threshold: tuple[float, float] = (90.0, 170.0)
    """...and cut from their antialiased edges at a grey level from this range."""


PRINTED_NON_DIGITS = "ACEFHKLMNPRUVWXYcefhkmnprtuvwxy+=#%*@<>"
"""Printed letters and signs drawn as "not a digit" beside the printed digits, so that a '1''s foot and flag do not
make every printed stroke a digit. Those that look like a digit (O, I, l, S, Z, B, G, a, b, g, q, &, ?, /, |, -) are left out."""


def printed_mask(text: str, rng: np.random.Generator, config: PrintedDigits = PrintedDigits()) -> np.ndarray:
    """One character in a Hershey font (`HERSHEY_FONTS`) as a binary mask of ink, about as large as a camera sees it."""
    font = int(rng.choice(HERSHEY_FONTS)) | (cv2.FONT_ITALIC if rng.random() < config.italic else 0)
    height = rng.uniform(*config.height)
    (_, zero_height), _ = cv2.getTextSize("0", font, 1.0, 1)
    thickness = int(rng.integers(1, max(2, int(height / config.stroke)) + 1))
    size = int(height * 3 + 60)
    canvas = np.zeros((size, size), np.uint8)
    cv2.putText(canvas, text, (30, int(height * 2)), font, height / max(zero_height, 1), 255, thickness,
                cv2.LINE_AA)
    angle, shear = rng.uniform(-config.turn_degrees, config.turn_degrees), rng.uniform(-config.shear, config.shear)
    squeeze = rng.uniform(*config.squeeze)
    centre = np.array([size / 2, size / 2])
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)[:, :2]
    linear = turn @ np.array([[squeeze, shear], [0.0, 1.0]])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    canvas = cv2.warpAffine(canvas, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return canvas > int(rng.uniform(*config.threshold))


def printed_digits(count: int, seed: int, config: PrintedDigits = PrintedDigits()) -> tuple[np.ndarray, np.ndarray]:
    """`count` printed digits, each digit in turn, through the shared normaliser: (N, 28, 28) float32 and labels."""
    labels = np.arange(count, dtype=np.int64) % 10
    return _printed([str(digit) for digit in labels], seed, config), labels


def printed_non_digits(count: int, seed: int, config: PrintedDigits = PrintedDigits()) -> np.ndarray:
    """`count` printed letters and signs (`PRINTED_NON_DIGITS`, each in turn), as `printed_digits` draws digits."""
    return _printed([PRINTED_NON_DIGITS[index % len(PRINTED_NON_DIGITS)] for index in range(count)], seed, config)


PRINTED_TRIES = 20
"""Draws of one printed character before `printed_digits` gives up (one in a few hundred needs a second)."""


def _printed(texts: list[str], seed: int, config: PrintedDigits) -> np.ndarray:
    """Each of `texts` drawn by `printed_mask` and normalised: (N, 28, 28) float32."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(texts), MNIST_SIZE, MNIST_SIZE), np.float32)
    for index, text in enumerate(texts):
        for _ in range(PRINTED_TRIES):
            try:
                out[index] = normalise_mask_to_mnist(printed_mask(text, rng, config))
                break
            except EmptyCropError:  # a stroke too thin for its threshold: drawn again
                continue
        else:
            raise ValueError(f"{text!r} vanished under its threshold {PRINTED_TRIES} times: check PrintedDigits")
    return out
