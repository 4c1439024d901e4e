"""Marks that are not digits (dots, dashes, checkboxes, lines, smudges) are not reported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from digitrec.reader import DigitReader
from digitrec.synth import StrokeGlyphs
from digitrec.types import Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
INK = (30, 30, 30)


def _page_with_marks() -> tuple[np.ndarray, str]:
    """A line "2024" written by code, and below it one mark of each kind; returns (image, digits written)."""
    image = np.full((480, 640, 3), 235, np.uint8)
    rng = np.random.default_rng(0)
    x = 60
    for digit in (2, 0, 2, 4):
        ink = StrokeGlyphs().sample(digit, rng)
        ink = cv2.resize(ink, None, fx=50 / ink.shape[0], fy=50 / ink.shape[0])
        patch = image[60 : 60 + ink.shape[0], x : x + ink.shape[1]]
        patch[:] = (patch * (1 - 0.85 * ink[:, :, None])).astype(np.uint8)
        x += ink.shape[1] + 12
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
