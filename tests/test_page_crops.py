"""Training crops cut by the reader's own segmenter from synthetic pages of training digits."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.augment import NOT_A_DIGIT
from digitrec.page_crops import PageCropConfig, _iou_matrix, crops_of_page, segmenter_crops
from digitrec.synth import MnistGlyphs, make_page


@pytest.fixture(scope="module")
def training_glyphs(mnist):
    return MnistGlyphs(mnist.x_train[:5000], mnist.y_train[:5000])


def test_iou_matrix_of_known_boxes():
    boxes = [(0, 0, 10, 10), (5, 0, 10, 10)]
    overlap = _iou_matrix(boxes, [(0, 0, 10, 10), (100, 100, 5, 5)])
    assert overlap[0, 0] == pytest.approx(1.0)
    assert overlap[1, 0] == pytest.approx(50 / 150)
    assert overlap[:, 1].max() == 0.0
    assert _iou_matrix(boxes, []).shape == (2, 0)


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
    config = PageCropConfig(pages=3)
    images, labels = mnist.x_train[:3000], mnist.y_train[:3000]
    one = segmenter_crops(images, labels, seed=5, config=config, workers=1)
    two = segmenter_crops(images, labels, seed=5, config=config, workers=2)
    assert len(one[1]) > 20
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
