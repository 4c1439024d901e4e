"""Segmentation: which strokes make one digit."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from digitrec import binarise
from digitrec.segment import (
    DEFAULT_SEGMENTATION,
    _Hole,
    _lightness_of,
    _lines_of_form,
    _max_pool_2x2,
    _merge_groups,
    _under_pooled,
    segment_digits,
)
from digitrec.synth import MnistGlyphs, make_video

FONT = cv2.FONT_HERSHEY_SIMPLEX


def _page_with(texts: list[tuple[str, tuple[int, int]]], height: int = 40) -> np.ndarray:
    """A white 640x480 page with each text written in dark ink, its baseline-left at the point given."""
    page = np.full((480, 640, 3), 245, np.uint8)
    scale = cv2.getFontScaleFromHeight(FONT, height, 3)
    for text, origin in texts:
        cv2.putText(page, text, origin, FONT, scale, (40, 30, 30), 3, cv2.LINE_AA)
    return page


def _boxes(page: np.ndarray) -> list[tuple[int, int, int, int]]:
    regions, _ = segment_digits(page)
    return sorted(region.box for region in regions)


def _assert_boxes_match(found: list, drawn: list, count: int) -> None:
    """The same `count` boxes, each side within 2 px (both lists in the same order)."""
    assert len(found) == len(drawn) == count, (found, drawn)
    for box, expected in zip(found, drawn):
        assert all(abs(a - b) <= 2 for a, b in zip(box, expected)), (box, expected)


def test_digits_of_two_lines_written_close_together_stay_apart():
    # A line of digits, and below its '0' a '9' of the next line, 6 px under it.
    page = _page_with([("40 7 2", (100, 140)), ("9", (133, 178))])
    boxes = _boxes(page)
    tall = [box for box in boxes if box[3] > 60]
    assert tall == [], f"two lines merged into one region: {boxes}"
    column = [box for box in boxes if box[0] < 145 < box[0] + box[2]]
    assert len(column) == 2, boxes


def test_a_digit_broken_across_its_waist_is_still_one_region():
    page = _page_with([("8 3 5 2", (100, 140))])
    # Break the '8' into a top and a bottom loop with a thin strip of paper.
    region = _boxes(page)[0]
    x, y, w, h = region
    page[y + h // 2 - 1 : y + h // 2 + 2, x - 2 : x + w + 2] = 245
    broken = _boxes(page)
    assert len(broken) == 4 and broken[0][3] >= 0.9 * h, broken


def test_a_digit_whose_middle_faded_out_is_one_region():
    page = _page_with([("2 3 5 7 4", (100, 140))])
    x, y, w, h = _boxes(page)[0]
    # The pen skipped across the middle third of the '2': a top arc and a bottom stroke are left,
    # the gap between them large beside either piece but small beside the digits of the line.
    page[y + h // 3 : y + 2 * h // 3 - 2, x - 2 : x + w + 2] = 245
    faded = _boxes(page)
    assert len(faded) == 5 and faded[0][3] >= 0.9 * h, faded


def test_big_touching_digits_written_close_up_are_not_erased_as_a_ruled_line():
    # A '2' and an '8' 100 px tall in a thick pen, the '8' pushed into the '2': together wider than
    # a ruled line must be long (15 % of the frame's width), but far too broad to be one.
    page = np.full((480, 640, 3), 245, np.uint8)
    scale = cv2.getFontScaleFromHeight(FONT, 100, 14)
    (two_width, _), _ = cv2.getTextSize("2", FONT, scale, 14)
    cv2.putText(page, "2", (200, 300), FONT, scale, (40, 30, 30), 14, cv2.LINE_AA)
    cv2.putText(page, "8", (200 + two_width - 24, 300), FONT, scale, (40, 30, 30), 14, cv2.LINE_AA)
    ink = cv2.boundingRect(cv2.findNonZero((page[:, :, 0] < 128).astype(np.uint8)))
    assert ink[2] > 0.15 * 640
    boxes = _boxes(page)
    assert len(boxes) == 1, boxes
    assert all(abs(found - drawn) <= 3 for found, drawn in zip(boxes[0], ink)), (boxes, ink)


def test_ruled_lines_under_digits_are_still_removed():
    page = _page_with([("4 7 1 9", (100, 140)), ("3 8 5", (100, 240))])
    for y in (141, 241, 341):  # lines the digits sit on, and one empty line, slightly tilted
        cv2.line(page, (0, y), (639, y + 12), (120, 90, 60), 2, cv2.LINE_AA)
    boxes = _boxes(page)
    assert len(boxes) == 7 and all(box[3] < 60 for box in boxes), boxes


@pytest.mark.parametrize("shape", [(7, 9), (8, 10), (1, 1), (240, 321)])
def test_the_compiled_pooling_and_its_inverse_match_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    mask = (rng.random(shape) < 0.3).astype(np.uint8)
    height, width = shape
    padded = np.zeros((height + height % 2, width + width % 2), np.uint8)
    padded[:height, :width] = mask
    expected = padded[0::2, 0::2] | padded[1::2, 0::2] | padded[0::2, 1::2] | padded[1::2, 1::2]
    pooled = _max_pool_2x2(mask)
    assert np.array_equal(pooled, expected)
    lines = (rng.random(pooled.shape) < 0.5).astype(np.uint8)
    doubled = cv2.resize(lines, (2 * lines.shape[1], 2 * lines.shape[0]), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(_under_pooled(lines, mask), doubled[:height, :width] & mask)


def test_digits_written_across_a_ruled_line_keep_the_ink_over_it():
    # Digits in dark pen on blue rules dark enough to be taken for ink, one rule through their lower
    # third and the '0' and '2' lying along another: the rules go, every digit stays whole.
    plain = _page_with([("2 0 3 5", (100, 150)), ("0 2", (100, 300))], height=50)
    whole = _boxes(plain)
    page = plain.copy()
    for y in (136, 299, 400):  # through the first line's digits, under the second's, and an empty one
        cv2.line(page, (0, y), (639, y + 4), (170, 140, 110), 2, cv2.LINE_AA)
    page = np.minimum(page, plain)  # ink over the rule is as dark as the ink, darker than the rule
    ruled = _boxes(page)
    assert len(ruled) == len(whole) == 6, (ruled, whole)
    in_reading_order = lambda box: (box[1] // 100, box[0])  # noqa: E731
    for found, drawn in zip(sorted(ruled, key=in_reading_order), sorted(whole, key=in_reading_order)):
        assert all(abs(a - b) <= 2 for a, b in zip(found, drawn)), (found, drawn)
    # Erasing the rules whole, as before, cuts the digits at them.
    erased_whole = replace(DEFAULT_SEGMENTATION, ink_on_line_ratio=0.0)
    cut = sorted(region.box for region in segment_digits(page, erased_whole)[0])
    assert sum(box[3] for box in cut) < 0.8 * sum(box[3] for box in whole), cut


def test_a_ruled_line_as_dark_as_the_ink_is_still_erased_across_digits():
    # A rule printed as dark as the pen cannot be told from the ink over it: it is erased whole (the
    # digits lose the stroke under it), never kept to join the digits into one long region.
    page = _page_with([("2 0 3 5", (100, 150))], height=50)
    cv2.line(page, (0, 136), (639, 140), (40, 30, 30), 2, cv2.LINE_AA)
    boxes = _boxes(page)
    assert len(boxes) >= 3 and all(box[2] < 40 and box[3] < 40 for box in boxes), boxes


def test_digits_crossing_a_rule_that_holds_much_of_their_ink_are_kept_whole():
    # A light rule through the lower third of thick digits: a large part of what is found as the line is
    # their ink, so the line's lightness is measured where nothing crosses it, and the ink over it stays.
    plain = _page_with([("2 0 3 5", (100, 150))], height=50)
    page = plain.copy()
    cv2.line(page, (0, 138), (639, 138), (190, 180, 170), 2)
    page = np.minimum(page, plain)
    whole = _boxes(plain)
    ruled = _boxes(page)
    _assert_boxes_match(ruled, whole, 4)


def test_a_line_is_measured_on_its_own_pixels_unless_it_is_a_broad_band():
    gray = np.full((60, 100), 180, np.uint8)  # light 180/200 = 0.9 on paper of 200
    paper = np.full_like(gray, 200)
    lines = np.zeros_like(gray)
    lines[20:22, :] = 1  # a thin rule...
    mask = lines.copy()
    mask[10:40, 50:53] = 1  # ...crossed by a stroke of ink
    gray[10:40, 50:53] = 40
    light = _lightness_of(lines, mask, gray, paper)
    assert len(light) == 2 * (100 - 3) and np.allclose(light, 0.9)  # not the ink over it
    # A band too broad to have ink-free pixels beside its own (a page's edge, the desk below it) is measured
    # on all its pixels: a short light stroke found with it has clear pixels, but too few to speak for both.
    band = np.zeros_like(gray)
    band[40:55, :] = 1
    gray[40:55, :] = 60
    band[5, 10:40] = 1
    light = _lightness_of(band, band, gray, paper)
    assert len(light) == 15 * 100 + 30 and np.quantile(light, 0.25) == np.float32(0.3)


def test_thin_rules_tilted_between_the_line_kernels_are_found_under_the_digits_on_them():
    # One-pixel rules dropping 50 px across the page (4.5 degrees, between the kernels' 0 and 7): the openings
    # miss them, so each joins the digits written on it into one long region that is no digit. They are found
    # in those long flat regions and erased there, and every digit stands as on plain paper.
    plain = _page_with([("4 7 1 9", (60, 150)), ("3 8 5", (60, 300))])
    page = plain.copy()
    for y in range(94, 400, 50):
        cv2.line(page, (0, y), (639, y + 50), (200, 170, 140), 1, cv2.LINE_AA)
    page = np.minimum(page, plain)
    whole = _boxes(plain)
    ruled = _boxes(page)
    _assert_boxes_match(ruled, whole, 7)
    # The kernels alone lose the digits joined to the rules.
    kernels_only = replace(DEFAULT_SEGMENTATION, tilted_component_length=float("inf"))
    assert len(segment_digits(page, kernels_only)[0]) < len(whole)


def test_a_dark_rim_along_the_frame_edge_does_not_swallow_the_digits_inside_its_box():
    # A dark column down the frame's left edge and a dark bottom row: one L-shaped component whose box holds
    # every digit. By the piece rule the grouping would join each digit to it, and the joined group, touching
    # the edge, would be dropped; a component far bigger than a digit is joined to nothing. Here the rim is
    # straight enough for the ruled-line search to take it, so that search is turned off: in a real frame the
    # rim's darkness varies along it, and what the line erasing keeps of it is no line.
    plain = _page_with([("4 7 1 9", (60, 150)), ("3 8 5", (60, 300))])
    page = plain.copy()
    page[60:, :2] = 90
    page[-2:, :400] = 90
    no_line_search = replace(DEFAULT_SEGMENTATION, horizontal_line_length=2.0, vertical_line_length=2.0)
    found = sorted(region.box for region in segment_digits(page, no_line_search)[0])
    whole = _boxes(plain)
    _assert_boxes_match(found, whole, 7)
    # The rim's column and row are also bands along the frame's edge, which join nothing either (session 36): with
    # the first rule off the digits are still kept (the next test checks that rule alone).
    without_oversized = segment_digits(page, replace(no_line_search, oversized_component=float("inf")))[0]
    _assert_boxes_match(sorted(region.box for region in without_oversized), whole, 7)


def test_a_component_far_bigger_than_a_digit_is_joined_to_none_of_the_digits_in_its_box():
    # Five digits 30 px tall on a line, a broken '5' whose flag sits just above its body, and the edge of the
    # page: a thin L whose box holds all of them. Each digit lies inside that box, so by the piece rule every
    # one of them would join it (and be dropped with it); the flag still joins its '5'.
    digits = [(40 + 40 * i, 100, 24, 30) for i in range(5)]
    flag = (260, 92, 20, 6)
    body = (258, 100, 22, 30)
    page_edge = (10, 20, 400, 300)
    boxes = np.array([*digits, flag, body, page_edge], np.int32)
    groups = sorted(sorted(group) for group in _merge_groups(boxes, DEFAULT_SEGMENTATION, digit_height=30.0))
    assert groups == [[0], [1], [2], [3], [4], [5, 6], [7]], groups
    without_the_limit = replace(DEFAULT_SEGMENTATION, oversized_component=float("inf"))
    assert len(_merge_groups(boxes, without_the_limit, digit_height=30.0)) == 1


NOISY_VIDEO_ON_A_DESK = 121
"""A noisy hand-held video (MNIST test digits, the first 3 000) whose first frame shows a dark desk beside the page."""


def test_specks_of_noise_on_a_dark_desk_are_not_regions(mnist):
    # The ink threshold is relative to the light around, so on the desk it lets smaller swings through, and the
    # noise there crosses it in digit-sized specks; they stand out from the desk by less than 2.5 times the noise.
    glyphs = MnistGlyphs(mnist.x_test[:3000], mnist.y_test[:3000])
    video = make_video(NOISY_VIDEO_ON_A_DESK, glyphs, frames=1, condition="noisy")
    frame, truth = video.frames[0], [digit.box for digit in video.truth[0].digits]
    assert binarise.sensor_noise(binarise.ink_channel(frame)) > 3  # clean frames' noise is 0-3 grey levels

    def on_a_digit(box) -> bool:
        x, y = box[0] + box[2] / 2, box[1] + box[3] / 2
        return any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in truth)

    everything, _ = segment_digits(frame, replace(DEFAULT_SEGMENTATION, min_contrast_to_noise=0.0))
    kept, _ = segment_digits(frame)
    assert sum(on_a_digit(region.box) for region in kept) == sum(on_a_digit(region.box) for region in everything) == len(truth)
    strays = [region.box for region in everything if not on_a_digit(region.box)]
    assert len(strays) >= 8 and len([region for region in kept if not on_a_digit(region.box)]) <= len(strays) // 2


def test_faint_digits_in_a_noisy_frame_are_found_without_the_noise_made_into_digits(monkeypatch):
    # Grey pencil on grey paper in dim light: the sensor's noise crosses the ink threshold in specks after a
    # 3x3 smoothing, and some clusters of them pass for digits; a noisy frame is smoothed over 5x5 instead. The
    # strokes stand out by only about twice the noise: on open paper that is not held against them.
    page = np.full((480, 640, 3), 170, np.uint8)
    scale = cv2.getFontScaleFromHeight(FONT, 40, 2)
    for text, origin in (("4 7 1 9", (60, 150)), ("3 8 5", (60, 300))):
        cv2.putText(page, text, origin, FONT, scale, (140, 140, 140), 2, cv2.LINE_AA)
    whole = _boxes(page)
    noise = np.random.default_rng(0).normal(0, 9, page.shape[:2])[..., None]
    noisy = np.clip(page + noise, 0, 255).astype(np.uint8)
    assert binarise.sensor_noise(binarise.ink_channel(page)) < binarise.NOISY_FRAME
    assert binarise.sensor_noise(binarise.ink_channel(noisy)) >= binarise.NOISY_FRAME
    in_reading_order = lambda box: (box[1] // 100, box[0])  # noqa: E731
    found = sorted(_boxes(noisy), key=in_reading_order)
    _assert_boxes_match(found, sorted(whole, key=in_reading_order), 7)
    monkeypatch.setattr(binarise, "NOISY_FRAME", 10**9)  # always the 3x3 smoothing
    assert len(_boxes(noisy)) > len(whole)


def test_light_ink_on_a_dark_ground_is_found_as_the_same_page_written_dark_on_light():
    page = _page_with([("27", (100, 200)), ("580", (300, 200)), ("4", (120, 360))])
    dark = segment_digits(page)
    light = segment_digits(255 - page, replace(DEFAULT_SEGMENTATION, ink="light"))
    assert [r.box for r in light[0]] == [r.box for r in dark[0]] and len(dark[0]) == 6
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(light[0], dark[0]))
    assert len(segment_digits(255 - page)[0]) < len(dark[0])  # read as dark ink, the inverted page is not the same
    with pytest.raises(ValueError, match="ink must be one of dark, light"):
        replace(DEFAULT_SEGMENTATION, ink="white")


def test_a_band_along_the_frame_edge_joins_no_digit_it_lies_under():
    # a big digit (200 px tall) and, 40 px below it, the page's edge touching the frame's: within the merging gap
    boxes = np.array([[200, 100, 150, 200], [0, 340, 640, 12]])
    assert len(_merge_groups(boxes, DEFAULT_SEGMENTATION, None)) == 1
    assert sorted(_merge_groups(boxes, DEFAULT_SEGMENTATION, None, (640, 480))) == [[0], [1]]
    # the same band clear of the frame's edges joins as before
    assert len(_merge_groups(boxes + [[10, 0, 0, 0], [10, 0, -20, 0]], DEFAULT_SEGMENTATION, None, (640, 480))) == 1


def test_specks_beside_a_close_up_digit_join_no_group_but_a_page_digit_keeps_its_pieces():
    # two digits 200 px tall in a 480-high frame and a row of specks (the page's edge) 40 px below both
    specks = [[x, 345, 6, 4] for x in range(150, 500, 20)]
    boxes = np.array([[150, 100, 150, 200], [330, 100, 150, 200], *specks])
    groups = _merge_groups(boxes, DEFAULT_SEGMENTATION, None, (640, 480))
    assert [0] in groups and [1] in groups
    without_the_rule = _merge_groups(boxes, DEFAULT_SEGMENTATION, None)
    assert all(len(group) > 1 for group in without_the_rule if 0 in group or 1 in group)  # the specks joined them
    # a broken digit of a page (40 px tall) keeps a 5 px piece of it
    assert len(_merge_groups(np.array([[100, 100, 20, 40], [108, 143, 5, 4]]), DEFAULT_SEGMENTATION, None,
                             (640, 480))) == 1


def test_merging_many_specks_weighs_neighbours_only_and_groups_as_all_pairs_would():
    # All pairs at once, a photo of dotted paper's 18 000 specks took 13 GB; the groups are the transitive joins
    # of the pairwise rule, whatever the order they are found in.
    import tracemalloc

    from digitrec.segment import MERGE_ROWS_AT_ONCE, _mergeable

    rng = np.random.default_rng(5)
    count = 3 * MERGE_ROWS_AT_ONCE + 17
    sizes = rng.integers(2, 40, (count, 2))
    boxes = np.column_stack([rng.integers(0, 2000, count), rng.integers(0, 1500, count), sizes]).astype(np.int64)
    every = np.arange(count)
    for digit_height, frame_size in [(None, None), (30.0, (2040, 1540))]:
        pairwise = _mergeable(boxes, every, every, DEFAULT_SEGMENTATION, digit_height, frame_size)
        parent = list(range(count))

        def find(i, parent=parent):
            while parent[i] != i:
                i = parent[i]
            return i

        for i, j in zip(*np.nonzero(pairwise)):
            parent[find(int(j))] = find(int(i))
        expected = sorted(sorted(int(i) for i in every if find(i) == root) for root in {find(i) for i in every})
        got = _merge_groups(boxes, DEFAULT_SEGMENTATION, digit_height, frame_size)
        assert sorted(sorted(group) for group in got) == expected
        assert 50 < len(got) < count - 50  # many joined, many not
    many = np.concatenate([boxes] * 6)  # 9 000 components: one 9 000 x 9 000 matrix is 81 MB of bools
    tracemalloc.start()
    _merge_groups(many, DEFAULT_SEGMENTATION, 30.0, (2040, 1540))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6, peak


def test_a_line_under_part_of_a_number_joins_none_of_its_digits():
    # Two digit heights long, under the oversized limit: taken for a piece of the digits above it, it joined the
    # '1' and the '7's into one blob ('3177' read '337'; in a video a '7' and its underline read '2').
    page = np.full((480, 640, 3), 235, np.uint8)
    cv2.putText(page, "3177", (120, 220), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (40, 40, 40), 4, cv2.LINE_AA)
    cv2.putText(page, "5208", (120, 330), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (40, 40, 40), 4, cv2.LINE_AA)
    cv2.line(page, (150, 229), (215, 231), (40, 40, 40), 4, cv2.LINE_AA)
    regions, _ = segment_digits(page)
    assert len([region for region in regions if region.box[1] < 250]) == 4  # 3, 1, 7, 7 over the line
    assert all(r.box[3] < 40 for r in regions)  # each a digit alone, none reaching down to the line


def test_merging_in_blocks_joins_boxes_that_only_touch_when_no_overlap_is_asked_for(monkeypatch):
    from dataclasses import replace

    from digitrec import segment

    touching = replace(DEFAULT_SEGMENTATION, piece_overlap=0.0)
    boxes = np.array([[10, 10, 10, 30], [20, 40, 10, 5]])  # the piece begins where the digit ends, across
    monkeypatch.setattr(segment, "MERGE_ROWS_AT_ONCE", 1)
    assert sorted(_merge_groups(boxes, touching, None)) == [[0, 1]]



def _form_field(page: np.ndarray, x: int, y: int, cells: int, cell: tuple[int, int] = (44, 56)) -> None:
    """A form's field of `cells` boxes, `cell` (width, height) each, drawn in dark lines 2 px wide."""
    width, height = cell
    cv2.rectangle(page, (x, y), (x + cells * width, y + height), (60, 60, 60), 2)
    for wall in range(1, cells):
        cv2.line(page, (x + wall * width, y), (x + wall * width, y + height), (60, 60, 60), 2)


@pytest.mark.parametrize("cells", [2, 6])  # a narrow field is one component; a wide one's edges are ruled lines
def test_digits_in_a_forms_boxes_are_found_one_by_one_and_its_walls_are_no_digits(cells):
    # The walls between cells were found as '1's, and a narrow field, one component holding its digits, was one
    # region: its digits were never read.
    texts = "".join(str((3 * index + 2) % 10) for index in range(cells))
    page = _page_with([(digit, (40 + 44 * index + 12, 200 + 44)) for index, digit in enumerate(texts)], height=36)
    plain = _boxes(page)
    _form_field(page, 40, 200, cells)
    _assert_boxes_match(_boxes(page), plain, cells)


def test_an_empty_square_a_boxy_zero_or_a_checkbox_is_not_taken_for_a_forms_box():
    page = _page_with([("3", (100, 240)), ("7", (412, 244))], height=36)
    cv2.rectangle(page, (200, 200), (228, 240), (40, 30, 30), 3)  # a square '0' of a boxy hand: nothing inside
    _form_field(page, 400, 200, 1)  # a form's box with a '7' in it, on the same page
    found = _boxes(page)
    x, y, width, height = found[1]
    assert len(found) == 3 and abs(x - 198) <= 2 and abs(y - 198) <= 2 and width >= 30 and height >= 42, found


def test_a_one_that_runs_from_a_cells_top_wall_to_its_bottom_is_kept_and_the_walls_beside_it_go():
    page = _page_with([(digit, (40 + 44 * index + 12, 246)) for index, digit in enumerate("27 593") if digit != " "],
                      height=36)
    plain = _boxes(page)
    _form_field(page, 40, 200, 6)
    cv2.line(page, (40 + 2 * 44 + 22, 201), (40 + 2 * 44 + 22, 255), (40, 30, 30), 3)  # splits its cell in two
    found = _boxes(page)
    ones = [box for box in found if abs(box[0] - 148) <= 3 and box[3] >= 50]
    assert len(ones) == 1, found
    _assert_boxes_match([box for box in found if box not in ones], plain, 5)


def test_ruled_paper_where_a_one_touches_both_rules_beside_a_margin_line_is_no_form():
    # The rules, the margin line and the '1' close a rectangle round the '5': it is no form, it reaches across the page.
    page = np.full((480, 640, 3), 245, np.uint8)
    for y in range(60, 480, 44):
        cv2.line(page, (0, y), (639, y), (150, 120, 110), 2)
    cv2.line(page, (60, 0), (60, 479), (90, 90, 200), 2)
    scale = cv2.getFontScaleFromHeight(FONT, 30, 3)
    for digit, x in (("5", 100), ("7", 180), ("2", 260)):
        cv2.putText(page, digit, (x, 226), FONT, scale, (40, 30, 30), 3, cv2.LINE_AA)
    cv2.line(page, (140, 193), (140, 235), (40, 30, 30), 3)  # a '1' from one rule to the next
    found = _boxes(page)
    assert len(found) == 4 and any(abs(x - 137) <= 3 and h >= 40 for x, _, _, h in found), found


def test_a_component_whose_inked_cells_are_of_two_sizes_far_apart_is_no_form():
    # Two cells 10 and 40 px wide: neither is near their median width, so none is a regular cell (it crashed).
    labels = np.zeros((60, 80), np.int32)
    labels[5:55, 5:75] = 1
    holes = [_Hole((8, 8, 10, 40), True, True), _Hole((22, 8, 40, 40), True, True)]
    assert _lines_of_form(labels, 1, holes, DEFAULT_SEGMENTATION) is None
