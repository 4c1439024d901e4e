"""Group digits into lines (top to bottom) and numbers (left to right, split at wide gaps)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digitrec.types import Box, Detection, NumberReading

GroupedBoxes = Sequence[tuple[float, float, float, float]]
"""The (x, y, w, h) lines are chained on: the digits' boxes themselves, or on a turned page those boxes turned
level (`level_boxes`)."""


@dataclass(frozen=True)
class GroupingConfig:
    same_line_overlap: float = 0.4
    """Two digits are on one line when their heights overlap by this fraction of the shorter one."""
    number_gap: float = 0.6
    """A gap wider than this fraction of the neighbouring digits' mean height starts a new number."""
    narrow_digit_width: float = 0.5
    """A digit narrower than this fraction of its height (an upright '1') counts as this wide about its centre when
    the gaps beside it are measured. Handwriting spaces digits by their centres, so the ink gaps either side of a
    thin '1' are as wide as a space between numbers: '2113' written evenly was read as '21' and '13'."""
    level_angle: float = 2.0
    """A page turned by less than this many degrees is grouped on its digits' boxes as they are; one turned more, on
    the boxes its digits would have on the page turned level (`writing_angle`, `level_boxes`)."""
    max_angle: float = 40.0
    """Steps between neighbouring digits steeper than this many degrees are not along a line of writing."""
    neighbour_reach: float = 2.0
    """A digit's nearest neighbour shows the line's direction when their centres are at most this many of the taller
    one's heights apart and neither is more than `neighbour_size` times the other's height."""
    neighbour_size: float = 1.5
    """How many times taller than a digit its neighbour may be and still show the line's direction."""


DEFAULT_GROUPING = GroupingConfig()


def union_box(boxes: list[Box]) -> Box:
    """The smallest box holding all the given boxes."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def _vertical_overlap(a: Box, b: Box) -> float:
    overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return overlap / max(1, min(a[3], b[3]))


def writing_angle(boxes: list[Box], config: GroupingConfig = DEFAULT_GROUPING) -> float:
    """The direction the lines of writing run in, in degrees (positive: down to the right, as image rows count),
    or 0.0 where it is within `level_angle` of level or nothing shows it.

    Each digit's nearest neighbour of about its size, within `neighbour_reach` heights and not steeper than
    `max_angle`, gives one direction; the median of them is the page's. Neighbours within one number stand closer
    than the next line does, so most directions run along the lines.
    """
    if len(boxes) < 2:
        return 0.0
    b = np.asarray(boxes, float)
    centres = b[:, :2] + b[:, 2:] / 2
    heights = np.maximum(b[:, 3], 1.0)
    dx = centres[None, :, 0] - centres[:, None, 0]
    dy = centres[None, :, 1] - centres[:, None, 1]
    distance = np.hypot(dx, dy)
    taller = np.maximum(heights[:, None], heights[None, :])
    ratio = taller / np.minimum(heights[:, None], heights[None, :])
    usable = (distance <= config.neighbour_reach * taller) & (ratio <= config.neighbour_size)
    np.fill_diagonal(usable, False)
    distance = np.where(usable, distance, np.inf)
    nearest = distance.argmin(axis=1)
    rows = np.flatnonzero(np.isfinite(distance[np.arange(len(b)), nearest]))
    if len(rows) == 0:
        return 0.0
    step_x, step_y = dx[rows, nearest[rows]], dy[rows, nearest[rows]]
    flip = step_x < 0  # the same step seen from the other digit
    angles = np.degrees(np.arctan2(np.where(flip, -step_y, step_y), np.abs(step_x)))
    angles = angles[np.abs(angles) <= config.max_angle]
    if len(angles) == 0:
        return 0.0
    angle = float(np.median(angles))
    return angle if abs(angle) >= config.level_angle else 0.0


def level_boxes(boxes: list[Box], angle: float) -> GroupedBoxes:
    """The boxes of the digits on the page turned by `-angle` degrees (level), as (x, y, w, h): each box's centre
    turns with the page and its width and height stay as they are (at 0.0, the boxes themselves).

    A digit's box on a turned page is not its upright box turned (a slanted digit's box can even be narrower
    turned), so no upright size is taken back from it. What changes is where the digits stand: along a line
    their centres come level, and the gaps between them are measured along the line.
    """
    if angle == 0.0:
        return boxes
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    level = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        lx, ly = cx * cos + cy * sin, -cx * sin + cy * cos
        level.append((lx - w / 2, ly - h / 2, float(w), float(h)))
    return level


def _boxes_to_group(detections: list[Detection], config: GroupingConfig) -> GroupedBoxes:
    boxes = [d.box for d in detections]
    return level_boxes(boxes, writing_angle(boxes, config))


def _group_lines(boxes: GroupedBoxes, config: GroupingConfig) -> list[list[int]]:
    """Indices of the boxes per line, lines top to bottom, each line left to right.

    Digits are chained left to right: each joins the line whose last digit it overlaps most
    in height, so a line may bend as a page held curved does. A page turned by `level_angle`
    or more is chained on its boxes turned level (`writing_angle`).
    """
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][0])
    lines: list[list[int]] = []
    for index in order:
        box = boxes[index]
        best, best_overlap = None, config.same_line_overlap
        for line_index, line in enumerate(lines):
            overlap = _vertical_overlap(boxes[line[-1]], box)
            if overlap >= best_overlap:
                best, best_overlap = line_index, overlap
        if best is None:
            lines.append([index])
        else:
            lines[best].append(index)
    # Lines in the order of their mean centre's height (np.mean's figure for a level page, whose centres are whole
    # or half pixels and sum exactly, at a fraction of its cost).
    lines.sort(key=lambda line: sum(boxes[i][1] + boxes[i][3] / 2 for i in line) / len(line))
    return lines


def group_numbers(detections: list[Detection], config: GroupingConfig = DEFAULT_GROUPING) -> list[NumberReading]:
    """Numbers in reading order; sets each detection's `number` to the index of its number."""
    numbers: list[NumberReading] = []
    boxes = _boxes_to_group(detections, config)
    for line_number, line in enumerate(_group_lines(boxes, config)):
        current = [line[0]]
        for previous, index in zip(line, line[1:]):
            left, right = boxes[previous], boxes[index]
            left_reach = max(left[2], config.narrow_digit_width * left[3]) / 2  # from its centre
            right_reach = max(right[2], config.narrow_digit_width * right[3]) / 2
            gap = (right[0] + right[2] / 2 - right_reach) - (left[0] + left[2] / 2 + left_reach)
            if gap > config.number_gap * (left[3] + right[3]) / 2:
                numbers.append(_number(detections, current, line_number))
                current = []
            current.append(index)
        numbers.append(_number(detections, current, line_number))
    for number_index, number in enumerate(numbers):
        for index in number.detections:
            detections[index].number = number_index
    return numbers


def _number(detections: list[Detection], members: list[int], line: int) -> NumberReading:
    return NumberReading(
        text="".join(str(detections[i].digit) for i in members),
        box=union_box([detections[i].box for i in members]),
        confidence=math.prod(detections[i].confidence for i in members),
        detections=list(members),
        line=line,
    )
