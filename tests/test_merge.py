"""The two halves of a broken digit are read as one digit; digits written close stay apart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.merge import DEFAULT_MERGE, choose_join, joined_region, merge_candidates
from digitrec.normalise import MNIST_STROKE, StrokeTarget
from digitrec.reader import DigitReader
from digitrec.synth import StrokeGlyphs
from digitrec.types import Frame, Region

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
PAPER = 235


def _paste(page: np.ndarray, digit: int, x: int, rng: np.random.Generator, top: int = 80, height: int = 70) -> int:
    """Draw a code-drawn `digit` `height` px tall at (x, top); returns the x just right of it."""
    glyph = (StrokeGlyphs().sample(digit, rng) * 255).astype(np.uint8)
    glyph = cv2.resize(glyph, (max(1, round(glyph.shape[1] * height / glyph.shape[0])), height),
                       interpolation=cv2.INTER_AREA)
    window = page[top : top + height, x : x + glyph.shape[1]]
    window[:] = np.minimum(window, (255 - glyph)[..., None])
    return x + glyph.shape[1]


@pytest.fixture(scope="module")
def page_with_a_broken_zero():
    """A line '3 5 0 11 7' where the '0' has lost its top and bottom (two arcs side by side) and
    the two '1's are written 4 px apart. Returns the page and the zero's box."""
    rng = np.random.default_rng(3)
    page = np.full((480, 720, 3), PAPER, np.uint8)
    x = _paste(page, 3, 40, rng) + 40
    x = _paste(page, 5, x, rng) + 40
    centre = (x + 25, 115)
    cv2.ellipse(page, centre, (24, 34), 0, 0, 360, (20, 20, 20), 5, cv2.LINE_AA)
    page[:, centre[0] - 3 : centre[0] + 3] = PAPER  # the pen skipped: two arcs about 6 px apart
    x += 90
    x = _paste(page, 1, x, rng) + 4
    x = _paste(page, 1, x, rng) + 40
    _paste(page, 7, x, rng)
    return page, (centre[0] - 27, 78, 55, 76)


def _digits(result):
    return [d.digit for d in sorted(result.detections, key=lambda d: d.box[0])]


def test_the_halves_of_a_broken_zero_are_read_as_one_zero(page_with_a_broken_zero):
    page, (x, y, w, h) = page_with_a_broken_zero
    reader = DigitReader(MODEL)
    result = reader.read(Frame(0, page, "page", 0.0))
    assert _digits(result) == [3, 5, 0, 1, 1, 7]  # and the close '11' stays two digits
    zero = next(d for d in result.detections if d.digit == 0)
    assert abs(zero.box[0] - x) <= 4 and abs(zero.box[2] - w) <= 6  # one box over both arcs

    never_joined = DigitReader(MODEL, merging=dataclasses.replace(DEFAULT_MERGE, max_width=0.0),
                               classifier=reader.classifier)
    assert 0 not in _digits(never_joined.read(Frame(0, page, "page", 0.0)))  # the halves alone are no '0'


def _region(x: int, y: int, w: int, h: int) -> Region:
    return Region(box=(x, y, w, h), mask=np.ones((h, w), np.uint8))


def test_only_close_narrow_neighbours_on_one_line_are_candidates():
    heights = np.full(6, 60.0)
    regions = [
        _region(0, 0, 25, 60), _region(28, 0, 25, 60),      # two arcs 3 px apart: a candidate pair
        _region(100, 0, 40, 60), _region(160, 0, 40, 60),   # 20 px apart: two digits
        _region(300, 0, 50, 60), _region(303, 70, 50, 60),  # one above the other: the segmenter's job
    ]
    assert merge_candidates(regions, heights, [False] * 6) == [(0, 1)]
    # A region that may be cut into touching digits is never joined as well.
    assert merge_candidates(regions, heights, [True] + [False] * 5) == []
    wide = [_region(0, 0, 45, 60), _region(48, 0, 45, 60)]  # together wider than a digit
    assert merge_candidates(wide, np.full(2, 60.0), [False, False]) == []


def test_a_flag_lifted_off_the_top_of_its_digit_is_a_candidate_but_a_neighbour_of_the_next_line_is_not():
    heights = np.full(4, 60.0)
    regions = [
        _region(0, 20, 30, 50), _region(32, 8, 30, 18),     # a '5''s body, its flag above and to the right
        _region(200, 20, 30, 50), _region(232, -40, 30, 18),  # a short mark far above the top of its neighbour
    ]
    assert merge_candidates(regions, heights, [False] * 4) == [(0, 1)]
    no_flags = dataclasses.replace(DEFAULT_MERGE, flag_height=0.0)
    assert merge_candidates(regions, heights, [False] * 4, no_flags) == []


def test_a_five_whose_flag_was_lifted_off_is_read_as_one_five_boxed_with_its_flag():
    # The flag starts right of the body, past where the segmenter joins a piece lying over its neighbour.
    rng = np.random.default_rng(5)
    page = np.full((480, 720, 3), PAPER, np.uint8)
    x = _paste(page, 3, 40, rng) + 40
    ink = (20, 20, 20)
    cv2.line(page, (x + 6, 100), (x + 4, 122), ink, 5, cv2.LINE_AA)  # the stem...
    cv2.ellipse(page, (x + 16, 134), (14, 16), 0, -160, 150, ink, 5, cv2.LINE_AA)  # ...the bowl...
    cv2.line(page, (x + 40, 98), (x + 66, 84), ink, 5, cv2.LINE_AA)  # ...and the flag, lifted off
    flag_right = x + 68
    x = _paste(page, 7, x + 110, rng) + 40
    _paste(page, 2, x, rng)
    reader = DigitReader(MODEL)
    result = reader.read(Frame(0, page, "page", 0.0))
    assert _digits(result) == [3, 5, 7, 2]
    five = sorted(result.detections, key=lambda d: d.box[0])[1]
    assert five.box[0] + five.box[2] >= flag_right - 3, five.box
    without_flags = DigitReader(MODEL, merging=dataclasses.replace(DEFAULT_MERGE, flag_height=0.0),
                                classifier=reader.classifier)
    alone = sorted(without_flags.read(Frame(0, page, "page", 0.0)).detections, key=lambda d: d.box[0])[1]
    assert alone.box[0] + alone.box[2] < flag_right - 20, alone.box  # the body alone, its flag left out


def test_the_joined_region_holds_both_masks_and_the_join_must_beat_the_weaker_piece():
    left = Region(box=(10, 5, 3, 4), mask=np.array([[1, 0, 0]] * 4, np.uint8))
    right = Region(box=(15, 6, 2, 2), mask=np.ones((2, 2), np.uint8))
    joined = joined_region(left, right)
    assert joined.box == (10, 5, 7, 4)
    assert joined.mask.sum() == 4 + 4 and joined.mask[1:3, 5:7].all()
    margin = DEFAULT_MERGE.margin
    assert choose_join(np.log([0.99, 0.6]), float(np.log(0.999)))       # a sure '0' over a weak half
    assert not choose_join(np.log([0.99, 0.99]), float(np.log(0.999)))  # '11' read surely apart stays apart
    assert not choose_join(np.log([0.6, 0.6]), -np.inf)                 # the join is not a digit
    assert choose_join(np.log([0.9, 0.9]), float(np.log(0.9)) + margin)


def test_video_frames_take_the_stroke_targets_in_turn_and_photos_keep_mnists(page_with_a_broken_zero):
    page, _ = page_with_a_broken_zero
    thick = StrokeTarget(width=3.5, tolerance=0.0)
    reader = DigitReader(MODEL, video_strokes=(MNIST_STROKE, thick))

    def crops(index, still):
        result = reader.read(Frame(index, page, "video", 0.0, still=still))
        return np.stack([d.image for d in sorted(result.detections, key=lambda d: d.box[0])])

    mnist_view, thick_view = crops(0, False), crops(1, False)
    assert thick_view.shape == mnist_view.shape
    assert thick_view.sum() > 1.2 * mnist_view.sum()  # the odd frame's strokes are widened
    assert np.array_equal(crops(2, False), mnist_view)
    assert np.array_equal(crops(1, True), mnist_view)  # a photo is read with MNIST's stroke alone
    with pytest.raises(ValueError, match="stroke target"):
        DigitReader(MODEL, video_strokes=())
