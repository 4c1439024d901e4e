"""Cut blobs of touching digits into single digits: propose cuts here, let the classifier choose."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.types import Region


@dataclass(frozen=True)
class SplitConfig:
    candidate_width: float = 1.1
    """A region wider than this multiple of its line's digit height may hold touching digits."""
    max_parts: int = 4
    min_part_width: float = 0.3
    """Each cut-off part is at least this fraction of the line's digit height wide."""
    cut_search: float = 0.15
    """A cut runs within this fraction of a part's width of the even cut."""
    off_centre: tuple[float, ...] = (0.0, -0.2, 0.2, -0.4, 0.4)
    """Where two-part cuts are centred, as shifts from the middle in part widths."""
    step_cost: float = 0.3
    """Cost of a cut moving one column sideways, against 1 per ink pixel it crosses."""
    whole_bonus: float = 0.15
    """Log-probability margin a split must win by: a wide digit ('5' with a long flag) stays whole."""
    non_digit_split_floor: float = 0.97
    """A region read whole as 'not a digit' is split only if every part is read at least this surely."""
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


def line_heights(regions: list[Region]) -> np.ndarray:
    """For each region, the median height of the regions beside it on its line (itself included)."""
    if not regions:
        return np.zeros(0)
    boxes = np.array([r.box for r in regions], float)
    top, bottom = boxes[:, 1], boxes[:, 1] + boxes[:, 3]
    overlap = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    same_line = overlap >= 0.5 * np.minimum(boxes[:, 3][:, None], boxes[:, 3][None, :])
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
    gap or slip between overlapping strokes where a straight cut would slice through a digit. All
    bands run through one dynamic programme, row by row. Returns (bands, rows) columns of the mask.
    """
    rows = mask.shape[0]
    width = max(high - low for low, high in bands)
    cost = np.full((len(bands), rows, width), np.inf)
    for index, (low, high) in enumerate(bands):
        cost[index, :, : high - low] = mask[:, low:high]
    # The running cost of the best path to each column, between walls that no path can cross.
    walled = np.full((len(bands), width + 2), np.inf)
    total = walled[:, 1:-1]
    total[:] = cost[:, 0]
    moves = np.zeros((rows, len(bands), width), np.int8)
    for row in range(1, rows):
        from_left = walled[:, :-2] + step_cost
        from_right = walled[:, 2:] + step_cost
        best = np.minimum(np.minimum(from_left, total), from_right)
        # Ties go left, then straight down, then right.
        moves[row] = np.where(from_left == best, -1, np.where(total == best, 0, 1))
        total[:] = best + cost[:, row]
    which = np.arange(len(bands))
    path = np.empty((len(bands), rows), np.int64)
    path[:, -1] = total.argmin(axis=1)
    for row in range(rows - 1, 0, -1):
        path[:, row - 1] = path[:, row] + moves[row, which, path[:, row]]
    return path + np.array([low for low, _ in bands])[:, None]


def _cut_region(region: Region, seams: list[np.ndarray], scale: float) -> list[Region] | None:
    """The region cut along `seams` (per-row columns, left to right) into parts with their own tight boxes.

    None if a part holds no ink.
    """
    mask = region.mask
    x, y, _, _ = region.box
    columns = np.arange(mask.shape[1])[None, :]
    edges = [np.zeros(mask.shape[0], np.int64), *seams, np.full(mask.shape[0], mask.shape[1])]
    parts = []
    for left, right in zip(edges, edges[1:]):
        piece = mask * ((columns >= left[:, None]) & (columns < right[:, None]))
        rows = np.flatnonzero(piece.any(axis=1))
        cols = np.flatnonzero(piece.any(axis=0))
        if len(rows) == 0:
            return None
        top, bottom = rows[0], rows[-1] + 1
        first, last = cols[0], cols[-1] + 1
        box = (
            x + int(round(first * scale)),
            y + int(round(top * scale)),
            max(1, int(round((last - first) * scale))),
            max(1, int(round((bottom - top) * scale))),
        )
        parts.append(Region(box=box, mask=piece[top:bottom, first:last]))
    return parts


def split_hypotheses(region: Region, line_height: float, config: SplitConfig = DEFAULT_SPLIT) -> list[list[Region]]:
    """Ways to cut a wide region into 2..max_parts digits along paths that cross the least ink (may be none)."""
    mask = region.mask
    height, width = mask.shape
    # The mask is at working resolution; the box in frame pixels.
    scale = region.box[2] / width
    line_height_mask = line_height / scale
    if width < config.candidate_width * line_height_mask:
        return []
    # Every cut of every hypothesis is a band of columns; their paths are found together.
    plans: list[list[int]] = []
    bands: list[tuple[int, int]] = []
    for parts in range(2, config.max_parts + 1):
        part_width = width / parts
        if part_width < config.min_part_width * line_height_mask:
            break
        # Two-part cuts are also tried off-centre: touching digits are rarely equally wide ("1" beside "8").
        for offset in config.off_centre if parts == 2 else (0.0,):
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


def choose_hypothesis(log_scores: list[np.ndarray], config: SplitConfig = DEFAULT_SPLIT,
                      width_ratio: float = 0.0) -> int:
    """Index of the best reading: the first (whole) unless a split's weakest part is confident enough.

    The classifier reads many blobs of two touching digits confidently as one digit, so a split need
    not beat the whole reading outright: the wider the blob is for its line, the more the split is
    favoured (`wide_favour` per line height beyond `wide_from`). A split is judged by its least
    confident part, so one good half cannot carry a fragment.

    Args:
        log_scores: per hypothesis, the log of each part's best digit probability (-inf for a part
            the classifier calls 'not a digit').
        width_ratio: the region's width over its line's digit height.
    """
    weakest = [float(np.min(scores)) for scores in log_scores]
    if len(weakest) < 2:
        return 0
    best = 1 + int(np.argmax(weakest[1:]))
    if weakest[0] == -np.inf and weakest[best] < np.log(config.non_digit_split_floor):
        return 0  # a wide scribble the classifier rejects is not cut into loops that pass for "1"s
    margin = config.whole_bonus - config.wide_favour * (width_ratio - config.wide_from)
    return best if weakest[best] >= weakest[0] + margin else 0
