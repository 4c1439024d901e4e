"""Marks that are not digits (dots, dashes, checkboxes, lines, smudges) are not reported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from digitrec.reader import DigitReader, short_for_their_line
from digitrec.synth import StrokeGlyphs
from digitrec.types import Detection, Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
INK = (30, 30, 30)


def _write(image: np.ndarray, digits: tuple[int, ...], x: int, bottom: int, height: int, gap: int | None = None) -> int:
    """Write `digits` by code, `height` px high, from `x` with their bottoms at `bottom`, `gap` px apart (a fifth of
    their height if None); returns the x after them."""
    rng = np.random.default_rng(0)
    for digit in digits:
        ink = StrokeGlyphs().sample(digit, rng)
        ink = cv2.resize(ink, None, fx=height / ink.shape[0], fy=height / ink.shape[0])
        patch = image[bottom - ink.shape[0] : bottom, x : x + ink.shape[1]]
        patch[:] = (patch * (1 - 0.85 * ink[:, :, None])).astype(np.uint8)
        x += ink.shape[1] + (height // 5 if gap is None else gap)
    return x


def _page_with_marks() -> tuple[np.ndarray, str]:
    """A line "2024" written by code, and below it one mark of each kind; returns (image, digits written)."""
    image = np.full((480, 640, 3), 235, np.uint8)
    _write(image, (2, 0, 2, 4), 60, 110, 50, gap=12)
    cv2.circle(image, (100, 200), 4, INK, -1, cv2.LINE_AA)  # a dot
    cv2.line(image, (160, 200), (185, 201), INK, 4, cv2.LINE_AA)  # a dash
    cv2.rectangle(image, (240, 180), (270, 210), INK, 3, cv2.LINE_AA)  # an empty checkbox
    cv2.rectangle(image, (100, 380), (130, 410), INK, 3, cv2.LINE_AA)  # a ticked checkbox
    cv2.line(image, (105, 395), (113, 405), INK, 3)
    cv2.line(image, (113, 405), (128, 383), INK, 3)
    cv2.line(image, (320, 300), (480, 310), INK, 4, cv2.LINE_AA)  # an underline
    smudge = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(smudge, (400, 200), (25, 12), 20, 0, 360, 1.0, -1)
    smudge = cv2.GaussianBlur(smudge, (0, 0), 5)
    image = (image * (1 - 0.4 * smudge[:, :, None])).astype(np.uint8)
    return image, "2024"


def test_dots_dashes_checkboxes_lines_and_smudges_are_not_reported():
    image, written = _page_with_marks()
    result = DigitReader(MODEL).read(Frame(0, image, "test", 0.0))
    assert all(d.box[1] < 150 for d in result.detections), [(d.box, d.digit) for d in result.detections]
    assert [n.text for n in result.numbers] == [written]


def _line_with_a_fleck() -> np.ndarray:
    """A line "2024" written by code, 60 px high, and just after it a short upright stroke, 18 px, like a fleck
    of ink beside a number: read alone it is a '1'."""
    image = np.full((240, 480, 3), 235, np.uint8)
    x = _write(image, (2, 0, 2, 4), 60, 140, 60)
    cv2.line(image, (x + 30, 112), (x + 29, 130), INK, 4, cv2.LINE_AA)
    return image


def test_a_digit_far_shorter_than_its_line_is_not_reported():
    image = _line_with_a_fleck()
    frame = Frame(0, image, "test", 0.0)
    everything = DigitReader(MODEL, short_for_line=0).read(frame)
    assert [n.text for n in everything.numbers] == ["2024", "1"]  # the fleck alone is read as a '1'...
    result = DigitReader(MODEL).read(frame)
    assert [n.text for n in result.numbers] == ["2024"]  # ...and, a third of its line's height, not reported
    assert result.rejected == everything.rejected + 1


def test_a_small_number_beside_a_big_one_is_read():
    image = np.full((240, 480, 3), 235, np.uint8)
    x = _write(image, (2, 0, 2, 4), 40, 140, 60)
    _write(image, (1, 5), x + 40, 140, 27)
    result = DigitReader(MODEL).read(Frame(0, image, "test", 0.0))
    assert [n.text for n in result.numbers] == ["2024", "15"]


def _boxed(*boxes) -> list[Detection]:
    return [Detection(box=box, digit=1, confidence=1.0) for box in boxes]


def test_short_for_their_line_drops_a_lone_fleck_but_not_a_small_number_or_another_line():
    big = [(0, 100, 40, 60), (50, 100, 40, 60), (100, 100, 40, 60)]
    fleck = (150, 120, 6, 20)
    assert short_for_their_line(_boxed(*big, fleck)).tolist() == [False, False, False, True]
    # a small number beside a big one: its digits are alike in size, so neither is dropped
    small_number = [(150, 130, 14, 25), (168, 131, 14, 26)]
    assert not short_for_their_line(_boxed(*big, *small_number)).any()
    # the same fleck on a line of its own, under the big digits, is that line's height
    assert not short_for_their_line(_boxed(*big, (150, 300, 6, 20))).any()
    # at the share given, and none at 0
    assert short_for_their_line(_boxed(*big, (150, 110, 20, 35)), share=0.6).tolist() == [False] * 3 + [True]
    assert not short_for_their_line(_boxed(*big, fleck), share=0.0).any()
