"""Synthetic pages and videos: deterministic, with truth boxes that are inside, tight and separate."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.data import load_mnist
from digitrec.normalise import normalise_mask_to_mnist
from digitrec.synth import (
    CONDITIONS,
    LAYOUT,
    MnistGlyphs,
    StrokeGlyphs,
    SyntheticPage,
    draw_sample_page,
    make_page,
    make_video,
    write_video,
)

SMALL = (640, 360)
MNIST_BESIDE_PROJECT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def _mnist_path() -> Path:
    path = Path(os.environ.get("DIGITREC_MNIST") or MNIST_BESIDE_PROJECT)
    if not path.exists():
        pytest.skip(f"MNIST not found at {path}; set DIGITREC_MNIST")
    return path


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(_mnist_path())


@pytest.fixture(scope="module")
def strokes() -> StrokeGlyphs:
    return StrokeGlyphs()


def _gray(page: SyntheticPage) -> np.ndarray:
    return cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _paper_around(gray: np.ndarray, page: SyntheticPage, box, pad: int) -> float:
    """Median brightness of a ring around `box`, leaving out every digit and mark."""
    x, y, w, h = box
    ring = np.zeros(gray.shape, bool)
    ring[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad] = True
    for bx, by, bw, bh in [d.box for d in page.digits] + page.marks:
        ring[by : by + bh, bx : bx + bw] = False
    return float(np.median(gray[ring]))


def test_same_seed_gives_the_same_page_and_another_seed_another(strokes):
    first, again = make_page(11, strokes, "mixed", SMALL), make_page(11, strokes, "mixed", SMALL)
    other = make_page(12, strokes, "mixed", SMALL)
    assert np.array_equal(first.image, again.image)
    assert first.digits == again.digits and first.numbers == again.numbers and first.marks == again.marks
    assert not np.array_equal(first.image, other.image)


def test_unknown_condition_is_refused(strokes):
    with pytest.raises(ValueError, match="sunset"):
        make_page(1, strokes, "sunset", SMALL)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_every_condition_gives_boxes_inside_the_image_around_dark_ink(strokes, condition):
    page = make_page(5, strokes, condition, SMALL)
    height, width = page.image.shape[:2]
    assert (width, height) == SMALL and page.image.dtype == np.uint8 and page.condition == condition
    assert page.digits and page.numbers
    gray = _gray(page)
    for truth in page.digits:
        x, y, w, h = truth.box
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert 0 <= truth.digit <= 9 and 0 <= truth.number < len(page.numbers)
        darkest = np.percentile(gray[y : y + h, x : x + w], 5)
        assert darkest < _paper_around(gray, page, truth.box, max(6, h // 2)) - 15


@pytest.mark.parametrize("condition", ["clean", "perspective", "mixed"])
def test_digit_heights_stay_in_the_documented_range(strokes, condition):
    for seed in range(3):
        page = make_page(seed, strokes, condition, SMALL)
        heights = np.array([d.box[3] for d in page.digits])
        assert heights.min() >= (0.75 if condition == "perspective" else 0.9) * LAYOUT.min_digit_px
        assert (
            heights.max()
            <= (1.25 if condition == "perspective" else 1.1) * LAYOUT.max_digit_fraction * SMALL[1]
        )


@pytest.mark.parametrize("condition", ["clean", "marker", "mixed"])
def test_close_ups_write_one_number_of_big_digits_and_leave_ordinary_pages_as_they_were(strokes, condition):
    for seed in range(4):
        page = make_page(seed, strokes, condition, (640, 480), close_up=True)
        heights = [d.box[3] for d in page.digits]
        assert 1 <= len(page.digits) <= 2 and len(page.numbers) == 1 and not page.marks
        assert min(heights) >= 0.2 * 480 and max(heights) <= 0.75 * 480, heights
        video = make_video(seed, strokes, 2, condition=condition, close_up=True)
        assert all(1 <= len(truth.digits) + len(truth.ignored) <= 2 for truth in video.truth)
    # the option draws nothing from the generator when off: an ordinary page is the same page
    assert np.array_equal(make_page(3, strokes, "mixed", SMALL).image,
                          make_page(3, strokes, "mixed", SMALL, close_up=False).image)


def test_numbers_spell_their_digits_left_to_right_inside_their_union_box(strokes):
    page = make_page(3, strokes, "clean", SMALL)
    for index, number in enumerate(page.numbers):
        members = [d for d in page.digits if d.number == index]
        assert "".join(str(d.digit) for d in sorted(members, key=lambda d: d.box[0])) == number.text
        x0 = min(d.box[0] for d in members)
        y0 = min(d.box[1] for d in members)
        x1 = max(d.box[0] + d.box[2] for d in members)
        y1 = max(d.box[1] + d.box[3] for d in members)
        assert number.box == (x0, y0, x1 - x0, y1 - y0)


@pytest.mark.parametrize("seed", range(4))
def test_perspective_boxes_are_tight_around_the_ink(strokes, seed):
    page = make_page(seed, strokes, "perspective", SMALL)
    gray = _gray(page)
    others = [d.box for d in page.digits] + page.marks
    for truth in page.digits:
        x, y, w, h = truth.box
        pad = 3
        x0, y0 = max(0, x - pad), max(0, y - pad)
        window = gray[y0 : y + h + pad, x0 : x + w + pad].copy()
        paper = _paper_around(gray, page, truth.box, max(6, h // 2))
        darkness = paper - window
        neighbours = np.zeros(darkness.shape, bool)
        for bx, by, bw, bh in others:  # neighbours (and their blur) reaching into the window
            if (bx, by, bw, bh) != truth.box:
                top, left = max(0, by - y0 - 2), max(0, bx - x0 - 2)
                neighbours[top : max(0, by + bh - y0 + 2), left : max(0, bx + bw - x0 + 2)] = True
        neighbours[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = False
        darkness[neighbours] = 0
        ink = (darkness > 0.45 * darkness.max()).astype(np.uint8)
        ix, iy, iw, ih = cv2.boundingRect(cv2.findNonZero(ink))
        found = (ix + x0, iy + y0, ix + x0 + iw, iy + y0 + ih)
        assert np.abs(np.subtract(found, (x, y, x + w, y + h))).max() <= 2, (truth, found)


@pytest.mark.parametrize("condition", ["clean", "ruled", "blue_pen", "marker"])
def test_digits_of_a_number_neither_overlap_nor_touch(strokes, condition):
    for seed in range(3):
        page = make_page(seed, strokes, condition, SMALL)
        for index in range(len(page.numbers)):
            boxes = sorted((d.box for d in page.digits if d.number == index), key=lambda b: b[0])
            for left, right in zip(boxes, boxes[1:]):
                assert left[0] + left[2] < right[0], (page.numbers[index], left, right)


def test_numbers_on_a_line_are_further_apart_than_digits(strokes):
    page = make_page(8, strokes, "clean", SMALL)
    by_line: dict[int, list] = {}
    for number in page.numbers:
        line = min(by_line, key=lambda y: abs(y - number.box[1]), default=None)
        if line is None or abs(line - number.box[1]) > number.box[3]:
            line = number.box[1]
        by_line.setdefault(line, []).append(number.box)
    assert len(by_line) >= 2
    for boxes in by_line.values():
        boxes.sort()
        for left, right in zip(boxes, boxes[1:]):
            assert right[0] - (left[0] + left[2]) >= 1.0 * max(left[3], right[3])


def test_marks_condition_has_ten_marks_clear_of_the_digits(strokes):
    for seed in range(3):
        page = make_page(seed, strokes, "marks", SMALL)
        assert len(page.marks) >= 10
        for mx, my, mw, mh in page.marks:
            for digit in page.digits:
                dx, dy, dw, dh = digit.box
                assert mx + mw <= dx or dx + dw <= mx or my + mh <= dy or dy + dh <= my


def test_clean_pages_have_no_marks(strokes):
    assert make_page(4, strokes, "clean", SMALL).marks == []


def test_video_truth_follows_a_smooth_hand_held_drift(strokes, tmp_path):
    video = make_video(3, strokes, frames=12, size=(320, 240), condition="clean")
    assert len(video.frames) == len(video.truth) == 12
    assert all(frame.shape == (240, 320, 3) for frame in video.frames)
    assert all(truth.image is frame for truth, frame in zip(video.truth, video.frames))
    counts = {len(t.digits) + len(t.ignored) for t in video.truth}
    assert len(counts) == 1 and video.truth[0].digits
    centres = np.array(
        [[(d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2) for d in t.digits] for t in video.truth]
    )
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=2)
    assert steps.max() < 0.05 * 320  # no jumps between frames
    assert np.linalg.norm(centres[-1] - centres[0], axis=1).max() > 0.5  # but it does move


def test_write_video_gives_a_file_opencv_reads_back(strokes, tmp_path):
    video = make_video(4, strokes, frames=5, size=(320, 240), condition="noisy")
    path = write_video(video, tmp_path / "hand.mp4")
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)


def test_stroke_glyphs_draw_every_digit_differently_each_time(strokes):
    rng = np.random.default_rng(0)
    for digit in range(10):
        first, second = strokes.sample(digit, rng), strokes.sample(digit, rng)
        assert first.dtype == np.float32 and 0.0 <= first.min() and first.max() <= 1.0
        ys, _ = np.nonzero(first > 0.5)
        assert 80 <= ys.max() - ys.min() <= 125
        assert first.shape != second.shape or not np.array_equal(first, second)


def test_stroke_glyphs_read_as_mnist_digits_to_a_nearest_neighbour(strokes, mnist):
    """A 5-nearest-neighbour vote over MNIST training digits names most drawn digits correctly."""
    rng = np.random.default_rng(1)
    chosen = np.random.default_rng(0).choice(len(mnist.x_train), 10_000, replace=False)
    train = mnist.x_train[chosen].reshape(len(chosen), -1)
    labels = mnist.y_train[chosen]
    truth = np.repeat(np.arange(10), 10)
    queries = np.array([normalise_mask_to_mnist(strokes.sample(int(d), rng) > 0.5).ravel() for d in truth])
    distance = (queries**2).sum(1)[:, None] - 2 * queries @ train.T + (train**2).sum(1)[None, :]
    votes = labels[np.argsort(distance, axis=1)[:, :5]]
    predicted = np.array([np.bincount(v, minlength=10).argmax() for v in votes])
    assert (predicted == truth).mean() >= 0.85
    assert all((predicted[truth == d] == d).mean() >= 0.6 for d in range(10))


def test_mnist_glyphs_are_smooth_upscaled_pen_strokes(mnist):
    glyphs = MnistGlyphs((mnist.x_test[:200] * 255).astype(np.uint8), mnist.y_test[:200])
    rng = np.random.default_rng(0)
    for digit in range(10):
        ink = glyphs.sample(digit, rng)
        assert ink.dtype == np.float32 and ink.shape == (112, 112)
        assert 0.0 <= ink.min() and ink.max() <= 1.0 and (ink > 0.5).sum() > 200
        edge = (ink > 0.05) & (ink < 0.95)
        assert edge.sum() > 50  # antialiased outline, not blocky 4x4 pixels


def test_mnist_glyphs_refuse_a_set_missing_a_digit():
    with pytest.raises(ValueError, match="7"):
        MnistGlyphs(np.zeros((3, 28, 28), np.float32), np.array([1, 2, 3]))


def test_pages_from_mnist_test_digits_carry_true_labels(mnist):
    glyphs = MnistGlyphs(mnist.x_test, mnist.y_test)
    page = make_page(21, glyphs, "ruled", SMALL)
    assert page.digits and "".join(n.text for n in page.numbers) == "".join(str(d.digit) for d in page.digits)


def test_sample_page_is_written_as_a_1280x720_photo(tmp_path):
    path = tmp_path / "sample.png"
    page = draw_sample_page(path)
    image = cv2.imread(str(path))
    assert image.shape == (720, 1280, 3) and np.array_equal(image, page.image)
    assert len(page.digits) >= 3 and page.numbers


def _steepest_number(page) -> float:
    """The steepest slope, in degrees, from a number's first digit's centre to its last's."""
    angles = [0.0]
    for index in range(len(page.numbers)):
        members = sorted((d for d in page.digits if d.number == index), key=lambda d: d.box[0])
        if len(members) > 1:
            (x0, y0, w0, h0), (x1, y1, w1, h1) = members[0].box, members[-1].box
            angles.append(abs(math.degrees(math.atan2(y1 + h1 / 2 - y0 - h0 / 2, x1 + w1 / 2 - x0 - w0 / 2))))
    return max(angles)


def test_a_turned_page_holds_its_lines_at_a_steeper_angle(strokes):
    level = [_steepest_number(make_page(seed, strokes, "clean", SMALL)) for seed in range(4)]
    turned = [_steepest_number(make_page(seed, strokes, "clean", SMALL, turn=30.0)) for seed in range(4)]
    assert max(level) < 8 and 12 < max(turned) < 40, (level, turned)
    # no turn is the condition's own: the same page
    assert np.array_equal(make_page(3, strokes, "mixed", SMALL).image,
                          make_page(3, strokes, "mixed", SMALL, turn=0.0).image)
