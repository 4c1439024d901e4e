"""Find candidate digits in a frame: flatten the light, threshold, strip ruled lines, group strokes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from numba import njit

from digitrec import binarise
from digitrec.binarise import (
    HYSTERESIS_LOW,
    INK_COLOURS,
    InkOnPaper,
    binarise_ink_on_paper,
    ink_channel,
    label_lookup,
    paper_brightness,
    widen_for_thick_strokes,
)
from digitrec.types import Box, Region


@dataclass(frozen=True)
class SegmentationConfig:
    """Every threshold of the segmenter, as fractions of the frame so they hold at any resolution."""

    ink: str = "dark"
    """"dark": ink darker than its ground (pen, pencil, marker on paper, a whiteboard); "light": lighter (chalk on a
    blackboard, white digits on black), read as the same page inverted would be (`binarise.ink_channel`)."""
    working_width: int = 640
    """Frames wider than this are segmented at this width (the cost grows with the pixels, and
    ruled-line search with their square); each found digit's mask and box are then cut again from
    the full-resolution frame, so the classifier sees every pixel of it."""
    paper_kernel_fraction: float = 0.06
    """Window, as a fraction of the frame's shorter side, over which paper brightness is estimated.
    It must be wider than the thickest marker stroke."""
    min_digit_height: float = 0.028
    """Smallest digit, as a fraction of the frame's shorter side, its height but for a portrait photo (20 px at 720p)."""
    max_digit_height: float = 0.7
    min_thick_digit_height: float = 0.2
    """Digits at least this fraction of the frame's height are close-ups (a sheet held up close to the camera): where
    their strokes are too thick for the paper window they are cut again with a window sized from their strokes
    (`binarise.widen_for_thick_strokes`), their long straight strokes are not erased as ruled lines
    (`_spare_big_digits`), and their surroundings are looked at no farther than `surroundings_reach`. The
    synthetic pages' and videos' digits are at most a sixth of the frame's height (a little more under perspective)."""
    min_aspect: float = 0.08
    """Narrowest width/height of a digit (a thin '1')."""
    max_aspect: float = 2.2
    """Widest width/height (a '5' with a long flag is wide; wider is a dash or two digits)."""
    max_solidity: float = 0.85
    """Largest ink/box-area ratio of a digit that is not a '1': a thick-marker '8' reaches 0.75;
    solid blobs above are smudges. Round dots are left to the classifier's not-a-digit class."""
    one_aspect: float = 0.4
    """Regions narrower than this width/height are '1's and may be solid."""
    box_cell_fill: float = 0.85
    """A form box's cell fills at least this share of its bounding box (`find_box_frames`): a rectangle, where an
    ellipse (a '0''s counter) fills 0.79 and a triangle (a '4''s) a half."""
    box_cell_spread: float = 0.35
    """...and its cells differ from their median width and height by at most this share of it: a '1' standing from
    a cell's top wall to its bottom splits it in two narrower holes, and is no wall."""
    speck_fraction: float = 0.35
    """Components smaller than this fraction of the smallest digit height in both sides are specks."""
    merge_overlap: float = 0.5
    """Components whose x-ranges overlap by this fraction of the narrower one may be one digit..."""
    merge_gap: float = 0.35
    """...if the vertical gap between them is under this fraction of the taller one's height."""
    piece_height: float = 0.65
    """A component shorter than this fraction of its neighbour is a piece of a digit (a '5''s flag,
    half of a broken '4'), not a digit of its own..."""
    piece_overlap: float = 0.1
    """...and joins that neighbour when their x-ranges overlap by this fraction of the narrower one."""
    fragments_height: float = 1.2
    """Pieces of a broken digit may lie `merge_gap` of the frame's typical digit height apart when
    together they are at most this multiple of it tall."""
    components_for_height: int = 4
    """The frame's typical digit height (for the two rules above and below) is the median height
    of its digit-sized components, when it has at least this many; else those rules are off."""
    oversized_component: float = 2.5
    """A component taller or wider than this multiple of the frame's typical digit height is joined to no other."""
    longest_piece: float = 1.5
    """A component flatter than `max_aspect` and longer than this many of the frame's digit heights (an underline,
    a crossing-out) joins no other as a piece of one digit."""
    whole_digit_height: float = 0.7
    """Two components one above the other that are both at least this fraction of the frame's
    typical digit height are digits of two lines written close together, never one broken digit."""
    horizontal_line_length: float = 0.15
    """A ruled line is at least this fraction of the frame's width long..."""
    vertical_line_length: float = 0.3
    """...and a vertical grid line this fraction of its height."""
    paper_edge_ratio: float = 0.6
    """A region whose surroundings on one side are darker than this fraction of the brightest side
    sits on the edge of the page (desk beside it), where a shadow band looks like a '1'."""
    close_up_speck: float = 0.1
    """A component whose longer side is under this fraction of a close-up digit's height is no piece of it
    (`_merge_groups`)."""
    surroundings_reach: float = 0.03
    """Those surroundings are looked at half a region's width and a quarter of its height out; for a region at
    least `min_thick_digit_height` tall, at most this fraction of the frame's height out: beside a digit held close
    to the camera, half its width reaches past the page's edge into the desk, and across it a shadow's falloff."""
    off_paper_ratio: float = 0.35
    """A region whose surroundings are all darker than this fraction of the page's brightness lies
    on the desk, not the page (a shadow darkens paper less than that)."""
    min_contrast_to_noise: float = 2.5
    dark_background: float = 0.8
    """A region whose surroundings are darker than `dark_background` times the page's light must be darker
    than them by at least `min_contrast_to_noise` times the frame's sensor noise (`binarise.sensor_noise`). The
    ink threshold is a darkness relative to the light around, so on a dark background (the desk beside the
    page) it lets through smaller swings in grey level, and in dim light the noise there crosses it in
    digit-sized specks that the classifier reads as digits. On development noisy videos 115 of 179 false
    detections were such specks (surroundings at 0.54-0.91 of the page's light, standing out by 0.6-2.5
    times the noise), and no digit was: they lie on the page (surroundings at 0.93 or more of its light) and
    stood out by 2.9 times the noise or more (docs/history.md, session 25). On open paper the test is not made:
    faint pencil in strong noise stands out by only about twice the noise."""
    line_angles: tuple[float, ...] = (-14.0, -7.0, 0.0, 7.0, 14.0)
    """Tilts in degrees at which ruled lines are looked for, for pages held at an angle."""
    max_line_breadth: float = 0.15
    """A ruled line's piece is at most this fraction as broad as it is long (its narrowest enclosing
    rectangle): big digits written close up, or two of them touching, are as long as a line but
    much broader, and must not be erased as one."""
    tilted_component_length: float = 1.0
    """Components left after the line search that are at least this fraction of a ruled line long, and flat
    (wider than `max_aspect` times their height), are searched again for lines (`find_lines_in_long_components`):
    a thin rule tilted between the kernels' angles, or found only in pieces, joins the digits on it into one."""
    max_line_tilt: float = 15.0
    """There, lines are looked for within this many degrees of horizontal..."""
    tilted_line_votes: float = 0.5
    """...holding at least this fraction of a ruled line's length of pixels on one straight line..."""
    max_lines_per_component: int = 3
    """...and at most this many in one component (two lines' digits joined by a tall one)."""
    tilted_digit_ink: float = 0.6
    """Such a component none of whose columns holds this fraction of the smallest digit height in ink carries
    no digit: it is a bare line, erased whole without a search (it could still join a digit's group)."""
    tilted_max_fill: float = 0.3
    """Such a component whose ink fills more than this fraction of its box is a broad band (the desk below a
    page's edge), not lines and digits: left alone."""
    ink_on_line_ratio: float = 0.9
    """Where a ruled line is erased, pixels at most this fraction as light as the line's own darker
    pixels stay: they are ink written across or along the line (a digit sitting on it, or taller
    than the line spacing), darker than the printed line beneath. A line as dark as the ink is
    erased whole."""

    def __post_init__(self) -> None:
        if self.ink not in INK_COLOURS:
            raise ValueError(f"ink must be one of {', '.join(INK_COLOURS)}, not {self.ink!r}")


DEFAULT_SEGMENTATION = SegmentationConfig()

PHOTO_SHRINK = 2
LARGE_PHOTO = 4
PHOTO_MAX_WORKING_WIDTH = 2048
"""A still photo at least `LARGE_PHOTO` times as wide as the working width is segmented at 1 / `PHOTO_SHRINK` of its
own width (up to `PHOTO_MAX_WORKING_WIDTH`) instead (`for_still_photo`)."""


def for_still_photo(config: SegmentationConfig, frame_width: int) -> SegmentationConfig:
    """The settings a still photo `frame_width` pixels wide is segmented with: `config` itself under `LARGE_PHOTO`
    times its working width (a webcam's frame, the synthetic photos, a 1920-wide photo); from there on at half the
    photo's width (up to `PHOTO_MAX_WORKING_WIDTH`), for digits down to the same height in working pixels. A
    phone's photo of a whole page (4032 wide) writes its digits 2-3 % of its height, under the 2.8 %
    (`min_digit_height`) that the working width of a webcam's frame looks for (docs/history.md, session 35).
    Video frames keep `config`, for speed."""
    if frame_width < LARGE_PHOTO * config.working_width:
        return config
    width = min(frame_width // PHOTO_SHRINK, PHOTO_MAX_WORKING_WIDTH)
    return replace(config, working_width=width,
                   min_digit_height=config.min_digit_height * config.working_width / width)


PHOTO_MARGIN = 0.25
"""A still photo where nothing is found is looked at again inside a margin of its own paper this share of its
longer side wide (`segment_photo`)."""

PHOTO_ONE_DIGIT_ASPECT = 5.0
"""A photo whose longer side is more than this many times its shorter one is not taken for a crop round one digit
(even a '1' is not so thin), and is not looked at again inside a margin."""


def segment_photo(frame: np.ndarray, config: SegmentationConfig = DEFAULT_SEGMENTATION) -> tuple[list[Region], np.ndarray]:
    """`segment_digits` for a still photo: with `for_still_photo`'s settings, and where that finds nothing, again
    inside a margin of the photo's own paper (the median of its edge pixels), `PHOTO_MARGIN` of its longer side
    wide, unless it is over `PHOTO_ONE_DIGIT_ASPECT` times longer than wide. A photo cropped round one digit (an
    MNIST image, a digit cut out of a scan) holds a digit taller than `max_digit_height` of the frame and touching
    its edges, and is otherwise read as nothing; a page where anything is found is read as before. Boxes are in the photo's pixels; the mask is the photo's part of it."""
    config = for_still_photo(config, frame.shape[1])
    regions, mask = segment_digits(frame, config)
    if regions:
        return regions, mask
    height, width = frame.shape[:2]
    if max(height, width) > PHOTO_ONE_DIGIT_ASPECT * min(height, width):
        return regions, mask  # no crop round one digit is this long; its margin would be many times the photo
    margin = int(PHOTO_MARGIN * max(height, width)) + 1
    edges = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    paper = np.median(edges, axis=0).reshape(-1).round().tolist()
    framed = cv2.copyMakeBorder(frame, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=paper)
    framed_regions, framed_mask = segment_digits(framed, config)
    found = []
    for region in framed_regions:
        x, y, w, h = region.box
        if x >= margin and y >= margin and x + w <= margin + width and y + h <= margin + height:  # on the photo
            found.append(Region((x - margin, y - margin, w, h), region.mask))
    if not found:
        return regions, mask
    scale = framed_mask.shape[1] / framed.shape[1]  # the mask is at the working width
    start = int(round(margin * scale))
    bottom, right = int(round((margin + height) * scale)), int(round((margin + width) * scale))
    return found, framed_mask[start:bottom, start:right]


@lru_cache(maxsize=64)
def _line_kernel(length: int, angle_degrees: float) -> np.ndarray:
    """A one-pixel line structuring element of the given length and tilt (0 = horizontal)."""
    angle = np.deg2rad(angle_degrees)
    dx, dy = np.cos(angle) * (length - 1) / 2, np.sin(angle) * (length - 1) / 2
    width, height = 2 * int(round(abs(dx))) + 1, 2 * int(round(abs(dy))) + 1
    centre_x, centre_y = width // 2, height // 2
    kernel = np.zeros((height, width), np.uint8)
    start = (int(round(centre_x - dx)), int(round(centre_y - dy)))
    end = (int(round(centre_x + dx)), int(round(centre_y + dy)))
    cv2.line(kernel, start, end, 1, 1)
    return kernel


def find_ruled_lines(mask: np.ndarray, config: SegmentationConfig = DEFAULT_SEGMENTATION) -> np.ndarray:
    """Mask of long straight lines (ruled or squared paper, table borders) in an ink mask.

    The lines are looked for at half resolution (a line survives 2x2 max-pooling; the openings
    cost an eighth as much there) and the pixels of the mask under them are returned.
    """
    height, width = mask.shape
    h_len = max(15, int(config.horizontal_line_length * width))
    v_len = max(15, int(config.vertical_line_length * height))
    pooled = _max_pool_2x2(mask)
    # Only long components can hold a line: skip the morphology when there are none.
    outlines, _ = cv2.findContours(pooled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    extents = np.array([cv2.boundingRect(outline)[2:] for outline in outlines]).reshape(-1, 2)
    lines = np.zeros_like(pooled)
    # An opening with a line about a third as long as the line finds it; strokes of digits are shorter.
    # Only pieces as long as a ruled line and as thin as one are kept (not long strokes of big digits,
    # nor big digits touching): the pieces are measured at pooled size, so half a line's length is its
    # full length there. Horizontal and vertical pieces are judged apart: a grid's lines stay thin.
    for length, across, long_enough in ((h_len, 0.0, np.any(extents[:, 0] >= h_len // 2)),
                                        (v_len, 90.0, np.any(extents[:, 1] >= v_len // 2))):
        if long_enough:
            opened = np.zeros_like(pooled)
            for angle in config.line_angles:
                opened |= cv2.morphologyEx(pooled, cv2.MORPH_OPEN, _line_kernel(length // 6, across + angle))
            lines |= _straight_pieces(opened, length // 2, across == 0.0, config.max_line_breadth)
    if not lines.any():
        return np.zeros_like(mask)
    _spare_big_digits(lines, outlines, config)
    if not lines.any():
        return np.zeros_like(mask)
    return _under_pooled(lines, mask)


def _spare_big_digits(lines: np.ndarray, outlines: Sequence[np.ndarray], config: SegmentationConfig) -> None:
    """Clear from `lines` (pooled, in place) the pieces lying on a component of digit size at least
    `min_thick_digit_height` of the frame tall, clear of the frame's edges: a '1' or a '7' held close to the camera
    is as long and straight as a ruled line, and the line search erased it. A ruled line runs across the page: its
    component reaches the frame's edges, or is far wider than a digit."""
    height, width = lines.shape
    for outline in outlines:
        x, y, w, h = cv2.boundingRect(outline)
        if not config.min_thick_digit_height * height <= h <= config.max_digit_height * height:
            continue
        if x == 0 or y == 0 or x + w == width or y + h == height or w > config.max_aspect * h:
            continue
        spared = np.zeros((h, w), np.uint8)
        cv2.drawContours(spared, [outline], -1, 1, cv2.FILLED, offset=(-x, -y))
        lines[y : y + h, x : x + w] &= 1 - spared


def erase_ruled_lines(mask: np.ndarray, lines: np.ndarray, gray: np.ndarray, paper: np.ndarray,
                      ink_ratio: float) -> np.ndarray:
    """The ink mask without its ruled lines (grown by a pixel, their blurred edges), keeping the ink
    written over them: pixels there at most `ink_ratio` as light as the darker quarter of the line's own
    pixels (those with no ink beside them across the line: `_lightness_of`).

    `gray` is the ink channel and `paper` its paper light (`InkOnPaper.paper`), both at the mask's size."""
    if not lines.any():
        return mask
    band = cv2.dilate(lines, _block_kernel(3))
    line_light = _quantile(_lightness_of(lines, mask, gray, paper), 0.25)
    return _erase_lighter(mask, band, gray, paper, np.float32(ink_ratio * line_light))


LINE_CLEARANCE = 4
"""How far across a ruled line (working pixels) a pixel of it must have no ink on either side to be taken as
the line's own, when measuring how light the line is: more than half a thin line's breadth."""

LINE_CLEAR_SHARE = 0.25
"""The line's own pixels measure its lightness when they are at least this share of its pixels; else (a
broad band such as a page's edge, whose pixels mostly have the band beside them) all of them do."""


@njit(cache=True, nogil=True)
def _lightness_of(lines, mask, gray, paper):  # pragma: no cover - compiled; tested directly and via segment_digits
    """gray / max(paper, 1) at the pixels of `lines` with no ink of `mask` `LINE_CLEARANCE` pixels to both
    sides across the line (above and below, or left and right): the line's own pixels, not the ink of a
    digit written across or along it; all of `lines`' pixels where those are fewer than `LINE_CLEAR_SHARE`."""
    height, width = lines.shape
    total = np.count_nonzero(lines)
    clear = np.empty(total, np.float32)
    every = np.empty(total, np.float32)
    clear_count, count = 0, 0
    for row in range(height):
        for column in range(width):
            if not lines[row, column]:
                continue
            light = np.float32(gray[row, column]) / np.float32(max(paper[row, column], 1))
            every[count] = light
            count += 1
            up, down = row - LINE_CLEARANCE, row + LINE_CLEARANCE
            left, right = column - LINE_CLEARANCE, column + LINE_CLEARANCE
            if ((up >= 0 and down < height and not mask[up, column] and not mask[down, column])
                    or (left >= 0 and right < width and not mask[row, left] and not mask[row, right])):
                clear[clear_count] = light
                clear_count += 1
    if clear_count >= LINE_CLEAR_SHARE * total:
        return clear[:clear_count]
    return every


@njit(cache=True, nogil=True)
def _erase_lighter(mask, band, gray, paper, limit):  # pragma: no cover - compiled; tested through erase_ruled_lines
    """`mask` with the pixels of `band` cleared, except those darker than `limit` times the paper's light."""
    kept = mask.copy()
    for row in range(mask.shape[0]):
        for column in range(mask.shape[1]):
            if band[row, column] and np.float32(gray[row, column]) >= limit * np.float32(max(paper[row, column], 1)):
                kept[row, column] = 0
    return kept


def find_lines_in_long_components(labels: np.ndarray, boxes: np.ndarray,
                                  config: SegmentationConfig = DEFAULT_SEGMENTATION) -> np.ndarray | None:
    """Mask of ruled lines the kernels of `find_ruled_lines` missed, found in the components they left that are
    as long as a ruled line and flat (wider than `max_aspect` times their height): a thin rule tilted between the
    kernels' angles, with the digits written on it joined to it, which could never be read as digits.

    Each such component's straight lines are found with a Hough transform (`cv2.HoughLines`, within
    `max_line_tilt` of horizontal, at least `tilted_line_votes` of a line's length on one line), strongest
    first, each taken out before the next is looked for. None when the frame has no such component (most frames:
    nothing is computed)."""
    height, width = labels.shape
    length = max(15, int(config.horizontal_line_length * width))
    long_flat = np.nonzero((boxes[:, 2] >= config.tilted_component_length * length)
                           & (boxes[:, 2] > config.max_aspect * boxes[:, 3]))[0]
    if len(long_flat) == 0:
        return None
    lines = np.zeros(labels.shape, np.uint8)
    min_h = config.min_digit_height * min(height, width)
    tilt = np.deg2rad(config.max_line_tilt)
    votes = int(config.tilted_line_votes * length)
    for index in long_flat:
        x, y, w, h = (int(value) for value in boxes[index])
        piece = (labels[y : y + h, x : x + w] == index + 1).astype(np.uint8)
        column_ink = piece.sum(axis=0)
        if column_ink.max() < config.tilted_digit_ink * min_h:  # a bare line: nothing as tall as a digit on it
            lines[y : y + h, x : x + w] |= piece
            continue
        if column_ink.sum() > config.tilted_max_fill * w * h:
            continue  # a broad band, such as the desk below the page's edge
        columns, rows = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        for _ in range(config.max_lines_per_component):
            found = cv2.HoughLines(piece, 1, np.pi / 360, votes, min_theta=np.pi / 2 - tilt, max_theta=np.pi / 2 + tilt)
            if found is None:
                break
            rho, theta = (float(value) for value in found[0, 0])
            on_line = (np.abs(columns * np.cos(theta) + rows * np.sin(theta) - rho) <= 1.0) & (piece > 0)
            if not on_line.any():
                break
            lines[y : y + h, x : x + w] |= on_line.astype(np.uint8)
            piece[on_line] = 0
    return lines if lines.any() else None


def find_box_frames(inked: np.ndarray, mask: np.ndarray, boxes: np.ndarray, min_h: float,
                    config: SegmentationConfig = DEFAULT_SEGMENTATION) -> np.ndarray | None:
    """Mask of the walls and edges of form boxes (a field of cells, a box round a number): the walls between cells
    were read as '1's, and a field found whole was one region with its digits inside, never read.

    `inked` is the ink mask before its ruled lines were erased (a wide field's edges are found as ruled lines, its
    walls left standing; `inked is mask` where nothing was erased), `mask` after, and `boxes` its components' boxes.
    Only two kinds of window are looked into: a component of digit height that holds another one's box, and the
    band of rows of a thin component standing between two erased rules (most frames have neither, and nothing more
    is computed). See `_form_lines` for what a form is."""
    height, width = mask.shape
    tall = boxes[(boxes[:, 3] >= min_h) & (boxes[:, 3] <= config.max_digit_height * height)]
    windows: list[tuple[int, int, int, int]] = []
    speck = config.speck_fraction * min_h
    inner = boxes[(boxes[:, 2] >= speck) | (boxes[:, 3] >= speck)]
    if len(tall) and len(inner) >= 2:
        o, i = tall[:, None, :], inner[None, :, :]
        holds = ((i[..., 0] > o[..., 0]) & (i[..., 1] > o[..., 1])
                 & (i[..., 0] + i[..., 2] < o[..., 0] + o[..., 2]) & (i[..., 1] + i[..., 3] < o[..., 1] + o[..., 3]))
        windows = [tuple(int(v) for v in box) for box in tall[holds.any(axis=1)]]
    if inked is not mask:
        # A wide field's edges were erased as ruled lines: its walls stand alone, thin, each between two erased
        # rules. The band of rows between them is looked into, across the frame.
        bands: list[tuple[int, int]] = []
        for x, y, w, h in tall[tall[:, 2] <= config.one_aspect * tall[:, 3]].tolist():
            above, below = np.s_[max(0, y - 3) : y + 1, x : x + w], np.s_[y + h - 1 : y + h + 3, x : x + w]
            if (inked[above] > mask[above]).any() and (inked[below] > mask[below]).any():
                top, bottom = max(0, int(y) - 4), min(height, int(y + h) + 4)
                if not any(top >= upper and bottom <= lower for upper, lower in bands):
                    bands.append((top, bottom))
                    windows.append((0, top, width, bottom - top))
    frames = None
    for x, y, w, h in windows:
        lines = _form_lines(inked[y : y + h, x : x + w], mask[y : y + h, x : x + w], min_h, config)
        if lines is not None:
            if frames is None:
                frames = np.zeros_like(mask)
            frames[y : y + h, x : x + w] |= lines
    return frames


@dataclass(frozen=True)
class _Hole:
    """A hole of an ink component, seen as a form's cell."""

    box: Box
    rectangular: bool
    """Fills at least `box_cell_fill` of its box and is at least a small digit tall."""
    holds_ink: bool
    """Other ink (not the component's) lies inside it."""


def _form_lines(inked: np.ndarray, mask: np.ndarray, min_h: float, config: SegmentationConfig) -> np.ndarray | None:
    """`find_box_frames` in one window. A form is a component of `inked` that closes a cell: a hole that fills at
    least `box_cell_fill` of its bounding box (a rectangle; a '0''s counter fills 0.79) and at least `min_h` (the
    smallest digit's height) tall, with ink inside it that is not the component's own. A square '0' or '8' of a
    boxy hand closes rectangles too, and a checkbox, but nothing is inside them.

    A form's lines are its pixels outside its holes' boxes, but for what stands between two neighbouring holes that
    are no regular cells (not of about the cells' size, `box_cell_spread`): a '1' written from a cell's top wall to
    its bottom splits the cell in two narrower holes, and is kept. A component reaching further than its
    regular cells (a ruled line across the page, joined to a margin line and a '1' that touches two rules) is no
    form."""
    outlines, hierarchy = cv2.findContours(inked, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return None
    labels = None
    holes: dict[int, list[_Hole]] = {}
    forms: set[int] = set()
    for outline, (_, _, _, parent) in zip(outlines, hierarchy[0]):
        if parent < 0:
            continue  # an outer outline; the holes are the cells
        x, y, w, h = cv2.boundingRect(outline)
        if labels is None:
            _, labels = cv2.connectedComponents(inked, connectivity=8)
        px, py = outlines[parent][0, 0]  # the first point of an outer outline lies on its component
        label = int(labels[py, px])
        # The outline runs through the hole's edge pixels' centres: a w x h rectangle of them encloses (w-1)(h-1).
        rectangular = (h >= min_h and w >= 0.5 * min_h
                       and cv2.contourArea(outline) >= config.box_cell_fill * (w - 1) * (h - 1))
        holds_ink = False
        if rectangular:
            inside = np.zeros((h, w), np.uint8)
            cv2.drawContours(inside, [outline], -1, 1, cv2.FILLED, offset=(-x, -y))  # the hole with its rim of ink
            others = (labels[y : y + h, x : x + w] != label) & (mask[y : y + h, x : x + w] > 0)
            holds_ink = np.count_nonzero(others & (inside > 0)) >= min_h
            if holds_ink:
                forms.add(label)
        holes.setdefault(label, []).append(_Hole((x, y, w, h), rectangular, holds_ink))
    frames = None
    for label in forms:
        lines = _lines_of_form(labels, label, holes[label], config)
        if lines is not None:
            frames = np.zeros_like(mask) if frames is None else frames
            frames |= lines
    return frames


def _lines_of_form(labels: np.ndarray, label: int, holes: list[_Hole], config: SegmentationConfig) -> np.ndarray | None:
    """The lines of component `label` (see `_form_lines`), or None where it is no form."""
    cells = np.array([hole.box for hole in holes if hole.holds_ink], float)
    width, height = np.median(cells[:, 2]), np.median(cells[:, 3])

    def regular(hole: _Hole) -> bool:  # by its size alone: a digit touching a wall from inside bends the hole
        return (abs(hole.box[2] - width) <= config.box_cell_spread * width
                and abs(hole.box[3] - height) <= config.box_cell_spread * height)

    regulars = np.array([hole.box for hole in holes if regular(hole)], float).reshape(-1, 4)
    if len(regulars) == 0:  # cells of two sizes, none near their median: no form's
        return None
    x0, y0 = regulars[:, 0].min(), regulars[:, 1].min()
    x1, y1 = (regulars[:, 0] + regulars[:, 2]).max(), (regulars[:, 1] + regulars[:, 3]).max()
    component = (labels == label).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(component)
    margin = max(3.0, config.box_cell_spread * width)
    if x < x0 - margin or y < y0 - margin or x + w > x1 + margin or y + h > y1 + margin:
        return None
    for hole in holes:
        hole_x, hole_y, hole_w, hole_h = hole.box
        component[hole_y + 1 : hole_y + hole_h - 1, hole_x + 1 : hole_x + hole_w - 1] = 0
    tall = [hole for hole in holes if hole.box[3] >= 0.5 * height]
    for left in tall:
        for right in tall:
            (lx, ly, lw, lh), (rx, ry, _, rh) = left.box, right.box
            gap = rx - (lx + lw)
            top, bottom = max(ly, ry), min(ly + lh, ry + rh)
            if not 0 <= gap <= 0.5 * width or bottom - top < 0.5 * min(lh, rh) or regular(left) or regular(right):
                continue
            component[top:bottom, lx + lw - 1 : rx + 1] = 0  # what parts two holes no cell is wide enough for stays
    return component


def _straight_pieces(opened: np.ndarray, min_length: int, horizontal: bool, max_breadth: float) -> np.ndarray:
    """The components of `opened` that run at least `min_length` pixels along x (`horizontal`) or y
    and are straight: their narrowest enclosing rectangle is at most `max_breadth` times as broad as long."""
    if not opened.any():
        return opened
    count, labels = cv2.connectedComponents(opened, connectivity=8)
    keep = np.zeros(count, np.uint8)
    outlines, _ = cv2.findContours(opened, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for outline in outlines:
        _, _, w, h = cv2.boundingRect(outline)
        if (w if horizontal else h) < min_length:
            continue
        _, sides, _ = cv2.minAreaRect(outline)
        if min(sides) <= max_breadth * max(sides):
            x, y = outline[0, 0]  # the first point of an outer outline lies on its component
            keep[labels[y, x]] = 1
    return label_lookup(keep, labels)


def labelled_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected components of a binary mask: (labels image, (count, 4) boxes x, y, w, h),
    where boxes[i] bounds label i + 1; as cv2.connectedComponentsWithStats gives them, in half
    the time (its statistics pass costs more than the labelling; outer contours give the boxes)."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    boxes = np.zeros((count, 4), np.int32)
    outlines, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    for outline, (_, _, _, parent) in zip(outlines, hierarchy[0] if hierarchy is not None else ()):
        if parent == -1:  # an outer boundary, not a hole's; its first point lies on its component
            x, y = outline[0, 0]
            boxes[labels[y, x]] = cv2.boundingRect(outline)
    return labels, boxes[1:]


@njit(cache=True, nogil=True)
def _max_pool_2x2(mask):  # pragma: no cover - compiled; tested against NumPy in tests/test_segment.py
    """A binary mask at half size (rounded up), each pixel set when any of its 2x2 block is: one pass,
    row by row (the OR of four strided views in NumPy cost 0.13 ms at 640x480; this, 6 us)."""
    height, width = mask.shape
    half_width = (width + 1) // 2
    pooled = np.zeros(((height + 1) // 2, half_width), mask.dtype)
    for row in range(height):
        line, out = mask[row], pooled[row >> 1]
        for column in range(width // 2):
            out[column] |= line[2 * column] | line[2 * column + 1]
        if width % 2:
            out[half_width - 1] |= line[width - 1]
    return pooled


@njit(cache=True, nogil=True)
def _under_pooled(pooled, mask):  # pragma: no cover - compiled; tested against NumPy in tests/test_segment.py
    """The pixels of `mask` whose 2x2 block is set in `pooled`: a nearest-neighbour doubling of
    `pooled` cropped to `mask` and ANDed with it, in one pass (0.09 ms at 640x480 with cv2.resize; 8 us)."""
    height, width = mask.shape
    under = np.empty((height, width), mask.dtype)
    for row in range(height):
        source, line, out = pooled[row >> 1], mask[row], under[row]
        for column in range(width // 2):
            value = source[column]
            out[2 * column] = value & line[2 * column]
            out[2 * column + 1] = value & line[2 * column + 1]
        if width % 2:
            out[width - 1] = source[width >> 1] & line[width - 1]
    return under


MERGE_ROWS_AT_ONCE = 512
"""Components weighed at once when merging, against those beside them: bounds that step's memory."""


def _mergeable(boxes: np.ndarray, rows: np.ndarray, columns: np.ndarray, config: SegmentationConfig,
               digit_height: float | None, frame_size: tuple[int, int] | None) -> np.ndarray:
    """(rows, columns) bools: whether each component of `rows` may join each of `columns` (indices into `boxes`;
    `_merge_groups`' rules)."""
    a, b = boxes[rows], boxes[columns]
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    overlap_x = np.minimum(ax1[:, None], bx1[None, :]) - np.maximum(ax0[:, None], bx0[None, :])
    narrower = np.minimum(a[:, 2][:, None], b[:, 2][None, :])
    gap_y = np.maximum(ay0[:, None], by0[None, :]) - np.minimum(ay1[:, None], by1[None, :])
    taller = np.maximum(a[:, 3][:, None], b[:, 3][None, :])
    shorter = np.minimum(a[:, 3][:, None], b[:, 3][None, :])
    # Fragments of a digit whose middle faded out are small beside the gap between them: measure
    # that gap against the digit height too, as long as together they are no taller than a digit.
    close = gap_y <= config.merge_gap * taller
    if digit_height is not None:
        union_h = np.maximum(ay1[:, None], by1[None, :]) - np.minimum(ay0[:, None], by0[None, :])
        close |= (gap_y <= config.merge_gap * digit_height) & (union_h <= config.fragments_height * digit_height)
    stacked = (overlap_x >= config.merge_overlap * narrower) & close
    piece = (shorter < config.piece_height * taller) & (overlap_x >= config.piece_overlap * narrower) & close
    mergeable = stacked | piece
    if digit_height is not None:
        mergeable &= ~((gap_y > 0) & (shorter >= config.whole_digit_height * digit_height))  # two lines
        # A component far bigger than a digit (a page's edge, a rule left in the mask) holds no digit's pieces:
        # joined to the digits inside its box, it would take them with it when it is dropped.
        oversized = np.maximum(boxes[:, 2], boxes[:, 3]) > config.oversized_component * digit_height
        # Nor is a flat stroke longer than a digit is wide (an underline, a crossing-out) a piece of one: joined to
        # the digit above it, a '7' and the line under its number read '2'.
        oversized |= ((boxes[:, 2] > config.max_aspect * boxes[:, 3])
                      & (boxes[:, 2] > config.longest_piece * digit_height))
        mergeable[oversized[rows], :] = False
        mergeable[:, oversized[columns]] = False
    if frame_size is not None:
        width, height = boxes[:, 2], boxes[:, 3]
        on_edge = ((boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 0] + width == frame_size[0])
                   | (boxes[:, 1] + height == frame_size[1]))
        band = on_edge & ((width > config.max_aspect * height) | (width < config.min_aspect * height))
        mergeable[band[rows], :] = False
        mergeable[:, band[columns]] = False
        # Beside a close-up digit, specks (the page's edge in dots, the paper's grain) lie within the merging gap.
        size = np.maximum(width, height)
        close_up = taller >= config.min_thick_digit_height * frame_size[1]
        mergeable &= ~(close_up & (np.minimum(size[rows][:, None], size[columns][None, :]) < config.close_up_speck * taller))
    return mergeable


def _merge_groups(boxes: np.ndarray, config: SegmentationConfig, digit_height: float | None,
                  frame_size: tuple[int, int] | None = None) -> list[list[int]]:
    """Union components stacked one above the other (a broken stroke, a '5''s flag) into digits.

    `digit_height` is the frame's typical digit height, None when unknown: with it, two whole
    digits one above the other (lines written close together) stay apart, and the fragments of
    a digit whose middle faded out join. With `frame_size` (width, height), a band along the frame's edge (touching
    it, and flatter than `max_aspect` or narrower than `min_aspect`: the page's edge, the desk beside it) joins
    nothing, nor does a component smaller than `close_up_speck` of a close-up digit's height join it: beside a
    digit held close to the camera they are within the merging gap, and took the digit with them (a group cut by
    the frame's edge is dropped, and two digits joined through a row of specks are too wide for one)."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Every rule needs the two to overlap (or touch) across, so components are weighed a
    # block at a time, in order across the frame, against those their block overlaps: all against all, a photo of
    # dotted paper's 18 000 specks made matrices of 18 000 x 18 000 (13 GB, 50 s). The groups are the same whatever
    # the order the pairs are joined in.
    x0 = boxes[:, 0]
    x1 = x0 + boxes[:, 2]
    across = np.argsort(x0, kind="stable")
    for start in range(0, len(boxes), MERGE_ROWS_AT_ONCE):
        rows = across[start : start + MERGE_ROWS_AT_ONCE]
        columns = np.flatnonzero((x0 <= x1[rows].max()) & (x1 >= x0[rows].min()))  # touching too, for 0 overlaps
        mergeable = _mergeable(boxes, rows, columns, config, digit_height, frame_size)
        mergeable &= columns[None, :] > rows[:, None]  # each pair once
        for i, j in zip(*np.nonzero(mergeable)):
            root_i, root_j = find(int(rows[i])), find(int(columns[j]))
            if root_i != root_j:
                parent[root_j] = root_i
    groups: dict[int, list[int]] = {}
    for index in range(len(boxes)):
        groups.setdefault(find(index), []).append(index)
    return list(groups.values())


def segment_digits(frame: np.ndarray, config: SegmentationConfig = DEFAULT_SEGMENTATION) -> tuple[list[Region], np.ndarray]:
    """Candidate digit regions of a BGR (or grey) frame, left to right, and the ink mask they came from.

    Returns:
        (regions, mask): regions with boxes in frame pixels and their own ink masks (at the
        frame's resolution); mask is the thresholded, line-free ink at working resolution.
    """
    frame_h, frame_w = frame.shape[:2]
    full_gray = ink_channel(frame, config.ink)
    gray = full_gray
    scale = min(1.0, config.working_width / frame_w)
    if scale < 1.0:
        gray = shrink_keeping_thin_strokes(gray, scale)
    height, width = gray.shape
    paper_kernel = max(15, int(config.paper_kernel_fraction * min(height, width))) | 1
    ink = binarise_ink_on_paper(gray, paper_kernel)
    ink = widen_for_thick_strokes(gray, ink, paper_kernel, config.min_thick_digit_height * height,
                                  config.max_digit_height * height)
    mask = inked = ink.mask
    lines = find_ruled_lines(mask, config)
    if lines.any():
        mask = erase_ruled_lines(mask, lines, gray, ink.paper, config.ink_on_line_ratio)

    labels, boxes = labelled_components(mask)
    tilted = find_lines_in_long_components(labels, boxes, config)
    if tilted is not None:
        mask = erase_ruled_lines(mask, tilted, gray, ink.paper, config.ink_on_line_ratio)
        labels, boxes = labelled_components(mask)
    # Of the shorter side: a page photographed upright (portrait) looks for digits as small as the same page
    # photographed across, not a third larger.
    min_h = config.min_digit_height * min(height, width)
    frames = find_box_frames(inked, mask, boxes, min_h, config)
    if frames is not None:
        mask = mask & (1 - frames)
        labels, boxes = labelled_components(mask)
    paper_level = _quantile(gray[::4, ::4], 0.9)
    speck = config.speck_fraction * min_h
    not_speck = (boxes[:, 2] >= speck) | (boxes[:, 3] >= speck)
    component_ids = np.nonzero(not_speck)[0] + 1
    boxes = boxes[not_speck]
    regions: list[Region] = []
    if len(boxes) == 0:
        return regions, mask
    digit_sized = boxes[:, 3][boxes[:, 3] >= min_h]
    # Too few components to tell a digit's height from its pieces' (one broken digit alone).
    digit_height = float(np.median(digit_sized)) if len(digit_sized) >= config.components_for_height else None
    for group in _merge_groups(boxes, config, digit_height, (width, height)):
        ids = component_ids[group]
        if len(group) == 1:  # most digits are one component: its box, without four reductions
            x0, y0, w, h = (int(value) for value in boxes[group[0]])
            x1, y1 = x0 + w, y0 + h
        else:
            x0 = int(boxes[group, 0].min())
            y0 = int(boxes[group, 1].min())
            x1 = int((boxes[group, 0] + boxes[group, 2]).max())
            y1 = int((boxes[group, 1] + boxes[group, 3]).max())
            w, h = x1 - x0, y1 - y0
        if not (min_h <= h <= config.max_digit_height * height):
            continue
        if x0 == 0 or y0 == 0 or x1 == width or y1 == height:
            continue  # cut by the frame's edge (or the desk beside the page): not readable whole
        aspect = w / h
        if not (config.min_aspect <= aspect <= config.max_aspect):
            continue
        close_up = h >= config.min_thick_digit_height * height
        surroundings = _surroundings(gray, (x0, y0, w, h), config.surroundings_reach if close_up else None)
        if _off_open_paper(surroundings, config, paper_level):
            continue
        region_labels = labels[y0:y1, x0:x1]
        member = region_labels == ids[0] if len(ids) == 1 else np.isin(region_labels, ids)
        if _lost_in_noise(gray[y0:y1, x0:x1], member, surroundings, ink.noise * config.min_contrast_to_noise,
                          config.dark_background * paper_level):
            continue
        region = Region(box=(x0, y0, w, h), mask=member.astype(np.uint8))
        if scale < 1.0:
            # Judged on the full-resolution mask: at working size a small '0' closes into a blob.
            region = recut_at_full_resolution(region, full_gray, ink, scale)
        solidity = cv2.countNonZero(region.mask) / region.mask.size  # the mean of a 0/1 mask, exactly
        if aspect > config.one_aspect and solidity > config.max_solidity:
            continue
        regions.append(region)
    regions.sort(key=lambda region: (region.box[0], region.box[1]))
    return regions, mask


def shrink_keeping_thin_strokes(gray: np.ndarray, scale: float) -> np.ndarray:
    """The ink channel at `scale` (< 1), each pixel the average over its block of the darkest nearby
    pixels: a plain average would fade a one-pixel pen line below the ink threshold."""
    height, width = gray.shape
    block = int(np.ceil(1.0 / scale))
    darkest = cv2.erode(gray, _block_kernel(block))
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))  # a 2000x1 photo keeps its row
    return cv2.resize(darkest, size, interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=8)
def _block_kernel(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


def recut_at_full_resolution(region: Region, full_gray: np.ndarray, ink: InkOnPaper, scale: float) -> Region:
    """A region found at working resolution (box and mask in working pixels), cut again from the
    full-resolution ink channel: box in frame pixels, tight around the ink, and a mask of the frame's pixels.

    The same darkness threshold is applied to the full-resolution pixels, against the paper's light
    scaled up (it varies slowly, so scaling loses nothing), and only inside the working mask grown by
    one working pixel: the region keeps exactly its own strokes, never a neighbour's or a ruled line's.
    """
    frame_h, frame_w = full_gray.shape
    x, y, w, h = _to_frame_box(region.box, scale, frame_w, frame_h)
    grow = int(np.ceil(1.0 / scale))
    x0, y0 = max(0, x - grow), max(0, y - grow)
    x1, y1 = min(frame_w, x + w + grow), min(frame_h, y + h + grow)
    # The working mask covers the box; place it in the padded crop, then grow it.
    support = np.zeros((y1 - y0, x1 - x0), np.uint8)
    support[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = cv2.resize(region.mask, (w, h), interpolation=cv2.INTER_NEAREST)
    support = cv2.dilate(support, _block_kernel(2 * grow + 1))
    # The paper's light over the crop, from the working-resolution estimate.
    px0, py0 = int(x0 * scale), int(y0 * scale)
    px1 = min(ink.paper.shape[1], int(np.ceil(x1 * scale)) + 1)
    py1 = min(ink.paper.shape[0], int(np.ceil(y1 * scale)) + 1)
    paper = cv2.resize(paper_brightness(ink.paper[py0:py1, px0:px1]), (int(round((px1 - px0) / scale)), int(round((py1 - py0) / scale))),
                       interpolation=cv2.INTER_LINEAR)
    paper = _crop_padded(paper, x0 - int(round(px0 / scale)), y0 - int(round(py0 / scale)), x1 - x0, y1 - y0)
    blurred = cv2.GaussianBlur(full_gray[y0:y1, x0:x1], (ink.smoothing, ink.smoothing), 0)
    darkness = 1.0 - blurred.astype(np.float32) / paper
    mask = ((darkness > HYSTERESIS_LOW * ink.threshold) & (support > 0)).astype(np.uint8)
    points = cv2.findNonZero(mask)
    if points is None:  # cannot happen for real ink; keep the working mask rather than lose the region
        return Region(box=(x, y, w, h), mask=region.mask)
    bx, by, bw, bh = cv2.boundingRect(points)
    return Region(box=(x0 + bx, y0 + by, bw, bh), mask=mask[by : by + bh, bx : bx + bw])


def _crop_padded(image: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """image[y:y+height, x:x+width], repeating edge pixels where the window reaches past the image."""
    top, left = max(0, -y), max(0, -x)
    bottom = max(0, y + height - image.shape[0])
    right = max(0, x + width - image.shape[1])
    if top or left or bottom or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
        x, y = x + left, y + top
    return image[y : y + height, x : x + width]


def _surroundings(gray: np.ndarray, box: Box, max_reach: float | None = None) -> np.ndarray:
    """The upper quartile of the grey levels beside a box, on each side that is in the picture: left, right
    above and below (half its width and a quarter of its height out, at most `max_reach` of the frame's height
    when given). The upper quartile sees the paper between strokes of a neighbouring digit."""
    x, y, w, h = box
    height, width = gray.shape
    reach_x, reach_y = max(2, w // 2), max(2, h // 4)
    if max_reach is not None:
        limit = max(2, int(max_reach * height))
        reach_x, reach_y = min(reach_x, limit), min(reach_y, limit)
    sides = np.array([
        (max(0, x - reach_x), y, x, y + h),  # (x0, y0, x1, y1) left, right, above, below
        (x + w, y, min(width, x + w + reach_x), y + h),
        (x, max(0, y - reach_y), x + w, y),
        (x, y + h, x + w, min(height, y + h + reach_y)),
    ], np.int64)
    levels = _upper_quartiles(gray, sides)
    return levels[levels >= 0]


def _off_open_paper(levels: np.ndarray, config: SegmentationConfig, paper_level: float) -> bool:
    """True when a box is not on open paper, by its `_surroundings`: those on one side are much darker than
    on another (the page's edge), or darker than the page all round (the desk beside it)."""
    if len(levels) < 2:
        return False
    return min(levels) < config.paper_edge_ratio * max(levels) or max(levels) < config.off_paper_ratio * paper_level


def _lost_in_noise(gray: np.ndarray, member: np.ndarray, levels: np.ndarray, min_contrast: float,
                   dark_level: float) -> bool:
    """True when a region lies on a dark background (the lightest of its `_surroundings` under `dark_level`)
    and its ink (its lower quartile, under `member`) is less than `min_contrast` grey levels darker than that:
    sensor noise, not a stroke (`SegmentationConfig.min_contrast_to_noise`)."""
    if min_contrast <= 0 or len(levels) == 0:
        return False
    background = float(levels.max())
    return background < dark_level and background - _quantile(gray[member], 0.25) < min_contrast


def load_compiled() -> None:
    """Load the compiled passes (thresholding, ruled-line pooling and erasing, page-edge test) now rather than
    on the first frame."""
    binarise.load_compiled()
    _upper_quartiles(np.zeros((2, 2), np.uint8), np.zeros((1, 4), np.int64))
    blank = np.zeros((3, 3), np.uint8)
    _under_pooled(_max_pool_2x2(blank), blank)
    erase_ruled_lines(blank, np.ones_like(blank), blank, np.full_like(blank, 200), DEFAULT_SEGMENTATION.ink_on_line_ratio)


@njit(cache=True, nogil=True)
def _upper_quartiles(gray, sides):  # pragma: no cover - compiled; tested through segment_digits
    """`_quantile(gray[y0:y1, x0:x1], 0.75)` of each (x0, y0, x1, y1) window of a uint8 image, -1 for an
    empty one, from each window's histogram: a region's four sides cost one call, not four sorts."""
    levels = np.full(len(sides), -1.0)
    for index in range(len(sides)):
        x0, y0, x1, y1 = sides[index, 0], sides[index, 1], sides[index, 2], sides[index, 3]
        count = (x1 - x0) * (y1 - y0) if x1 > x0 and y1 > y0 else 0
        if count == 0:
            continue
        histogram = np.zeros(256, np.int64)
        for row in range(y0, y1):
            for column in range(x0, x1):
                histogram[gray[row, column]] += 1
        position = 0.75 * (count - 1)
        below = int(position)
        above = min(below + 1, count - 1)
        fraction = position - below
        # The values of rank `below` and `above` in sorted order.
        seen, low_value, high_value = 0, -1, -1
        for value in range(256):
            seen += histogram[value]
            if low_value < 0 and seen > below:
                low_value = value
            if seen > above:
                high_value = value
                break
        levels[index] = float(low_value) * (1.0 - fraction) + float(high_value) * fraction
    return levels


def _quantile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, 100 * q) (linear interpolation), without its overhead."""
    flat = values.ravel()
    position = q * (flat.size - 1)
    below = int(position)
    above = min(below + 1, flat.size - 1)
    ordered = np.partition(flat, (below, above))
    fraction = position - below
    return float(ordered[below]) * (1.0 - fraction) + float(ordered[above]) * fraction


def _to_frame_box(box: Box, scale: float, frame_w: int, frame_h: int) -> Box:
    if scale == 1.0:
        return box
    x, y, w, h = box
    x0, y0 = int(np.floor(x / scale)), int(np.floor(y / scale))
    x1, y1 = min(frame_w, int(np.ceil((x + w) / scale))), min(frame_h, int(np.ceil((y + h) / scale)))
    return (x0, y0, x1 - x0, y1 - y0)
