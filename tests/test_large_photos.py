"""Large photos (`segment.for_still_photo`): a phone's photo of a whole page, its digits 1-3 % of its height."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitrec.evaluation import score_frame
from digitrec.reader import DigitReader
from digitrec.segment import DEFAULT_SEGMENTATION, PHOTO_MAX_WORKING_WIDTH, for_still_photo
from digitrec.synth import StrokeGlyphs, make_page_mosaic
from digitrec.types import Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"


def test_photos_under_four_working_widths_keep_the_settings_and_larger_ones_look_at_half_their_width():
    assert for_still_photo(DEFAULT_SEGMENTATION, 1280) is DEFAULT_SEGMENTATION
    assert for_still_photo(DEFAULT_SEGMENTATION, 2559) is DEFAULT_SEGMENTATION
    at_2560 = for_still_photo(DEFAULT_SEGMENTATION, 2560)
    assert at_2560.working_width == 1280 and at_2560.min_digit_height == pytest.approx(0.014)
    at_8000 = for_still_photo(DEFAULT_SEGMENTATION, 8000)
    assert at_8000.working_width == PHOTO_MAX_WORKING_WIDTH
    # the smallest digit looked for is as many working pixels high at any size
    assert at_8000.min_digit_height * at_8000.working_width == pytest.approx(0.028 * 640)


@pytest.fixture(scope="module")
def readers():
    reader = DigitReader(MODEL)
    return reader, DigitReader(classifier=reader.classifier, large_photos=False)


def test_a_photo_of_nine_pages_is_read_where_one_look_at_the_working_width_misses_most(readers):
    reader, at_working_width = readers
    mosaic = make_page_mosaic(40, StrokeGlyphs(), 3)
    photo = Frame(index=0, image=mosaic.image, source="nine pages.jpg", time=0.0, still=True)
    read, missed = score_frame(mosaic, reader.read(photo)), score_frame(mosaic, at_working_width.read(photo))
    assert read.true_digits >= 100
    assert read.right >= 0.9 * read.true_digits and read.false <= 0.02 * read.detections, read
    assert missed.right <= 0.75 * missed.true_digits and read.right >= missed.right + 0.2 * read.true_digits, missed


def test_a_large_video_frame_is_segmented_at_the_working_width(readers):
    reader, at_working_width = readers
    frame = Frame(index=3, image=make_page_mosaic(50, StrokeGlyphs(), 2).image, source="clip", time=0.1, still=False)
    summary = [(d.box, d.digit) for d in reader.read(frame).detections]
    assert summary == [(d.box, d.digit) for d in at_working_width.read(frame).detections]
