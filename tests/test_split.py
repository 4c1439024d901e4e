"""Touching digits are cut apart and read as two; a digit with a broken stroke stays one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.evaluate_tracking import pair_read_right
from digitrec.reader import DigitReader, reading_hypotheses
from digitrec.split import DEFAULT_SPLIT, choose_hypothesis, too_short_to_cut
from digitrec.synth import StrokeGlyphs, make_touching_pair
from digitrec.types import Frame, Region

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"


@pytest.fixture(scope="module")
def reader() -> DigitReader:
    return DigitReader(MODEL)


def _read(reader: DigitReader, image: np.ndarray):
    return reader.read(Frame(0, image, "test", 0.0))


def test_touching_pairs_are_read_as_two_digits_that_a_whole_reading_misses(reader):
    pairs = [make_touching_pair(seed, StrokeGlyphs()) for seed in range(40)]
    # The cuts alone: without the pair network, which reads a video frame's unsure wide blobs whole (tests/test_pairs.py).
    cuts = DigitReader(MODEL, classifier=reader.classifier, pair_model=None)
    unsplit = DigitReader(MODEL, splitting=dataclasses.replace(DEFAULT_SPLIT, candidate_width=99.0),
                          classifier=reader.classifier, pair_model=None)
    split_right = sum(pair_read_right(pair, _read(cuts, pair.page.image)) for pair in pairs)
    whole_right = sum(pair_read_right(pair, _read(unsplit, pair.page.image)) for pair in pairs)
    # Whole, none is read right; split, some are (the rate on MNIST writing: python -m digitrec.evaluate_tracking).
    assert whole_right == 0 and split_right >= 5


def test_a_wide_blob_favours_the_split_but_a_narrow_one_stays_whole():
    whole, split = np.log([0.95]), np.log([0.9, 0.9])
    assert choose_hypothesis([whole, split], DEFAULT_SPLIT, width_ratio=0.8) == 0
    assert choose_hypothesis([whole, split], DEFAULT_SPLIT, width_ratio=2.0) == 1


def test_a_rejected_scribble_is_not_cut_into_unsure_digits():
    not_a_digit, unsure = np.array([-np.inf]), np.log([0.85, 0.98])
    assert choose_hypothesis([not_a_digit, unsure], DEFAULT_SPLIT, width_ratio=2.5) == 0


def test_a_rejected_blob_is_cut_into_two_sure_digits_but_not_into_a_row_of_loops():
    not_a_digit, two, loops = np.array([-np.inf]), np.log([0.95, 0.93]), np.log([0.99, 0.99, 0.99])
    assert choose_hypothesis([not_a_digit, two], DEFAULT_SPLIT, width_ratio=1.5) == 1
    # A cursive scribble cut into three loops that each pass for a '1': never read, however sure.
    assert choose_hypothesis([not_a_digit, loops], DEFAULT_SPLIT, width_ratio=2.5) == 0
    assert choose_hypothesis([not_a_digit, loops, two], DEFAULT_SPLIT, width_ratio=2.5) == 2


def _wave(width: int, height: int, x: int, y: int) -> Region:
    mask = np.zeros((height, width), np.uint8)
    xs = np.arange(2, width - 2)
    ys = (height / 2 + (height / 2 - 4) * np.sin(xs / width * 2 * np.pi)).astype(np.int32)
    cv2.polylines(mask, [np.stack([xs, ys], axis=1).reshape(-1, 1, 2)], False, 1, 4)
    return Region(box=(x, y, width, height), mask=mask)


def test_a_wavy_dash_alone_on_its_line_is_not_cut_into_digits():
    # Alone on its line, its line height is its own, so it is twice as wide as "its digits";
    # beside the page's digits it is half their height, and touching digits are as tall as digits.
    digits = [Region(box=(40 + 60 * i, 300, 40, 70), mask=np.ones((70, 40), np.uint8)) for i in range(5)]
    wave = _wave(62, 31, 100, 150)
    assert too_short_to_cut([*digits, wave]).tolist() == [False] * 5 + [True]
    assert reading_hypotheses([*digits, wave])[-1] == [[wave]]
    # Where such regions are the page's usual height, the same shape is offered cuts.
    same_height = [_wave(62, 31, 100 + 80 * i, 150) for i in range(5)]
    assert not too_short_to_cut(same_height).any()
    assert len(reading_hypotheses(same_height)[0]) > 1


def test_a_digit_with_a_broken_stroke_is_read_as_one_digit(reader):
    ink = StrokeGlyphs().sample(4, np.random.default_rng(3))
    ink = cv2.resize(ink, None, fx=0.6, fy=0.6)
    middle = ink.shape[0] // 2
    ink[middle - 1 : middle + 2] = 0  # a pen that skipped: the "4" is in two pieces
    image = np.full((240, 320, 3), 235, np.uint8)
    y, x = 60, 120
    patch = image[y : y + ink.shape[0], x : x + ink.shape[1]]
    patch[:] = (patch * (1 - 0.85 * ink[:, :, None])).astype(np.uint8)
    detections = _read(reader, image).detections
    assert len(detections) == 1 and detections[0].digit == 4


def test_a_still_photo_also_cuts_blobs_as_narrow_as_one_wide_digit(reader):
    # Two touching digits, a '1' beside another, are often no wider than one wide digit: those
    # blobs are offered cuts on photos only, where a frame's time matters less than in video. The cuts alone,
    # without the pair networks, which read such blobs whole in both (15 against 31 of 40 when measured).
    cuts = DigitReader(MODEL, classifier=reader.classifier, pair_model=None)
    pairs = [make_touching_pair(seed, StrokeGlyphs()) for seed in range(40)]
    as_video = [pair_read_right(pair, _read(cuts, pair.page.image)) for pair in pairs]
    as_photo = [pair_read_right(pair, cuts.read(Frame(0, pair.page.image, "test", 0.0, still=True)))
                for pair in pairs]
    assert sum(as_photo) > sum(as_video)


def test_narrow_regions_are_offered_cuts_on_stills_only():
    mask = np.zeros((40, 36), np.uint8)
    cv2.rectangle(mask, (2, 2), (33, 37), 1, 3)  # 0.9 digit heights wide: a wide '0', or two digits
    neighbours = [Region(box=(100 * k, 0, 20, 40), mask=np.ones((40, 20), np.uint8)) for k in range(1, 4)]
    wide_zero = Region(box=(0, 0, 36, 40), mask=mask)
    assert len(reading_hypotheses([wide_zero, *neighbours])[0]) == 1
    assert len(reading_hypotheses([wide_zero, *neighbours], still=True)[0]) > 1


def test_a_narrow_blob_is_cut_only_when_rejected_whole_and_its_parts_are_sure():
    digit, rejected = np.log([0.6]), np.array([-np.inf])
    sure, fairly_sure = np.log([0.99, 0.98]), np.log([0.99, 0.93])
    assert choose_hypothesis([digit, sure], DEFAULT_SPLIT, width_ratio=0.9) == 0
    assert choose_hypothesis([rejected, sure], DEFAULT_SPLIT, width_ratio=0.9) == 1
    assert choose_hypothesis([rejected, fairly_sure], DEFAULT_SPLIT, width_ratio=0.9) == 0
    assert choose_hypothesis([rejected, fairly_sure], DEFAULT_SPLIT, width_ratio=1.5) == 1


def test_a_blob_is_cut_into_three_only_when_three_digits_fit_in_it():
    def cuts(width: int) -> list[int]:
        mask = np.zeros((40, width), np.uint8)
        cv2.rectangle(mask, (2, 2), (width - 3, 37), 1, 3)
        neighbours = [Region(box=(200 * k, 0, 20, 40), mask=np.ones((40, 20), np.uint8)) for k in range(1, 4)]
        return sorted({len(option) for option in reading_hypotheses([Region((0, 0, width, 40), mask), *neighbours])[0]})

    # 1.1 digit heights: whole, or two digits; three would each be 0.37 heights wide.
    assert cuts(44) == [1, 2]
    assert cuts(52) == [1, 2, 3]  # 1.3 heights
    assert cuts(68) == [1, 2, 3, 4]  # 1.7 heights
