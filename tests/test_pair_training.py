"""The pair network's crops, data and training: blobs of two touching digits read whole at 28x56."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

import train
from digitrec.evaluation import iou
from digitrec.model import PAIR_BLOCKS, PHOTO_PAIR_BLOCKS
from digitrec.normalise import MNIST_FORMAT, PAIR_FORMAT, normalise_mask, normalise_mask_to_mnist
from digitrec.pair_crops import DEFAULT_PAIR_CROPS, pair_crops_of_photo
from digitrec.pair_training import CropDistortion, distort_crops, pair_figures, sample_weights
from digitrec.pairs import NOT_A_PAIR, read_pairs
from digitrec.synth import MnistGlyphs, make_touching_pair


def _two_rings(gap: int) -> np.ndarray:
    """A mask of two rings 45 px across side by side, `gap` pixels apart (negative: overlapping)."""
    mask = np.zeros((80, 140), np.uint8)
    cv2.circle(mask, (30, 40), 20, 1, 5)
    cv2.circle(mask, (75 + gap, 40), 20, 1, 5)
    return mask


def test_pair_format_fits_a_wide_blob_at_mnist_height_and_centres_its_mass():
    image = normalise_mask(_two_rings(-4), layout=PAIR_FORMAT)
    assert image.shape == (28, 56) and image.dtype == np.float32
    ys, xs = np.nonzero(image > 0.1)
    assert ys.max() - ys.min() + 1 <= PAIR_FORMAT.box_height + 1
    assert 34 <= xs.max() - xs.min() + 1 <= PAIR_FORMAT.box_width + 1  # about twice its height, as drawn
    mass = image.sum()
    centre_x = (image.sum(axis=0) @ np.arange(56)) / mass
    centre_y = (image.sum(axis=1) @ np.arange(28)) / mass
    assert abs(centre_x - 28) < 1.0 and abs(centre_y - 14) < 1.0


def test_mnist_format_is_the_digit_normaliser():
    mask = _two_rings(-10)
    assert normalise_mask(mask, layout=MNIST_FORMAT).tobytes() == normalise_mask_to_mnist(mask).tobytes()
    # The same blob in the pair format is drawn twice as wide as in MNIST's square box.
    wide = normalise_mask(mask, layout=PAIR_FORMAT)
    square = normalise_mask_to_mnist(mask)
    assert np.ptp(np.nonzero(wide > 0.1)[1]) > 1.6 * np.ptp(np.nonzero(square > 0.1)[1])


def test_touching_pair_photo_gives_its_pair_labelled_left_to_right(mnist):
    glyphs = MnistGlyphs(mnist.x_train[:2000], mnist.y_train[:2000])
    found = 0
    for seed in range(6):
        pair = make_touching_pair(1000 + seed, glyphs)
        digits = pair.page.digits
        x, first, second = pair_crops_of_photo(pair.page.image, [d.box for d in digits], [d.digit for d in digits])
        assert x.shape[1:] == (28, 56) and len(x) == len(first) == len(second)
        # Regions that are not pairs have no second digit; pairs have both digits.
        assert np.all((first == NOT_A_PAIR) == (second == -1))
        left, right = sorted((digits[i] for i in pair.pair), key=lambda d: d.box[0])
        found += bool(np.any((first == left.digit) & (second == right.digit)))
        # The two lone digits of the line are examples of "not a pair".
        assert np.sum(first == NOT_A_PAIR) >= 1
    assert found >= 4


OVERLAPPING_PAIR = 1021
"""A touching '1 6' (of the first 2 000 MNIST training digits) whose '1' is pressed into the '6''s box: IoU 0.39."""

STACKED_PAIR = 1072
"""A touching '4 0' (of the same digits) whose boxes overlap more than half: IoU 0.58."""


def _photo_of_pair(seed: int, mnist):
    pair = make_touching_pair(seed, MnistGlyphs(mnist.x_train[:2000], mnist.y_train[:2000]))
    digits = pair.page.digits
    left, right = sorted((digits[i] for i in pair.pair), key=lambda d: d.box[0])
    photo = (pair.page.image, [d.box for d in digits], [d.digit for d in digits])
    return photo, (left.digit, right.digit), iou(left.box, right.box)  # the overlap pair_crops measures


def test_a_pair_whose_boxes_overlap_under_half_is_taught_as_a_pair(mnist):
    photo, digits, overlap = _photo_of_pair(OVERLAPPING_PAIR, mnist)
    assert digits == (1, 6) and 0.25 < overlap < DEFAULT_PAIR_CROPS.side_by_side_iou
    x, first, second = pair_crops_of_photo(*photo)  # the shipped recipe
    assert np.sum((first == 1) & (second == 6)) == 1
    narrow, first, second = pair_crops_of_photo(*photo, config=replace(DEFAULT_PAIR_CROPS, side_by_side_iou=0.25))
    assert np.sum(second >= 0) == 0 and np.all(first == NOT_A_PAIR)  # session 26's recipe left it out
    assert len(x) == len(narrow) + 1


def test_a_pair_whose_boxes_overlap_much_is_left_out_unless_asked_for(mnist):
    photo, digits, overlap = _photo_of_pair(STACKED_PAIR, mnist)
    assert digits == (4, 0) and overlap > DEFAULT_PAIR_CROPS.side_by_side_iou
    x, first, second = pair_crops_of_photo(*photo)  # the shipped recipe: neither one digit nor a pair
    assert np.sum(second >= 0) == 0 and np.all(first == NOT_A_PAIR)
    wide, first, second = pair_crops_of_photo(*photo, config=replace(DEFAULT_PAIR_CROPS, side_by_side_iou=1.0))
    assert np.sum((first == 4) & (second == 0)) == 1
    assert len(wide) == len(x) + 1


def test_read_pairs_gives_no_confidence_when_not_a_pair_wins():
    first = np.array([[0.05, 0.9] + [0.0] * 8 + [0.05], [0.3, 0.0] + [0.0] * 8 + [0.7]], np.float32)
    second = np.array([[0.0, 0.0, 0.8] + [0.2] + [0.0] * 6] * 2, np.float32)
    readings = read_pairs(first, second)
    assert readings.left.tolist() == [1, 0] and readings.right.tolist() == [2, 2]
    assert readings.confidence[0] == pytest.approx(0.72) and readings.confidence[1] == 0.0
    figures = pair_figures(first, second, np.array([1, NOT_A_PAIR]), np.array([2, -1]))
    assert figures["pairs_read_right"] == 1.0 and figures["pairs_read_right_sure"] == 1.0
    assert figures["not_pairs_read_as_pairs_sure"] == 0.0


def test_shift_only_distortion_moves_ink_by_at_most_the_shift():
    crops = np.zeros((50, 28, 56), np.float32)
    crops[:, 10:18, 20:30] = 1.0
    shifted = distort_crops(crops, np.random.default_rng(0))
    assert set(np.unique(shifted)) == {0.0, 1.0}  # whole pixels moved, nothing resampled
    assert np.all(shifted.sum(axis=(1, 2)) == crops[0].sum())  # interior ink is never cut off
    ys = [np.nonzero(crop.any(axis=1))[0][0] for crop in shifted]
    xs = [np.nonzero(crop.any(axis=0))[0][0] for crop in shifted]
    assert set(ys) <= set(range(8, 13)) and set(xs) <= set(range(18, 23)) and len(set(xs)) > 1


def test_affine_distortion_turns_and_scales_each_crop_about_its_centre():
    crops = np.zeros((200, 28, 56), np.float32)
    crops[:, 10:18, 20:36] = 1.0  # a 16x8 bar centred on (27.5, 13.5)
    distortion = CropDistortion(shift_px=0, rotation=10.0, shear=0.0, scale=(0.8, 1.2))
    out = distort_crops(crops, np.random.default_rng(1), distortion)
    ys, xs = np.mgrid[:28, :56]
    mass = out.sum(axis=(1, 2))
    centre_x = (out * xs).sum(axis=(1, 2)) / mass
    centre_y = (out * ys).sum(axis=(1, 2)) / mass
    assert np.abs(centre_x - 27.5).max() < 0.3 and np.abs(centre_y - 13.5).max() < 0.3  # no shift asked
    assert 0.8 * 0.8 * 128 - 3 < mass.min() and mass.max() < 1.2 * 1.2 * 128 + 3  # area follows the scales
    assert mass.std() > 5  # each crop drew its own scales
    # the bar's slope (second moments) shows each crop turned its own way, within the 10 degrees asked
    dx, dy = xs[None] - centre_x[:, None, None], ys[None] - centre_y[:, None, None]
    angles = np.degrees(0.5 * np.arctan2(2 * (out * dx * dy).sum(axis=(1, 2)),
                                         (out * (dx * dx - dy * dy)).sum(axis=(1, 2))))
    assert np.abs(angles).max() <= 10.5 and angles.std() > 3
    assert np.array_equal(distort_crops(crops, np.random.default_rng(1), distortion), out)  # seeded


def test_sample_weights_count_pairs_in_both_heads_and_other_regions_in_the_first_only():
    second = np.array([3, -1, 0, -1])  # two pairs (right digits 3 and 0) and two other regions
    plain = sample_weights(second, 1.0)
    assert plain["first"].tolist() == [1, 1, 1, 1] and plain["second"].tolist() == [1, 0, 1, 0]
    heavy = sample_weights(second, 2.0)
    assert heavy["first"].tolist() == [2, 1, 2, 1] and heavy["second"].tolist() == [2, 0, 2, 0]


@pytest.mark.parametrize("network, name, blocks", [("--pairs", "pairs", PAIR_BLOCKS),
                                                   ("--photo-pairs", "pairs_photo", PHOTO_PAIR_BLOCKS)])
def test_quick_pair_training_writes_the_network_its_export_and_figures(tmp_path, mnist_path, network, name, blocks):
    code = train.main([network, "--quick", "--data", str(mnist_path), "--out", str(tmp_path)])
    assert code == 0
    metrics = json.loads((tmp_path / f"{name}_metrics.json").read_text())
    assert [tuple(block) for block in metrics["config"]["blocks"]] == list(blocks)
    import keras

    saved = keras.saving.load_model(tmp_path / f"{name}.keras", compile=False)
    assert [layer.filters for layer in saved.layers if isinstance(layer, keras.layers.Conv2D)] == [
        filters for filters, _ in blocks]
    assert metrics["training_crops"]["pairs"] > 10 and metrics["training_crops"]["not_pairs"] > 50
    held = metrics["held_out"]
    assert held["pairs"] > 0 and 0.0 <= held["pairs_read_right"] <= 1.0
    assert not (tmp_path / "metrics.json").exists()  # the digit model's card is not touched
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / f"{name}.tflite"))
    assert tuple(interpreter.get_input_details()[0]["shape"]) == (1, 28, 56, 1)
    assert sorted(int(d["shape"][-1]) for d in interpreter.get_output_details()) == [10, 11]
