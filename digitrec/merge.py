"""Join the side-by-side pieces of a broken digit: propose joins here, let the classifier choose.

A faint or thin stroke can fade out across the middle of a digit, leaving its two halves as two
regions beside each other (a '0' as two arcs, each of which reads as a '0' or a '1' alone). The
segmenter already joins pieces stacked one above the other; pieces side by side look too much like
two narrow digits written close (an '11') to join by shape alone. So two close neighbours that are
together no wider than a digit are read both ways, apart and joined, in the frame's one batch, and
the join is kept only when the classifier reads it more surely than the weaker of the two apart. A flag
lifted off a digit's top and written to the right of it (a '5''s) is offered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.group import union_box
from digitrec.types import Region


@dataclass(frozen=True)
class MergeConfig:
    max_gap: float = 0.1
    """Largest gap between the two pieces, as a fraction of their line's digit height..."""
    max_width: float = 1.0
    """...and widest they may be together (a broken digit is no wider than a digit)..."""
    max_height: float = 1.3
    """...and tallest, in the same unit..."""
    min_vertical_overlap: float = 0.5
    """...and they lie side by side: their rows overlap by this fraction of the shorter one; or one is a flag
    at the other's top..."""
    flag_height: float = 0.45
    """...at most this fraction of the other's height, lying within the top half of the other's rows and no
    more than half the other's height above it (a '5' whose flag was lifted off its body, a '7''s bar),
    together at most `flag_max_width` heights wide (a '5''s flag reaches past its body)."""
    flag_max_width: float = 1.3
    margin: float = 0.1
    """Log-probability by which the joined reading must beat the weaker piece's."""


DEFAULT_MERGE = MergeConfig()


def merge_candidates(regions: list[Region], heights: np.ndarray, splittable: list[bool],
                     config: MergeConfig = DEFAULT_MERGE) -> list[tuple[int, int]]:
    """Pairs (i, j) of regions that may be the two halves of one broken digit, each region in one pair
    at most; regions that may be cut into touching digits are left alone."""
    if len(regions) < 2:
        return []
    boxes = np.array([region.box for region in regions], float)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    height = np.maximum(heights[:, None], heights[None, :])
    gap = np.maximum(x0[:, None], x0[None, :]) - np.minimum(x1[:, None], x1[None, :])
    width = np.maximum(x1[:, None], x1[None, :]) - np.minimum(x0[:, None], x0[None, :])
    tall = np.maximum(y1[:, None], y1[None, :]) - np.minimum(y0[:, None], y0[None, :])
    rows = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    shorter = np.minimum(boxes[:, 3][:, None], boxes[:, 3][None, :])
    h = boxes[:, 3]
    # flag[i, j]: region i is a flag at region j's top.
    flag = ((h[:, None] <= config.flag_height * h[None, :]) & (y1[:, None] <= y0[None, :] + 0.5 * h[None, :])
            & (y0[:, None] >= y0[None, :] - 0.5 * h[None, :]))
    side_by_side = (rows >= config.min_vertical_overlap * shorter) & (width <= config.max_width * height)
    flagged = (flag | flag.T) & (width <= config.flag_max_width * height)
    eligible = (gap <= config.max_gap * height) & (tall <= config.max_height * height) & (side_by_side | flagged)
    eligible &= ~np.eye(len(regions), dtype=bool)
    blocked = np.array(splittable, bool)
    eligible[blocked, :] = False
    eligible[:, blocked] = False
    # Closest pairs first; a region joins at most one other.
    order = np.argsort(np.where(eligible, gap, np.inf), axis=None)
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for flat in order:
        i, j = divmod(int(flat), len(regions))
        if not eligible[i, j]:
            break
        if i < j and i not in used and j not in used:
            used.update((i, j))
            pairs.append((i, j))
    return pairs


def joined_region(first: Region, second: Region) -> Region:
    """One region holding the ink of both (each region's mask covers its box, as `Region` says)."""
    box = union_box([first.box, second.box])
    mask = np.zeros((box[3], box[2]), np.uint8)
    for region in (first, second):
        x, y, w, h = region.box
        mask[y - box[1] : y - box[1] + h, x - box[0] : x - box[0] + w] |= region.mask
    return Region(box=box, mask=mask)


def choose_join(apart: np.ndarray, joined: float, config: MergeConfig = DEFAULT_MERGE) -> bool:
    """Whether to read the two pieces as one digit: the joined reading's log confidence (-inf for
    'not a digit') beats the weaker piece's by `margin`."""
    return joined > -np.inf and joined >= float(np.min(apart)) + config.margin
