"""Digits into lines and numbers, on a level page and on one held at an angle."""

import math

import pytest

from digitrec.group import DEFAULT_GROUPING, GroupingConfig, group_numbers, writing_angle
from digitrec.types import Detection

NEVER_LEVELLED = GroupingConfig(level_angle=90.0)


def _written(numbers: list[str], angle: float, height: float = 40.0, origin=(200.0, 300.0),
             line_gap: float = 0.0) -> list[Detection]:
    """Digits `height` tall and 0.6 of it wide, 0.15 of it apart within a number and 1.2 of it between numbers,
    along a line turned `angle` degrees (down to the right); each box the axis-aligned box of the digit's turned
    rectangle. `line_gap` moves the whole line down, across the writing, by that many heights."""
    theta = math.radians(angle)
    along, across = (math.cos(theta), math.sin(theta)), (-math.sin(theta), math.cos(theta))
    width = 0.6 * height
    box_w = width * abs(math.cos(theta)) + height * abs(math.sin(theta))
    box_h = width * abs(math.sin(theta)) + height * abs(math.cos(theta))
    detections, position = [], 0.0
    for number in numbers:
        for character in number:
            centre = position + width / 2
            x = origin[0] + centre * along[0] + line_gap * height * across[0]
            y = origin[1] + centre * along[1] + line_gap * height * across[1]
            box = (round(x - box_w / 2), round(y - box_h / 2), round(box_w), round(box_h))
            detections.append(Detection(box=box, digit=int(character), confidence=0.9))
            position += width + 0.15 * height
        position += 1.2 * height - 0.15 * height
    return detections


@pytest.mark.parametrize("angle", [-30.0, -15.0, 12.0, 25.0])
def test_the_writings_angle_is_found_from_neighbouring_digits(angle):
    assert writing_angle([d.box for d in _written(["3141", "59", "265"], angle)]) == pytest.approx(angle, abs=2.0)


def test_a_page_nearly_level_counts_as_level():
    assert writing_angle([d.box for d in _written(["3141", "59"], 1.0)]) == 0.0
    assert writing_angle([d.box for d in _written(["3141", "59"], 4.0)]) == pytest.approx(4.0, abs=1.0)
    assert writing_angle([d.box for d in _written(["7"], 25.0)]) == 0.0  # one digit shows no direction


@pytest.mark.parametrize("angle", [-30.0, 30.0])
def test_numbers_on_a_page_turned_by_thirty_degrees_are_read_whole_on_one_line(angle):
    written = ["3141", "59", "265"]
    one_line = [(text, 0) for text in written]
    assert [(n.text, n.line) for n in group_numbers(_written(written, angle))] == one_line
    # The same boxes grouped as they stand: each step down (or up) the line starts a line of its own.
    assert [(n.text, n.line) for n in group_numbers(_written(written, angle), NEVER_LEVELLED)] != one_line


def test_two_lines_on_a_turned_page_stay_two_lines_in_reading_order():
    page = _written(["12", "34"], 25.0) + _written(["567", "8"], 25.0, line_gap=2.0)
    numbers = group_numbers(page)
    assert [(n.text, n.line) for n in numbers] == [("12", 0), ("34", 0), ("567", 1), ("8", 1)]
    assert [page[i].number for i in range(len(page))] == [0, 0, 1, 1, 2, 2, 2, 3]


def test_a_level_page_is_grouped_on_its_boxes_as_they_stand():
    page = _written(["2026", "12", "7"], 0.0)
    assert [n.text for n in group_numbers(page)] == ["2026", "12", "7"]
    assert [n.text for n in group_numbers(page, DEFAULT_GROUPING)] == [
        n.text for n in group_numbers(page, NEVER_LEVELLED)
    ]
    assert group_numbers(page)[0].box == (200, 300 - 20, round(4 * 24 + 3 * 6), 40)


@pytest.mark.parametrize("angle", [-5.0, -4.0, 4.0, 5.0])
def test_a_table_on_a_page_turned_a_few_degrees_is_read_row_by_row(angle):
    # Columns 600 px apart: across that gap a 4-5 degree slope moves a row by most of a digit's height, so the
    # next column's number was chained onto the row above or below (a QA find: a photographed table read in
    # diagonals).
    slope = math.tan(math.radians(angle))

    def number(text: str, x: float, y: float) -> list[Detection]:
        return [Detection(box=(round(x + 32 * i), round(y + slope * (x + 32 * i)), 28, 40), digit=int(c),
                          confidence=1.0) for i, c in enumerate(text)]

    rows = [("12", "34"), ("56", "78"), ("90", "11")]
    table = [d for row, y in zip(rows, (200, 260, 320)) for text, x in zip(row, (100, 700)) for d in number(text, x, y)]
    assert [n.text for n in group_numbers(table)] == ["12", "34", "56", "78", "90", "11"]
    assert [n.text for n in group_numbers(table, NEVER_LEVELLED)] != ["12", "34", "56", "78", "90", "11"]


def _thin_ones(text: str, x: float, pitch: float) -> list[Detection]:
    """Digits 60 px tall written `pitch` heights apart centre to centre: '1' upright and 8 px wide, others 45."""
    return [Detection(box=(round(x + pitch * 60 * i - (4 if c == "1" else 22)), 100, 8 if c == "1" else 45, 60),
                      digit=int(c), confidence=1.0) for i, c in enumerate(text)]


@pytest.mark.parametrize("text, pitch", [("2113", 1.0), ("4107", 1.1), ("9181", 1.2), ("11", 1.0)])
def test_a_thin_one_written_at_the_numbers_pitch_stays_in_its_number(text, pitch):
    # Its ink gaps are wide only because a '1' is thin; digits are spaced by their centres.
    assert [n.text for n in group_numbers(_thin_ones(text, 200, pitch))] == [text]


def test_numbers_ending_and_starting_with_a_one_stay_apart_across_a_digit_wide_space():
    written = _thin_ones("21", 200, 1.0) + _thin_ones("13", 200 + 2 * 60 + 60, 1.0)  # one blank digit between
    assert [n.text for n in group_numbers(written)] == ["21", "13"]
