"""Digits held close to the camera, a quarter of the frame's height or more: thick strokes cut again with a paper
window sized from them, long straight strokes not erased as ruled lines, and the page's edge not looked for past
the paper (`binarise.widen_for_thick_strokes`, `SegmentationConfig.min_thick_digit_height` and
`surroundings_reach`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.binarise import binarise_ink_on_paper, widen_for_thick_strokes
from digitrec.evaluation import score_frame
from digitrec.reader import DigitReader
from digitrec.segment import DEFAULT_SEGMENTATION, segment_digits
from digitrec.synth import StrokeGlyphs, make_page, make_video
from digitrec.types import Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
PAPER_KERNEL = 29  # the segmenter's at 640x480: 6 % of 480, odd
AS_BEFORE = replace(DEFAULT_SEGMENTATION, min_thick_digit_height=1.0)
"""The segmenter with the three changes for close-ups turned off."""


def _paper(ink: np.ndarray, ink_level: int = 40) -> np.ndarray:
    """A 640x480 grey page (215, light falling off to the right) with `ink` (a 0/1 mask) written on it."""
    page = np.tile(np.linspace(225, 205, 640, dtype=np.float32), (480, 1))
    page[ink > 0] = ink_level
    return cv2.GaussianBlur(page, (5, 5), 1.0).round().astype(np.uint8)


def _ring(thickness: int) -> np.ndarray:
    ring = np.zeros((480, 640), np.uint8)
    cv2.ellipse(ring, (320, 240), (100, 125), 0, 0, 360, 1, thickness)  # 310 px tall with a 60 px stroke
    return ring


def _widened(gray: np.ndarray):
    ink = binarise_ink_on_paper(gray, PAPER_KERNEL)
    return ink, widen_for_thick_strokes(gray, ink, PAPER_KERNEL, 0.2 * 480, 0.7 * 480)


def test_a_stroke_thicker_than_the_paper_window_is_cut_whole_in_a_window_sized_from_it():
    stroke = _ring(60)
    first, widened = _widened(_paper(stroke))
    covered_first = (first.mask & stroke).sum() / stroke.sum()
    covered = (widened.mask & stroke).sum() / stroke.sum()
    assert covered_first < 0.5, covered_first  # the first look sees the stroke's edges only
    assert covered > 0.97, covered
    outside = widened.mask & (1 - cv2.dilate(stroke, np.ones((7, 7), np.uint8)))
    assert outside.sum() == 0
    assert widened.threshold == first.threshold


def test_thin_strokes_and_soft_shadows_are_left_as_the_first_look_cut_them():
    first, widened = _widened(_paper(_ring(8)))
    assert widened is first
    # A dark blob with soft edges (a hand's shadow) beside a thin digit
    yy, xx = np.mgrid[:480, :640]
    shade = 1.0 - 0.5 * np.exp(-(((xx - 200) / 90.0) ** 2 + ((yy - 240) / 110.0) ** 2))
    shadowed = (_paper(_ring(8)).astype(np.float32) * shade).astype(np.uint8)
    first, widened = _widened(shadowed)
    assert widened is first


def _long_one(thickness: int = 14) -> np.ndarray:
    """A '1' 230 px tall (48 % of the frame) and a '7' beside it, strokes `thickness` wide."""
    ink = np.zeros((480, 640), np.uint8)
    cv2.line(ink, (200, 120), (210, 350), 1, thickness)
    cv2.line(ink, (330, 120), (470, 120), 1, thickness)
    cv2.line(ink, (470, 120), (400, 350), 1, thickness)
    return ink


def test_a_tall_one_and_seven_held_close_are_not_erased_as_ruled_lines():
    page = cv2.cvtColor(_paper(_long_one()), cv2.COLOR_GRAY2BGR)
    found = [region.box for region in segment_digits(page)[0]]
    before = [region.box for region in segment_digits(page, AS_BEFORE)[0]]
    assert len(found) == 2, found
    assert abs(found[0][3] - 230) <= 20 and abs(found[1][3] - 230) <= 20, found
    assert all(box[3] < 150 for box in before), before  # their long strokes were erased as lines


def test_ruled_lines_across_a_close_up_are_still_erased():
    ink = _long_one()
    for y in (60, 400):
        cv2.line(ink, (0, y), (639, y), 1, 2)
    cv2.line(ink, (560, 0), (560, 479), 1, 2)  # a margin line
    page = cv2.cvtColor(_paper(ink), cv2.COLOR_GRAY2BGR)
    regions, mask = segment_digits(page)
    assert len(regions) == 2
    assert mask[55:66, :150].sum() == 0 and mask[100:380, 555:566].sum() == 0  # (kept where two lines cross)


def test_a_big_digit_near_the_page_edge_is_not_taken_for_the_edge():
    ink = np.zeros((480, 640), np.uint8)
    cv2.ellipse(ink, (190, 240), (100, 150), 0, 0, 360, 1, 12)
    page = _paper(ink)
    page[:, :70] = 70  # the desk, 13 px left of the '0'
    page = cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)
    assert len(segment_digits(page)[0]) == 1
    assert segment_digits(page, AS_BEFORE)[0] == []  # half its width out reached the desk


@pytest.fixture(scope="module")
def reader():
    return DigitReader(MODEL)


def _read(reader: DigitReader, page, index: int = 0, still: bool = True):
    frame = Frame(index=index, image=page.image, source="close-up", time=index / 30, still=still)
    return score_frame(page, reader.read(frame))


def test_close_ups_in_marker_are_read_where_the_segmenter_before_lost_many(reader):
    """A marker's strokes are 16-24 % of a digit's height: 40-150 px on these digits, wider than the paper window."""
    before_reader = DigitReader(classifier=reader.classifier, segmentation=AS_BEFORE)
    pages = [make_page(seed, StrokeGlyphs(), "marker", (640, 480), close_up=True) for seed in range(12)]
    true = sum(len(page.digits) for page in pages)
    read = sum(_read(reader, page).right for page in pages)
    before = sum(_read(before_reader, page).right for page in pages)
    assert true >= 15
    assert read >= 0.85 * true and before <= read - 0.2 * true, (read, before, true)

    video = make_video(5, StrokeGlyphs(), 20, condition="marker", close_up=True)
    counts = [_read(reader, truth, i, still=False) for i, truth in enumerate(video.truth)]
    before = sum(_read(before_reader, truth, i, still=False).right for i, truth in enumerate(video.truth))
    true = sum(c.true_digits for c in counts)
    assert sum(c.right for c in counts) >= 0.85 * true and before <= 0.5 * true, (counts, before)
    assert sum(c.false for c in counts) <= 0.1 * sum(c.detections for c in counts)
