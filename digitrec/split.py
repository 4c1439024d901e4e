"""Cut blobs of touching digits into single digits: propose cuts here, let the classifier choose."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from digitrec.types import Detection, Region


@dataclass(frozen=True)
class SplitConfig:
    candidate_width: float = 1.1
    """A region wider than this multiple of its line's digit height may hold touching digits."""
    still_candidate_width: float = 0.8
    """On a still photo, read once, regions from this width are offered cuts too: two narrow
    touching digits ('1' and '7') are no wider than many single digits. In video every frame's
    time counts, and these cuts would more than double the crops of a page (38 -> 85)..."""
    narrow_off_centre: tuple[float, ...] = (0.0, -0.2, 0.2)
    """...and such narrow regions are cut nearer their middle (`off_centre`)..."""
    narrow_split_floor: float = 0.97
    """...and only when the classifier reads them whole as 'not a digit', into parts each read at
    least this surely: single digits as wide read whole confidently."""
    max_parts: int = 4
    min_part_width: float = 0.4
    """A region is cut into k parts only if its width over k is at least this fraction of its line's
    digit height: three digits fit in 1.2 heights, four in 1.6. (At 0.3 a blob 1.1 heights wide, one
    wide digit or two, was also offered a cut into three: a 640x480 frame of 16 digits went from 44 to
    38 crops without them, and nothing read on held-out digits changed.)"""
    cut_search: float = 0.15
    """A cut runs within this fraction of a part's width of the even cut."""
    off_centre: tuple[float, ...] = (0.0, -0.2, 0.2, -0.4, 0.4)
    """Where two-part cuts are centred, as shifts from the middle in part widths."""
    step_cost: float = 0.3
    """Cost of a cut moving one column sideways, against 1 per ink pixel it crosses."""
    whole_bonus: float = 0.15
    """Log-probability margin a split must win by: a wide digit ('5' with a long flag) stays whole."""
    non_digit_split_floor: float = 0.9
    """A region read whole as 'not a digit' is split only if every part is read at least this surely..."""
    non_digit_max_parts: int = 2
    """...and into at most this many parts: a cursive scribble cuts into three or four loops that
    each read as a '1' (chosen on held-out digits: with parts capped at two, a floor of 0.9 read
    14 more of 400 touching pairs than 0.97 and no more false detections on 60 marked pages)."""
    min_page_height: float = 0.6
    """A region shorter than this fraction of the frame's median region height is never cut: two
    touching digits stand as tall as the digits round them; a wavy dash alone on its line, whose
    line height is its own, does not..."""
    regions_for_page_height: int = 4
    """...judged when the frame has at least this many regions."""
    wide_favour: float = 0.25
    wide_from: float = 0.9
    """The margin shrinks by `wide_favour` per line height the region is wider than `wide_from` heights."""


DEFAULT_SPLIT = SplitConfig()


def on_one_line(boxes: np.ndarray) -> np.ndarray:
    """(n, n) bool: whether boxes i and j (rows of x, y, w, h) are on one line, their heights overlapping by at
    least half the shorter one's."""
    top, bottom = boxes[:, 1], boxes[:, 1] + boxes[:, 3]
    overlap = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    return overlap >= 0.5 * np.minimum(boxes[:, 3][:, None], boxes[:, 3][None, :])


def line_heights(regions: Sequence[Region] | Sequence[Detection]) -> np.ndarray:
    """For each region (or detection: anything boxed), the median height of those beside it on its line (itself
    included)."""
    if not regions:
        return np.zeros(0)
    boxes = np.array([r.box for r in regions], float)
    same_line = on_one_line(boxes)
    # The median of each row's same-line heights (np.nanmedian over NaN-padded rows, at a tenth of its cost):
    # sorting puts the infinities of other lines last, and each row has `count` real heights.
    heights = np.sort(np.where(same_line, boxes[:, 3][None, :], np.inf), axis=1)
    count = same_line.sum(axis=1)
    rows = np.arange(len(regions))
    return (heights[rows, (count - 1) // 2] + heights[rows, count // 2]) / 2


def too_short_to_cut(regions: list[Region], config: SplitConfig = DEFAULT_SPLIT) -> np.ndarray:
    """For each region, whether it is too short for its frame to be touching digits (`min_page_height`)."""
    if len(regions) < config.regions_for_page_height:
        return np.zeros(len(regions), bool)
    heights = np.array([region.box[3] for region in regions], float)
    return heights < config.min_page_height * np.median(heights)


def _seams(mask: np.ndarray, bands: list[tuple[int, int]], step_cost: float) -> np.ndarray:
    """For each band of columns [low, high), the top-to-bottom path inside it that crosses the least ink.

    A path moves at most one column per row (each move costs `step_cost`), so it can follow a slanted
    gap or slip between overlapping strokes where a straight cut would slice through a digit.
    Returns (bands, rows) columns of the mask.
    """
    lows = np.array([low for low, _ in bands], np.int64)
    highs = np.array([high for _, high in bands], np.int64)
    return _least_ink_paths(np.ascontiguousarray(mask, np.uint8), lows, highs, float(step_cost))


def load_compiled() -> None:
    """Load the compiled cut search now (compiling it on the first run after installing), so that
    the first frame with a wide region does not pay for it (about 0.3 s)."""
    _least_ink_paths(np.zeros((2, 3), np.uint8), np.array([1], np.int64), np.array([2], np.int64), 0.3)
    _pieces_between(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.int64))


@njit(cache=True, nogil=True)
def _least_ink_paths(mask, lows, highs, step_cost):  # pragma: no cover - compiled; tested through _seams
    """The dynamic programme of `_seams`, row by row, compiled: in Python it cost a millisecond a region."""
    rows = mask.shape[0]
    paths = np.empty((len(lows), rows), np.int64)
    for band in range(len(lows)):
        low, width = lows[band], highs[band] - lows[band]
        total = np.empty(width)
        below = np.empty(width)
        for column in range(width):
            total[column] = mask[0, low + column]
        moves = np.zeros((rows, width), np.int8)
        for row in range(1, rows):
            for column in range(width):
                from_left = total[column - 1] + step_cost if column > 0 else np.inf
                from_right = total[column + 1] + step_cost if column < width - 1 else np.inf
                best = min(min(from_left, total[column]), from_right)
                # Ties go left, then straight down, then right.
                if from_left == best:
                    moves[row, column] = -1
                elif total[column] == best:
                    moves[row, column] = 0
                else:
                    moves[row, column] = 1
                below[column] = best + mask[row, low + column]
            total, below = below, total
        column = np.argmin(total)
        paths[band, rows - 1] = low + column
        for row in range(rows - 1, 0, -1):
            column += moves[row, column]
            paths[band, row - 1] = low + column
    return paths


def _cut_region(region: Region, seams: list[np.ndarray], scale: float) -> list[Region] | None:
    """The region cut along `seams` (per-row columns, left to right) into parts with their own tight boxes.

    None if a part holds no ink.
    """
    mask = region.mask
    x, y, _, _ = region.box
    edges = np.empty((len(seams) + 2, mask.shape[0]), np.int64)
    edges[0], edges[-1] = 0, mask.shape[1]
    edges[1:-1] = seams
    pieces, bounds = _pieces_between(np.ascontiguousarray(mask, np.uint8), edges)
    parts = []
    for piece, (top, bottom, first, last) in zip(pieces, bounds):
        if bottom == 0:
            return None
        box = (
            x + int(round(first * scale)),
            y + int(round(top * scale)),
            max(1, int(round((last - first) * scale))),
            max(1, int(round((bottom - top) * scale))),
        )
        parts.append(Region(box=box, mask=piece[top:bottom, first:last]))
    return parts


@njit(cache=True, nogil=True)
def _pieces_between(mask, edges):  # pragma: no cover - compiled; tested through _cut_region
    """The ink of `mask` between each pair of consecutive per-row edges, and each piece's bounds
    (top, bottom, first, last; all 0 for a piece without ink)."""
    rows, columns = mask.shape
    count = edges.shape[0] - 1
    pieces = np.zeros((count, rows, columns), np.uint8)
    bounds = np.zeros((count, 4), np.int64)
    for part in range(count):
        top, bottom, first, last = rows, 0, columns, 0
        for row in range(rows):
            for column in range(max(edges[part, row], 0), min(edges[part + 1, row], columns)):
                if mask[row, column]:
                    pieces[part, row, column] = mask[row, column]
                    top, bottom = min(top, row), row + 1
                    first, last = min(first, column), max(last, column + 1)
        if bottom > 0:
            bounds[part] = (top, bottom, first, last)
    return pieces, bounds


def split_hypotheses(region: Region, line_height: float, config: SplitConfig = DEFAULT_SPLIT,
                     still: bool = False) -> list[list[Region]]:
    """Ways to cut a wide region into 2..max_parts digits along paths that cross the least ink (may be
    none). `still`: the frame is a still photo, where narrower regions are offered cuts too."""
    mask = region.mask
    height, width = mask.shape
    # The mask is at working resolution; the box in frame pixels.
    scale = region.box[2] / width
    line_height_mask = line_height / scale
    narrow = width < config.candidate_width * line_height_mask
    if narrow and not (still and width >= config.still_candidate_width * line_height_mask):
        return []
    # Every cut of every hypothesis is a band of columns; their paths are found together.
    plans: list[list[int]] = []
    bands: list[tuple[int, int]] = []
    for parts in range(2, config.max_parts + 1):
        part_width = width / parts
        if part_width < config.min_part_width * line_height_mask:
            break
        # Two-part cuts are also tried off-centre: touching digits are rarely equally wide ("1" beside "8").
        for offset in (config.narrow_off_centre if narrow else config.off_centre) if parts == 2 else (0.0,):
            plan = []
            for k in range(1, parts):
                centre = int(round((k + offset) * part_width))
                reach = max(1, int(config.cut_search * part_width))
                low, high = max(1, centre - reach), min(width - 1, centre + reach)
                if high > low:
                    plan.append(len(bands))
                    bands.append((low, high))
            if len(plan) == parts - 1:
                plans.append(plan)
    if not plans:
        return []
    paths = _seams(mask, bands, config.step_cost)
    hypotheses = []
    seen: set[tuple[int, ...]] = set()
    for plan in plans:
        seams = [paths[index] for index in plan]
        key = tuple(int(seam.mean()) for seam in seams)
        if key in seen or key != tuple(sorted(set(key))):
            continue
        seen.add(key)
        pieces = _cut_region(region, seams, scale)
        if pieces is not None:
            hypotheses.append(pieces)
    return hypotheses


def choose_hypothesis(log_scores: list[np.ndarray], config: SplitConfig, width_ratio: float) -> int:
    """Index of the best reading: the first (whole) unless a split's weakest part is confident enough.

    The classifier reads many blobs of two touching digits confidently as one digit, so a split need
    not beat the whole reading outright: the wider the blob is for its line, the more the split is
    favoured (`wide_favour` per line height beyond `wide_from`). A split is judged by its least
    confident part, so one good half cannot carry a fragment. A blob narrower than `candidate_width`
    (cut on still photos only) is split only when rejected whole (`narrow_split_floor`).

    Args:
        log_scores: per hypothesis, the log of each part's best digit probability (-inf for a part
            the classifier calls 'not a digit').
        width_ratio: the region's width over its line's digit height.
    """
    weakest = [float(np.min(scores)) for scores in log_scores]
    if len(weakest) < 2:
        return 0
    best = 1 + int(np.argmax(weakest[1:]))
    narrow = width_ratio < config.candidate_width  # offered cuts on a still photo only
    if weakest[0] == -np.inf:
        # A scribble the classifier rejects is not cut into loops that pass for "1"s.
        floor = np.log(config.narrow_split_floor if narrow else config.non_digit_split_floor)
        sure = [index for index in range(1, len(weakest))
                if weakest[index] >= floor and len(log_scores[index]) <= config.non_digit_max_parts]
        return max(sure, key=lambda index: weakest[index]) if sure else 0
    if narrow:
        return 0  # a single digit as wide as two narrow touching ones reads whole confidently
    margin = config.whole_bonus - config.wide_favour * (width_ratio - config.wide_from)
    return best if weakest[best] >= weakest[0] + margin else 0
