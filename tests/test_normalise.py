from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.normalise import (
    MNIST_STROKE,
    EmptyCropError,
    StrokeTarget,
    estimate_stroke_width,
    normalise_batch,
    normalise_mask_to_mnist,
    normalise_to_mnist,
)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    mass = image.sum()
    return float((image * xs).sum() / mass), float((image * ys).sum() / mass)


def _ink_box(image: np.ndarray, level: float = 0.1) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(image > level)
    return xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def _pen_seven(height=120, width=80, stroke=6, margin=20) -> np.ndarray:
    """A dark '7' on light paper, like a photo crop."""
    page = np.full((height + 2 * margin, width + 2 * margin), 230, np.uint8)
    top, left = margin, margin
    cv2.line(page, (left, top), (left + width, top), 30, stroke)
    cv2.line(page, (left + width, top), (left + width // 3, top + height), 30, stroke)
    return page


def _ring(width: int, height: int, stroke: int) -> np.ndarray:
    page = np.full((height + 40, width + 40), 220, np.uint8)
    cv2.ellipse(page, (20 + width // 2, 20 + height // 2), (width // 2, height // 2), 0, 0, 360, 20, stroke)
    return page


@pytest.mark.parametrize("crop", [_pen_seven(), _ring(60, 100, 5), _ring(200, 150, 25)], ids=["seven", "tall-ring", "wide-marker-ring"])
def test_centre_of_mass_lands_within_a_pixel_of_14_14(crop):
    out = normalise_to_mnist(crop)
    cx, cy = _centre_of_mass(out)
    assert abs(cx - 14) <= 1.0 and abs(cy - 14) <= 1.0


@pytest.mark.parametrize("crop", [_ring(60, 100, 5), _ring(120, 40, 6), _ring(30, 30, 3)])
def test_ink_fits_the_central_20_by_20_box(crop):
    out = normalise_to_mnist(crop)
    x, y, w, h = _ink_box(out)
    assert max(w, h) in (20, 21) and min(w, h) <= 21
    assert x >= 3 and y >= 3 and x + w <= 25 and y + h <= 25


def test_aspect_ratio_is_kept():
    tall = normalise_to_mnist(_ring(50, 100, 5))
    wide = normalise_to_mnist(_ring(100, 50, 5))
    _, _, tw, th = _ink_box(tall, 0.3)
    _, _, ww, wh = _ink_box(wide, 0.3)
    assert 0.4 <= tw / th <= 0.62
    assert 0.4 <= wh / ww <= 0.62


def test_either_ink_polarity_gives_white_ink_on_black():
    dark_on_light = _pen_seven()
    light_on_dark = 255 - dark_on_light
    a = normalise_to_mnist(dark_on_light)
    b = normalise_to_mnist(light_on_dark)
    assert a.dtype == np.float32 and a.shape == (28, 28)
    assert a[0, 0] == 0.0 and a.max() > 0.9 and 0.0 <= a.min()
    assert np.abs(a - b).max() < 1e-6
    assert np.array_equal(normalise_to_mnist(dark_on_light, ink="dark"), a)


def test_bgr_photo_crops_are_accepted():
    gray = _pen_seven()
    assert np.abs(normalise_to_mnist(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)) - normalise_to_mnist(gray)).max() < 1e-6


@pytest.mark.parametrize("crop", [np.full((40, 30), 200, np.uint8), np.zeros((28, 28), np.uint8), np.zeros((0, 5), np.uint8)],
                         ids=["blank-paper", "black", "zero-size"])
def test_empty_crop_is_rejected(crop):
    with pytest.raises(EmptyCropError):
        normalise_to_mnist(crop)


@pytest.mark.parametrize("mask", [np.zeros((0, 5), np.uint8), np.zeros((9, 9), bool), np.zeros((4, 4), np.uint8)],
                         ids=["zero-size", "no-ink-bool", "no-ink"])
def test_an_empty_mask_is_rejected(mask):
    with pytest.raises(EmptyCropError):
        normalise_mask_to_mnist(mask)


def test_masks_of_any_ink_value_normalise_alike():
    mask = np.zeros((40, 30), np.uint8)
    cv2.line(mask, (5, 5), (25, 35), 1, 4)
    expected = normalise_mask_to_mnist(mask)
    assert np.array_equal(normalise_mask_to_mnist(mask * 255), expected)
    assert np.array_equal(normalise_mask_to_mnist(mask.astype(bool)), expected)


def test_thin_pen_and_thick_marker_come_out_with_mnist_like_strokes():
    thin = normalise_to_mnist(_pen_seven(stroke=2))
    thick = normalise_to_mnist(_pen_seven(stroke=22))
    # MNIST strokes are about 2 px at 28x28: mean ink of a '7' stays in MNIST's range either way.
    for out in (thin, thick):
        width = estimate_stroke_width((cv2.resize(out, (112, 112)) > 0.5).astype(np.uint8)) / 4
        assert 1.5 <= width <= 3.5
    assert np.abs(thin.mean() - thick.mean()) < 0.04


def test_mnist_digits_survive_normalisation_almost_unchanged(mnist):
    digits = mnist.x_test[:300]
    out = normalise_batch([d for d in digits], ink="light")[..., 0]
    assert out.shape == (300, 28, 28)
    assert np.abs(out - digits).mean() < 0.06
    assert abs(out.mean() - digits.mean()) < 0.01


def test_a_stroke_target_sets_the_width_the_strokes_are_brought_to():
    mask = 1 - (_pen_seven(stroke=10) > 128).astype(np.uint8)
    # The default is MNIST's stroke, which leaves a stroke within its tolerance alone...
    default = normalise_mask_to_mnist(mask)
    assert np.array_equal(normalise_mask_to_mnist(mask, MNIST_STROKE), default)
    assert np.array_equal(normalise_mask_to_mnist(mask, StrokeTarget(width=2.0, tolerance=1.0)), default)
    # ...and a thicker target with no tolerance widens it.
    widths = [estimate_stroke_width((cv2.resize(out, (112, 112)) > 0.5).astype(np.uint8)) / 4
              for out in (default, normalise_mask_to_mnist(mask, StrokeTarget(width=3.0, tolerance=0.0)))]
    assert widths[1] > widths[0] + 0.5
