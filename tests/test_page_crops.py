"""Training crops cut by the reader's own segmenter from synthetic pages of training digits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.augment import NOT_A_DIGIT
from digitrec.page_crops import PageCropConfig, crops_of_page, iou_matrix, segmenter_crops
from digitrec.synth import MnistGlyphs, make_page, make_touching_pair


@pytest.fixture(scope="module")
def training_glyphs(mnist):
    return MnistGlyphs(mnist.x_train[:5000], mnist.y_train[:5000])


def test_iou_matrix_of_known_boxes():
    boxes = [(0, 0, 10, 10), (5, 0, 10, 10)]
    overlap = iou_matrix(boxes, [(0, 0, 10, 10), (100, 100, 5, 5)])
    assert overlap[0, 0] == pytest.approx(1.0)
    assert overlap[1, 0] == pytest.approx(50 / 150)
    assert overlap[:, 1].max() == 0.0
    assert iou_matrix(boxes, []).shape == (2, 0)


def test_page_crops_are_labelled_with_the_digit_they_cover(training_glyphs):
    page = make_page(11, training_glyphs, "marks")
    x, y = crops_of_page(page.image, [d.box for d in page.digits], [d.digit for d in page.digits], page.ignored)
    assert x.shape == (len(y), 28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    digits = y[y != NOT_A_DIGIT]
    # Nearly every written digit is cut out whole and carries its own label.
    assert len(digits) >= 0.9 * len(page.digits)
    assert set(digits.tolist()) <= {d.digit for d in page.digits}
    written = np.bincount([d.digit for d in page.digits], minlength=10)
    assert np.all(np.bincount(digits, minlength=10)[written == 0] == 0)
    # A page with 10 or more marks gives examples of "not a digit" too.
    assert np.sum(y == NOT_A_DIGIT) >= 3


def test_segmenter_crops_are_reproducible_whatever_the_worker_count(mnist):
    config = PageCropConfig(pages=3, marked_pages=1, touching_pairs=4)
    images, labels = mnist.x_train[:3000], mnist.y_train[:3000]
    one = segmenter_crops(images, labels, seed=5, config=config, workers=1)
    two = segmenter_crops(images, labels, seed=5, config=config, workers=2)
    assert len(one[1]) > 20
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_merged_touching_digits_are_not_a_digit_and_whole_digits_can_be_left_out(training_glyphs):
    merged_shapes, pairs_with_merged, extra_whole = [], 0, 0
    for seed in range(10):
        page = make_touching_pair(100 + seed, training_glyphs).page
        boxes, labels = [d.box for d in page.digits], [d.digit for d in page.digits]
        x, y = crops_of_page(page.image, boxes, labels, page.ignored, whole_digits=False)
        x_all, y_all = crops_of_page(page.image, boxes, labels, page.ignored)
        extra_whole += int(np.sum(y_all != NOT_A_DIGIT) - np.sum(y != NOT_A_DIGIT))
        pairs_with_merged += bool(np.any(y == NOT_A_DIGIT))
        for crop in x[y == NOT_A_DIGIT]:
            rows, cols = np.flatnonzero(crop.max(axis=1) > 0.1), np.flatnonzero(crop.max(axis=0) > 0.1)
            merged_shapes.append((cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1))
    # Most touching pairs give their merged blob as "not a digit", and a blob of two digits side by
    # side is wider than tall once normalised, unlike nearly every single digit.
    assert pairs_with_merged >= 7
    assert np.median(merged_shapes) > 1.0
    # The two untouched digits of each line are cut out whole; only whole_digits=True keeps them.
    assert extra_whole >= 2 * 10 * 0.8


def test_a_box_over_two_side_by_side_digits_is_not_a_digit_but_one_over_a_tucked_digit_is_left_out():
    image = np.full((480, 640, 3), 255, np.uint8)
    for centre in ((305, 240), (335, 240)):  # two touching rings: "00" written as one blob of ink
        cv2.ellipse(image, centre, (15, 30), 0, 0, 360, (0, 0, 0), 4)
    # Read as a video frame, the blob (about as wide as it is tall) is not cut: one crop, the blob whole.
    as_frame = PageCropConfig(still_cuts=False)
    side_by_side = [(288, 208, 34, 64), (318, 208, 34, 64)]
    _, y = crops_of_page(image, side_by_side, [0, 0], [], as_frame)
    assert y.tolist() == [NOT_A_DIGIT]
    tucked = [(288, 208, 64, 64), (300, 215, 40, 50)]  # the second box lies inside the first
    _, y = crops_of_page(image, tucked, [0, 1], [], as_frame)
    assert y.tolist() == []
    # Read as a photo, it is cut too, and the cuts that fall on one ring each are that ring's digit.
    _, y = crops_of_page(image, side_by_side, [0, 0], [])
    assert y[0] == NOT_A_DIGIT and len(y) > 1 and set(y[1:].tolist()) == {0}


def test_cuts_as_a_photo_is_read_add_narrow_cuts_to_those_a_video_frame_is_offered(training_glyphs):
    added = 0
    for seed in range(10):
        page = make_touching_pair(100 + seed, training_glyphs).page
        page_args = (page.image, [d.box for d in page.digits], [d.digit for d in page.digits], page.ignored)
        x_still, y_still = crops_of_page(*page_args, config=PageCropConfig(still_cuts=True))
        x_frame, y_frame = crops_of_page(*page_args, config=PageCropConfig(still_cuts=False))
        # Every crop a video frame's reading gives is given again, with the same label...
        still_rows = {(crop.tobytes(), label) for crop, label in zip(x_still, y_still.tolist())}
        assert all((crop.tobytes(), label) in still_rows for crop, label in zip(x_frame, y_frame.tolist()))
        added += len(y_still) - len(y_frame)
    # ...and a still photo's reading cuts some regions a frame's leaves whole.
    assert added >= 2
