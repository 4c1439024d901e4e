"""The thresholding's compiled passes give exactly what the plain NumPy and OpenCV forms give."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.binarise import (
    HYSTERESIS_LOW,
    MAX_INK_CONTRAST_THRESHOLD,
    MIN_INK_CONTRAST,
    binarise_ink_on_paper,
    ink_channel,
    ink_darkness_threshold,
    label_lookup,
    paper_light,
)


def _photo(seed: int, shape=(120, 160)) -> np.ndarray:
    """Coloured noise with dark and faint strokes on light paper under a gradient."""
    rng = np.random.default_rng(seed)
    image = np.full((*shape, 3), 215, np.uint8)
    image = (image * np.linspace(0.7, 1.0, shape[1])[None, :, None]).astype(np.uint8)
    for index in range(12):
        start = tuple(int(v) for v in rng.integers(0, (shape[1], shape[0])))
        end = tuple(int(v) for v in rng.integers(0, (shape[1], shape[0])))
        shade = int(rng.integers(40, 190))
        cv2.line(image, start, end, (shade, shade + 20 * (index % 2), 255 - shade), int(rng.integers(1, 4)))
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def test_ink_channel_is_the_darkest_channel_of_each_pixel():
    for seed in range(3):
        image = _photo(seed)
        expected = np.minimum(np.minimum(image[..., 0], image[..., 1]), image[..., 2])
        np.testing.assert_array_equal(ink_channel(image), expected)
        view = image[5:-7, 3:-11]  # not contiguous
        np.testing.assert_array_equal(ink_channel(view), expected[5:-7, 3:-11])
    gray = _photo(0)[..., 1]
    assert ink_channel(gray) is gray


def test_light_ink_is_the_darkest_channel_of_the_inverted_image():
    image = _photo(5)
    inverted = 255 - image
    np.testing.assert_array_equal(ink_channel(inverted, "light"), ink_channel(image))
    np.testing.assert_array_equal(ink_channel(inverted[..., 1], "light"), image[..., 1])
    with pytest.raises(ValueError, match="dark, light"):
        ink_channel(image, "blue")


def test_label_lookup_is_indexing_the_table_by_the_labels():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 300, (37, 53)).astype(np.int32)
    table = rng.integers(0, 2, 300).astype(np.uint8)
    np.testing.assert_array_equal(label_lookup(table, labels), table[labels])


def test_ink_is_the_faint_pixels_joined_to_sure_ink():
    for seed in range(4):
        gray = ink_channel(_photo(seed))
        ink = binarise_ink_on_paper(gray, 31)
        smoothed = cv2.GaussianBlur(gray, (ink.smoothing, ink.smoothing), 0)
        darkness = 1.0 - smoothed.astype(np.float32) / np.maximum(ink.paper.astype(np.float32), 1.0)
        count, labels = cv2.connectedComponents((darkness > HYSTERESIS_LOW * ink.threshold).astype(np.uint8),
                                                connectivity=8)
        reaching = np.unique(labels[darkness > ink.threshold])
        expected = np.isin(labels, reaching[reaching > 0]).astype(np.uint8)
        assert 0 < expected.sum() < expected.size
        np.testing.assert_array_equal(ink.mask, expected)


def _opencv_threshold(gray: np.ndarray, paper: np.ndarray) -> float:
    """The threshold as OpenCV computes it: a float darkness image, scaled to 8 bits, Otsu's split."""
    darkness = 1.0 - gray.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    otsu, _ = cv2.threshold(cv2.convertScaleAbs(darkness, alpha=255.0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(np.clip(otsu / 255.0, MIN_INK_CONTRAST, MAX_INK_CONTRAST_THRESHOLD))


def test_the_ink_threshold_is_the_one_opencv_computes():
    rng = np.random.default_rng(11)
    unclipped = 0
    for seed in range(60):
        gray = cv2.GaussianBlur(ink_channel(_photo(seed, (int(rng.integers(20, 90)), int(rng.integers(20, 90))))),
                                (3, 3), 0)
        if seed % 3 == 1:  # any levels at all, paper darker than ink included
            gray = rng.integers(0, 256, gray.shape).astype(np.uint8)
        paper = paper_light(gray, int(rng.choice([3, 9, 31])))
        expected = _opencv_threshold(gray, paper)
        assert ink_darkness_threshold(gray, paper) == expected
        unclipped += MIN_INK_CONTRAST < expected < MAX_INK_CONTRAST_THRESHOLD
    assert unclipped >= 10  # the comparison reached Otsu's own levels, not only the clip
    flat = np.full((10, 10), 200, np.uint8)
    assert ink_darkness_threshold(flat, flat) == _opencv_threshold(flat, flat)
