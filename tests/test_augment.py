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


def test_a_flag_is_drawn_at_the_top_left_of_about_the_asked_share_of_upright_ones(mnist):
    from digitrec.augment import flag_ones

    images, labels = mnist.x_train[:2000], mnist.y_train[:2000]
    before = images.copy()
    flagged, count = flag_ones(images, labels, 0.5, seed=7)
    np.testing.assert_array_equal(images, before)  # drawn on a copy
    changed = np.flatnonzero(np.abs(flagged - images).reshape(len(images), -1).max(axis=1) > 0.1)
    assert count == len(changed)
    assert set(labels[changed]) == {1}  # only '1's
    ones = np.sum(labels == 1)
    assert 0.1 * ones <= count <= 0.5 * ones  # half, less the slanted ones (many of MNIST's) left alone
    assert flag_ones(images, labels, 1.0, seed=7)[1] > 1.5 * count
    for index in changed[:20]:
        added = (flagged[index] - images[index]) > 0.3
        rows, columns = np.nonzero(added)
        ink_columns = np.nonzero(images[index] > 0.4)[1]
        assert rows.mean() < 14  # in the upper half...
        assert columns.mean() < ink_columns.mean()  # ...left of the stem
    again, _ = flag_ones(images, labels, 0.5, seed=7)
    np.testing.assert_array_equal(again, flagged)
    untouched, none = flag_ones(images, labels, 0.0, seed=7)
    assert none == 0 and np.array_equal(untouched, images)
