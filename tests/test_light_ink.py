"""Light ink on a dark ground (`SegmentationConfig.ink`, `--ink light`): chalk on a blackboard is read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digitrec.binarise import ink_channel
from digitrec.evaluation import score_frame
from digitrec.reader import DigitReader
from digitrec.segment import DEFAULT_SEGMENTATION
from digitrec.synth import StrokeGlyphs, make_page
from digitrec.types import Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"


def _blackboard(page_image: np.ndarray, seed: int) -> np.ndarray:
    """The page's ink as greyish chalk on a dark green board, with fresh noise: not the page inverted."""
    chalk = np.clip((1 - ink_channel(page_image).astype(np.float32) / 255 - 0.15) / 0.6, 0, 1)
    board = np.array([45, 70, 40], np.float32) + chalk[..., None] * np.array([175, 180, 175], np.float32)
    noise = np.random.default_rng(seed).normal(0, 6, board.shape)
    return np.clip(board + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def readers():
    dark = DigitReader(MODEL)
    light = DigitReader(segmentation=replace(DEFAULT_SEGMENTATION, ink="light"), classifier=dark.classifier)
    return dark, light


@pytest.mark.parametrize("seed", [3, 4])
def test_chalk_on_a_blackboard_is_read_with_light_ink_and_not_without(readers, seed):
    dark, light = readers
    page = make_page(seed, StrokeGlyphs(), "clean", (960, 540))
    frame = Frame(index=0, image=_blackboard(page.image, seed), source="blackboard", time=0.0)
    as_light, as_dark = score_frame(page, light.read(frame)), score_frame(page, dark.read(frame))
    assert as_light.true_digits >= 12
    assert as_light.right >= as_light.true_digits - 1 and as_light.false == 0, as_light
    assert as_dark.right <= as_light.true_digits // 4, as_dark
