"""Cut blobs of touching digits into single digits: propose cuts here, let the classifier choose."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.types import Region


@dataclass(frozen=True)
class SplitConfig:
    candidate_width: float = 0.95
    """A region wider than this multiple of its line's digit height may hold touching digits."""
    max_parts: int = 4
    min_part_width: float = 0.3
    """Each cut-off part is at least this fraction of the line's digit height wide."""
    cut_search: float = 0.25
    """A cut is placed at the thinnest ink column within this fraction of a part's width of the even cut."""
    whole_bonus: float = 0.15
    """Log-probability margin a split must win by: a wide digit ('5' with a long flag) stays whole."""


DEFAULT_SPLIT = SplitConfig()


def line_heights(regions: list[Region]) -> np.ndarray:
    """For each region, the median height of the regions beside it on its line (itself included)."""
    if not regions:
        return np.zeros(0)
    boxes = np.array([r.box for r in regions], float)
    top, bottom = boxes[:, 1], boxes[:, 1] + boxes[:, 3]
    overlap = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    same_line = overlap >= 0.5 * np.minimum(boxes[:, 3][:, None], boxes[:, 3][None, :])
    heights = np.where(same_line, boxes[:, 3][None, :], np.nan)
    return np.nanmedian(heights, axis=1)


def _cut_region(region: Region, cuts: list[int], scale: float) -> list[Region] | None:
    """The region cut at mask columns `cuts` into parts with their own tight boxes; None if a part is empty."""
    mask = region.mask
    x, y, _, _ = region.box
    parts = []
    edges = [0, *cuts, mask.shape[1]]
    for left, right in zip(edges, edges[1:]):
        piece = mask[:, left:right]
        rows = np.flatnonzero(piece.any(axis=1))
        cols = np.flatnonzero(piece.any(axis=0))
        if len(rows) == 0:
            return None
        top, bottom = rows[0], rows[-1] + 1
        first, last = cols[0], cols[-1] + 1
        box = (
            x + int(round((left + first) * scale)),
            y + int(round(top * scale)),
            max(1, int(round((last - first) * scale))),
            max(1, int(round((bottom - top) * scale))),
        )
        parts.append(Region(box=box, mask=piece[top:bottom, first:last]))
    return parts


def split_hypotheses(region: Region, line_height: float, config: SplitConfig = DEFAULT_SPLIT) -> list[list[Region]]:
    """Ways to cut a wide region into 2..max_parts digits at its thinnest ink columns (may be none)."""
    mask = region.mask
    height, width = mask.shape
    # The mask is at working resolution; the box in frame pixels.
    scale = region.box[2] / width
    line_height_mask = line_height / scale
    if width < config.candidate_width * line_height_mask:
        return []
    profile = np.convolve(mask.sum(axis=0).astype(float), np.ones(3) / 3, mode="same")
    hypotheses = []
    for parts in range(2, config.max_parts + 1):
        part_width = width / parts
        if part_width < config.min_part_width * line_height_mask:
            break
        cuts = []
        for k in range(1, parts):
            centre = int(round(k * part_width))
            reach = max(1, int(config.cut_search * part_width))
            low, high = max(1, centre - reach), min(width - 1, centre + reach)
            cuts.append(low + int(np.argmin(profile[low:high])))
        if len(set(cuts)) != len(cuts) or cuts != sorted(cuts):
            continue
        pieces = _cut_region(region, cuts, scale)
        if pieces is not None:
            hypotheses.append(pieces)
    return hypotheses


def cannot_beat_whole(whole_log_confidence: float, config: SplitConfig = DEFAULT_SPLIT) -> bool:
    """True when no split can be chosen over a whole read with this log-confidence, whatever the
    parts score: a part's log-confidence is at most 0, and a split must win by `whole_bonus`."""
    return whole_log_confidence + config.whole_bonus > 0.0


def choose_hypothesis(log_scores: list[np.ndarray], config: SplitConfig = DEFAULT_SPLIT) -> int:
    """Index of the best reading: the first (whole) unless a split's mean log-confidence beats it by a margin.

    Args:
        log_scores: per hypothesis, the log of each part's best digit probability (-inf for a part
            the classifier calls 'not a digit').
    """
    means = [float(np.mean(scores)) for scores in log_scores]
    best = int(np.argmax(means))
    if best != 0 and means[best] < means[0] + config.whole_bonus:
        return 0
    return best
