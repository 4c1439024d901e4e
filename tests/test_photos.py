"""Still photos (`segment.segment_photo`): a phone's photo of a whole page, its digits 1-3 % of its height, and a
photo cropped round one digit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitrec.evaluation import IOU_THRESHOLD, iou, score_frame
from digitrec.reader import DigitReader
from digitrec.segment import (
    DEFAULT_SEGMENTATION,
    PHOTO_MAX_WORKING_WIDTH,
    for_still_photo,
    segment_digits,
    segment_photo,
)
from digitrec.synth import StrokeGlyphs, make_page, make_page_mosaic
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
    return reader, DigitReader(classifier=reader.classifier, still_photos=False)


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


def _crops_of_one_digit(seed: int, margin: int = 2):
    """Each digit of a clean synthetic page cut out with `margin` pixels round its box, with its value."""
    page = make_page(seed, StrokeGlyphs(), "clean")
    for truth in page.digits:
        x, y, w, h = truth.box
        top, left = max(0, y - margin), max(0, x - margin)
        yield truth.digit, (x - left, y - top, w, h), page.image[top : y + h + margin, left : x + w + margin].copy()


def test_a_photo_cropped_round_one_digit_is_read_where_the_frame_alone_finds_nothing(readers):
    reader, as_a_video_frame = readers
    read = before = crops = 0
    for digit, box, crop in _crops_of_one_digit(7):
        photo = Frame(index=0, image=crop, source="digit.png", time=0.0, still=True)
        found = reader.read(photo).detections
        read += len(found) == 1 and found[0].digit == digit and iou(found[0].box, box) >= IOU_THRESHOLD
        before += any(d.digit == digit for d in as_a_video_frame.read(photo).detections)
        crops += 1
    assert crops >= 12
    assert read >= 0.8 * crops and before <= 0.3 * crops, (read, before, crops)


def test_a_page_where_anything_is_found_is_segmented_as_before():
    page = make_page(8, StrokeGlyphs(), "ruled")
    regions, mask = segment_photo(page.image)
    expected, expected_mask = segment_digits(page.image)
    assert [r.box for r in regions] == [r.box for r in expected] and len(regions) > 10
    assert np.array_equal(mask, expected_mask)


def test_the_mask_of_a_photo_looked_at_again_is_the_photos_part_of_it():
    _, box, crop = next(_crops_of_one_digit(7, margin=1))
    regions, mask = segment_photo(crop)
    assert len(regions) == 1 and iou(regions[0].box, box) >= 0.8, (regions[0].box, box)
    assert mask.shape == crop.shape[:2]
    x, y, w, h = box
    assert mask[y : y + h, x : x + w].sum() > 0.8 * mask.sum() > 0


def test_a_long_thin_photo_is_not_padded_as_a_crop_round_one_digit(monkeypatch, readers):
    # Its margin would be a quarter of its length on every side: a blank 100 x 100 000 PNG took 24 GB.
    import digitrec.segment as segment

    looked_at = []
    real = segment.segment_digits

    def recording(frame, config=DEFAULT_SEGMENTATION):
        looked_at.append(frame.shape[:2])
        return real(frame, config)

    monkeypatch.setattr(segment, "segment_digits", recording)
    regions, _ = segment_photo(np.full((20_000, 100, 3), 255, np.uint8))
    assert regions == [] and looked_at == [(20_000, 100)]
    # A square crop round nothing is still looked at again, framed.
    segment_photo(np.full((40, 40, 3), 255, np.uint8))
    assert looked_at[1:] == [(40, 40), (62, 62)]


@pytest.mark.parametrize("shape", [(1, 2000), (2, 40_000), (3000, 3)])
def test_photos_a_pixel_or_two_across_are_read_as_nothing(shape, readers):
    reader, _ = readers
    image = np.full((*shape, 3), 255, np.uint8)
    assert reader.read(Frame(index=0, image=image, source="line", time=0.0, still=True)).detections == []


def test_a_page_photographed_upright_reads_as_the_same_page_photographed_across(readers):
    # A phone held upright gives 3024x4032: its digits were looked for from 2.8 % of the longer side, so
    # digits 42 px tall, read across, were all missed upright.
    import cv2

    reader, _ = readers
    numbers = [str(3817 + 1111 * line) for line in range(5)]
    read = {}
    for name, (width, height) in {"across": (4032, 3024), "upright": (3024, 4032)}.items():
        photo = np.full((height, width), 255, np.uint8)
        for line, text in enumerate(numbers):
            cv2.putText(photo, text, (300, 400 + 300 * line), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 0, 6, cv2.LINE_AA)
        read[name] = [number.text for number in reader.read(Frame(0, photo, name, 0.0, still=True)).numbers]
    assert read["across"] == read["upright"] == numbers
