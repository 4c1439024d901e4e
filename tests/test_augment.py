from __future__ import annotations

import numpy as np

from digitrec.augment import CameraAugmentation, camera_digits, not_a_digit_marks


def test_camera_digits_are_reproducible_under_a_seed(mnist):
    digits = mnist.x_train[:40]
    first = camera_digits(digits, seed=7)
    again = camera_digits(digits, seed=7)
    other = camera_digits(digits, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_camera_digits_come_out_in_mnist_format(mnist):
    out = camera_digits(mnist.x_train[:60], seed=1)
    assert out.shape == (60, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # Every sample keeps ink, and the MNIST frame of empty pixels holds almost none.
    assert (out.reshape(60, -1).max(axis=1) > 0.5).all()
    assert out[:, :2].mean() < 0.02 and out[:, -2:].mean() < 0.02


def test_augmentation_changes_the_digits_it_is_given(mnist):
    digits = mnist.x_train[:50]
    out = camera_digits(digits, seed=3)
    assert np.abs(out - digits).mean() > 0.03


def test_a_gentler_config_changes_digits_less(mnist):
    digits = mnist.x_train[:80]
    gentle = CameraAugmentation(rotation=0.0, shear=0.0, scale_x=(1.0, 1.0), stroke_change=(0.0, 0.0),
                                broken_stroke_probability=0.0, neighbour_probability=0.0, ruled_line_probability=0.0)
    assert np.abs(camera_digits(digits, 5, gentle) - digits).mean() < np.abs(camera_digits(digits, 5) - digits).mean()


def test_non_digit_marks_are_reproducible_and_inked(mnist):
    marks = not_a_digit_marks(50, mnist.x_train[:100], seed=11)
    assert np.array_equal(marks, not_a_digit_marks(50, mnist.x_train[:100], seed=11))
    assert marks.shape == (50, 28, 28)
    assert (marks.reshape(50, -1).max(axis=1) > 0.5).all()
