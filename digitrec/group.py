"""Group digits into lines (top to bottom) and numbers (left to right, split at wide gaps)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from digitrec.types import Box, Detection, NumberReading


@dataclass(frozen=True)
class GroupingConfig:
    same_line_overlap: float = 0.4
    """Two digits are on one line when their heights overlap by this fraction of the shorter one."""
    number_gap: float = 0.6
    """A gap wider than this fraction of the neighbouring digits' mean height starts a new number."""


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


def group_lines(detections: list[Detection], config: GroupingConfig = DEFAULT_GROUPING) -> list[list[int]]:
    """Indices of detections per line, lines top to bottom, each line left to right.

    Digits are chained left to right: each joins the line whose last digit it overlaps most
    in height, so a line may slope or bend as a page held at an angle does.
    """
    order = sorted(range(len(detections)), key=lambda i: detections[i].box[0])
    lines: list[list[int]] = []
    for index in order:
        box = detections[index].box
        best, best_overlap = None, config.same_line_overlap
        for line_index, line in enumerate(lines):
            overlap = _vertical_overlap(detections[line[-1]].box, box)
            if overlap >= best_overlap:
                best, best_overlap = line_index, overlap
        if best is None:
            lines.append([index])
        else:
            lines[best].append(index)
    # Box centres are whole or half pixels, so their sum is exact in any order (np.mean's figure, at a
    # fraction of its cost).
    lines.sort(key=lambda line: sum(detections[i].box[1] + detections[i].box[3] / 2 for i in line) / len(line))
    return lines


def group_numbers(detections: list[Detection], config: GroupingConfig = DEFAULT_GROUPING) -> list[NumberReading]:
    """Numbers in reading order; sets each detection's `number` to the index of its number."""
    numbers: list[NumberReading] = []
    for line_number, line in enumerate(group_lines(detections, config)):
        current = [line[0]]
        for previous, index in zip(line, line[1:]):
            left, right = detections[previous].box, detections[index].box
            gap = right[0] - (left[0] + left[2])
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
