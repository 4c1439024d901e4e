"""The reader with the pair network: a still photo's wide (and nearly wide) regions, and a video frame's regions
read unsurely, read whole as two digits."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import digitrec.reader
from digitrec.classify import ModelFileError
from digitrec.cli_help import add_pair_model_options, pair_models
from digitrec.normalise import PAIR_FORMAT
from digitrec.pairs import (
    NOT_A_PAIR,
    PAIR_OVER_CUTS,
    PairClassifier,
    PairGates,
    PairReadings,
    agreeing_cut,
    cuts_stand,
    read_pairs,
)
from digitrec.reader import DEFAULT_PAIR_MODEL, DEFAULT_PHOTO_PAIR_MODEL, DigitReader, photo_pair_model_for
from digitrec.synth import MnistGlyphs, make_page, make_touching_pair
from digitrec.types import Detection, Frame

SHIPPED_PAIRS = DEFAULT_PAIR_MODEL.with_suffix(".tflite")
SHIPPED_PHOTO_PAIRS = DEFAULT_PHOTO_PAIR_MODEL.with_suffix(".tflite")


def _reader(pair_model, **options) -> DigitReader:
    """A reader with `pair_model`; options named as `PairGates`' fields set its gates, the rest the reader."""
    gates = {name: options.pop(name) for name in list(options) if name in PairGates.__dataclass_fields__}
    return DigitReader(pair_model=pair_model, pair_gates=PairGates(**gates), **options)


class FixedPairs:
    """A pair network that reads every blob as the same pair, and records the batches it was given."""

    def __init__(self, left: int, right: int, left_p: float = 0.99, right_p: float = 0.98, not_pair_p: float = 0.0):
        """`not_pair_p` > 0: the first head calls every blob "not a pair" with that probability instead."""
        self.left, self.right, self.left_p, self.right_p = left, right, left_p, right_p
        self.not_pair_p = not_pair_p
        self.batches: list[np.ndarray] = []

    def read(self, batch: np.ndarray) -> PairReadings:
        self.batches.append(batch)
        first = np.full((len(batch), NOT_A_PAIR + 1), (1 - self.left_p) / NOT_A_PAIR, np.float32)
        first[:, self.left] = self.left_p
        if self.not_pair_p:
            first[:] = (1 - self.not_pair_p) / NOT_A_PAIR
            first[:, NOT_A_PAIR] = self.not_pair_p
        second = np.full((len(batch), NOT_A_PAIR), (1 - self.right_p) / (NOT_A_PAIR - 1), np.float32)
        second[:, self.right] = self.right_p
        return read_pairs(first, second)


def _pair_photo(mnist, seed: int):
    return make_touching_pair(seed, MnistGlyphs(mnist.x_test[:3000], mnist.y_test[:3000]))


def _inside(detections, box):
    x0, y0, w, h = box
    return sorted((d for d in detections if x0 <= d.box[0] + d.box[2] / 2 <= x0 + w
                   and y0 <= d.box[1] + d.box[3] / 2 <= y0 + h), key=lambda d: d.box[0])


def _union(boxes):
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    return (x0, y0, max(b[0] + b[2] for b in boxes) - x0, max(b[1] + b[3] for b in boxes) - y0)


CUTS_READ_ONE_UNSURE = 4282
"""A touching '7 1' whose cuts read a '1' alone at 0.72."""
CUTS_READ_TWO = 4244
"""A touching '4 5' whose cuts read '6 5' (0.999, 0.98)."""
CUTS_READ_TWO_WHOLE_ONE = 4200
"""A touching '7 7' whose cuts read '7 7' and which the classifier reads whole as a '7'."""
CUTS_READ_ONE_SURE = 4292
"""A touching '7 1' whose cuts read a '7' alone at 0.998."""
CUTS_READ_NOTHING = 4030
"""A touching '4 3', 1.5 line heights wide, which the reader reads as no digit (whole or by its chosen cut), though
one of its cuts reads '4 3' (1.0, 0.851)."""
CUTS_READ_TWO_ONE_CUT_RIGHT = 4001
"""A touching '0 2' whose chosen cut reads '6 2' (0.964, 0.972), and another cut '0 2' (1.0, 0.958)."""
NARROW_READ_NOTHING = 4013
"""A touching '5 1' only 0.71 line heights wide (offered no cut), which the classifier rejects whole."""
NARROW_READ_ONE_UNSURE = 4118
"""A touching '9 1' 0.67 line heights wide, which the classifier reads whole as a '9' at 0.92."""

WIDE_ONLY = float("inf")
"""`DigitReader(from_width=)` for the tests of regions offered cuts: narrower ones are not read as pairs."""


def test_a_photo_s_touching_pair_is_reported_as_the_pair_network_reads_it(mnist):
    pairs = FixedPairs(7, 3)
    reader = _reader(pairs, from_width=WIDE_ONLY)
    pair = _pair_photo(mnist, CUTS_READ_ONE_UNSURE)
    result = reader.read(Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True))
    # One call for the photo's regions offered cuts (here only the blob of the pair).
    assert len(pairs.batches) == 1 and len(pairs.batches[0]) == 1 and pairs.batches[0].shape[1:] == (PAIR_FORMAT.height, PAIR_FORMAT.width, 1)
    blob = _union([pair.page.digits[i].box for i in pair.pair])
    inside = _inside(result.detections, blob)
    assert [d.digit for d in inside] == [7, 3]
    assert [d.confidence for d in inside] == pytest.approx([0.99, 0.98])
    # Two boxes side by side within the blob, tight around their parts.
    assert inside[0].box[0] < inside[1].box[0]
    assert all(d.probabilities.shape == (10,) and d.probabilities.sum() == pytest.approx(1.0) for d in inside)


def _still(mnist, seed: int) -> Frame:
    return Frame(index=0, image=_pair_photo(mnist, seed).page.image, source="t", time=0.0, still=True)


def _read(pairs, still: Frame, **reader_options) -> list:
    options = {"from_width": WIDE_ONLY, **reader_options}
    return [(d.box, d.digit) for d in _reader(pairs, **options).read(still).detections]


def test_cuts_that_read_one_digit_surely_stand_unless_the_pair_network_is_surer(mnist):
    still = _still(mnist, CUTS_READ_ONE_SURE)  # a '7 1' whose cuts read a '7' alone at 0.998
    unsure = FixedPairs(7, 1, left_p=0.94, right_p=0.94)  # 0.88: over PAIR_OVER_CUTS, under PAIR_OVER_SURE_DIGIT
    assert _read(unsure, still) == _read(None, still)
    assert len(unsure.batches) == 1  # it was asked, and overruled
    sure = FixedPairs(7, 1)  # 0.97
    assert _digits_in_pair(mnist, CUTS_READ_ONE_SURE, sure, from_width=WIDE_ONLY) == [7, 1]
    assert _digits_in_pair(mnist, CUTS_READ_ONE_SURE, sure, from_width=WIDE_ONLY,
                           over_sure_digit=float("inf")) == [7]


def test_cuts_that_read_two_digits_stand_unless_the_pair_network_is_very_sure_of_others(mnist):
    still = _still(mnist, CUTS_READ_TWO)  # the cuts read '6 5'
    cuts_alone = _read(None, still)
    unsure = FixedPairs(4, 5, left_p=0.9, right_p=0.9)  # 0.81: under PAIR_OVER_TWO_DIGITS
    assert _read(unsure, still, with_agreeing_cut=WIDE_ONLY) == cuts_alone
    # ...unless another of the region's cuts reads '4 5' too (`pairs.agreeing_cut`).
    assert [digit for _, digit in _read(unsure, still) if digit in (4, 6)] == [4]
    assert _read(FixedPairs(6, 5), still) == cuts_alone  # the same two digits: the cuts' boxes stay
    sure = _read(FixedPairs(4, 5), still)  # 0.97
    assert sure != cuts_alone and [digit for _, digit in sure if digit in (4, 6)] == [4]


def test_a_region_surely_not_a_pair_is_read_whole_when_it_reads_as_a_digit(mnist):
    still = _still(mnist, CUTS_READ_TWO_WHOLE_ONE)  # the cuts read '7 7'; whole, the classifier reads one '7'
    cuts_alone = _read(None, still)
    assert _read(FixedPairs(4, 5, not_pair_p=0.98), still) == cuts_alone  # under NOT_A_PAIR_SURE
    whole = _read(FixedPairs(4, 5, not_pair_p=0.995), still)
    assert len(whole) == len(cuts_alone) - 1
    cut = [(box, digit) for box, digit in cuts_alone if (box, digit) not in whole]
    assert [digit for _, digit in cut] == [7, 7]
    assert [item for item in whole if item not in cuts_alone] == [(_union([box for box, _ in cut]), 7)]
    # A region the classifier rejects whole keeps its cuts, however surely it is not a pair.
    rejected_whole = _still(mnist, CUTS_READ_TWO)
    assert _read(FixedPairs(4, 5, not_pair_p=0.995), rejected_whole) == _read(None, rejected_whole)


def _video_frame(mnist, seed: int) -> Frame:
    return Frame(index=0, image=_pair_photo(mnist, seed).page.image, source="t", time=0.0, still=False)


def _digits_in_video_pair(mnist, seed: int, pairs, **reader_options) -> list[int]:
    pair = _pair_photo(mnist, seed)
    detections = _reader(pairs, **reader_options).read(_video_frame(mnist, seed)).detections
    return [d.digit for d in _inside(detections, _union([pair.page.digits[i].box for i in pair.pair]))]


def test_a_video_frame_asks_the_pair_network_only_for_regions_read_unsurely(mnist):
    # A '7 1' that the frame's batch reads whole as a '7' at 0.998: it stands, and the network is not asked.
    sure = FixedPairs(4, 3)
    assert _digits_in_video_pair(mnist, CUTS_READ_ONE_SURE, sure) == [7] and sure.batches == []
    # A '4 3' 1.5 line heights wide that neither the whole nor any cut reads: a second call, with that blob
    # alone, and the photo's gate (a pair read 0.64 surely is enough where nothing reads).
    unsure = FixedPairs(4, 3, left_p=0.8, right_p=0.8)
    assert _digits_in_video_pair(mnist, CUTS_READ_NOTHING, None) == []
    assert _digits_in_video_pair(mnist, CUTS_READ_NOTHING, unsure) == [4, 3]
    assert [batch.shape for batch in unsure.batches] == [(1, PAIR_FORMAT.height, PAIR_FORMAT.width, 1)]
    never = FixedPairs(4, 3)
    assert _digits_in_video_pair(mnist, CUTS_READ_NOTHING, never, video_from_width=WIDE_ONLY) == []
    assert never.batches == []
    # A '5 1' 0.71 line heights wide that the classifier rejects whole is asked about from VIDEO_PAIR_FROM_WIDTH
    # (a photo's PAIR_FROM_WIDTH, 0.5 heights), and not when the width asked for is raised to session 21's 0.8.
    narrow = FixedPairs(5, 1)
    assert _digits_in_video_pair(mnist, NARROW_READ_NOTHING, narrow, video_from_width=0.8) == []
    assert narrow.batches == []
    assert _digits_in_video_pair(mnist, NARROW_READ_NOTHING, narrow) == [5, 1] and len(narrow.batches) == 1
    # A '9 1' 0.67 heights wide that the batch reads whole as a '9' at 0.92, under VIDEO_PAIR_UNSURE (0.99): asked,
    # and the pair wins; at session 21's 0.9 the '9' stands and the network is not asked.
    swallowed = FixedPairs(9, 1)
    assert _digits_in_video_pair(mnist, NARROW_READ_ONE_UNSURE, swallowed, video_unsure=0.9) == [9]
    assert swallowed.batches == []
    assert _digits_in_video_pair(mnist, NARROW_READ_ONE_UNSURE, swallowed) == [9, 1] and len(swallowed.batches) == 1
    # Asked about every wide region, the network still gives way to a whole reading 0.998 sure unless it reads a
    # pair at least PAIR_OVER_SURE_DIGIT surely (`cuts_stand`).
    every = FixedPairs(4, 3, left_p=0.94, right_p=0.94)
    assert _digits_in_video_pair(mnist, CUTS_READ_ONE_SURE, every, video_unsure=1.01) == [7]
    assert len(every.batches) == 1
    assert _digits_in_video_pair(mnist, CUTS_READ_ONE_SURE, FixedPairs(7, 1), video_unsure=1.01) == [7, 1]


def test_unsure_pairs_keep_the_cut_reading(mnist):
    pair = _pair_photo(mnist, CUTS_READ_ONE_UNSURE)
    expected = [(d.box, d.digit) for d in DigitReader(pair_model=None).read(
        Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True)).detections]
    unsure = FixedPairs(7, 3, left_p=0.85, right_p=0.9)  # 0.765 < PAIR_OVER_CUTS
    result = _reader(unsure, from_width=WIDE_ONLY).read(Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True))
    assert [(d.box, d.digit) for d in result.detections] == expected
    floor = FixedPairs(7, 3, left_p=0.97, right_p=0.7)  # sure as a pair, but under a 0.8 confidence floor
    reader = _reader(floor, min_confidence=0.8, from_width=WIDE_ONLY)
    still = Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True)
    floor_digits = [(d.box, d.digit) for d in reader.read(still).detections]
    assert floor_digits == [(d.box, d.digit) for d in DigitReader(pair_model=None, min_confidence=0.8).read(still).detections]


def _digits_in_pair(mnist, seed: int, pairs, **reader_options) -> list[int]:
    pair = _pair_photo(mnist, seed)
    still = Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True)
    detections = _reader(pairs, **reader_options).read(still).detections
    return [d.digit for d in _inside(detections, _union([pair.page.digits[i].box for i in pair.pair]))]


def test_a_region_whose_cuts_read_no_digit_gives_way_to_a_less_sure_pair(mnist):
    assert _digits_in_pair(mnist, CUTS_READ_NOTHING, None) == []
    half_sure = FixedPairs(4, 3, left_p=0.8, right_p=0.8)  # 0.64: under PAIR_OVER_CUTS, over PAIR_OVER_NOTHING
    assert _digits_in_pair(mnist, CUTS_READ_NOTHING, half_sure) == [4, 3]
    assert _digits_in_pair(mnist, CUTS_READ_NOTHING, half_sure, over_nothing=PAIR_OVER_CUTS,
                           with_agreeing_cut=WIDE_ONLY) == []
    unsure = FixedPairs(4, 3, left_p=0.7, right_p=0.7)  # 0.49, and a cut reads '4 3' too: they agree
    assert _digits_in_pair(mnist, CUTS_READ_NOTHING, unsure, with_agreeing_cut=WIDE_ONLY) == []
    assert _digits_in_pair(mnist, CUTS_READ_NOTHING, unsure) == [4, 3]


def test_a_narrow_region_offered_no_cut_is_read_by_the_pair_network_under_the_same_gate(mnist):
    pairs = FixedPairs(5, 1)
    assert _digits_in_pair(mnist, NARROW_READ_NOTHING, None) == []
    assert _digits_in_pair(mnist, NARROW_READ_NOTHING, pairs) == [5, 1]
    assert len(pairs.batches) == 1  # the photo's one call holds the narrow blob
    assert _digits_in_pair(mnist, NARROW_READ_NOTHING, FixedPairs(5, 1), from_width=WIDE_ONLY) == []
    # A whole reading of one digit under 0.99 gives way to a pair read at least PAIR_OVER_CUTS surely, not less.
    assert _digits_in_pair(mnist, NARROW_READ_ONE_UNSURE, None) == [9]
    assert _digits_in_pair(mnist, NARROW_READ_ONE_UNSURE, FixedPairs(9, 1)) == [9, 1]
    assert _digits_in_pair(mnist, NARROW_READ_ONE_UNSURE, FixedPairs(9, 1, left_p=0.8, right_p=0.8)) == [9]


def test_a_cut_that_agrees_with_an_unsure_pair_network_replaces_the_chosen_cut(mnist):
    unsure = FixedPairs(0, 2, left_p=0.7, right_p=0.7)  # 0.49: under PAIR_OVER_CUTS, where the cuts' '6 2' stood
    assert _digits_in_pair(mnist, CUTS_READ_TWO_ONE_CUT_RIGHT, unsure, with_agreeing_cut=WIDE_ONLY) == [6, 2]
    assert _digits_in_pair(mnist, CUTS_READ_TWO_ONE_CUT_RIGHT, unsure) == [0, 2]
    assert _digits_in_pair(mnist, CUTS_READ_TWO_ONE_CUT_RIGHT, FixedPairs(0, 3, left_p=0.7, right_p=0.7)) == [6, 2]
    pair = _pair_photo(mnist, CUTS_READ_TWO_ONE_CUT_RIGHT)
    detections = DigitReader(pair_model=unsure).read(
        Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True)).detections
    inside = _inside(detections, _union([pair.page.digits[i].box for i in pair.pair]))
    # Both readers together are surer than the pair network alone; the boxes are the agreeing cut's parts.
    assert all(d.confidence > 0.7 and d.image is not None and d.image.shape == (28, 28) for d in inside)
    assert len(inside) == 2 and inside[0].box[0] < inside[1].box[0]


def _reading(*digits_and_confidences) -> list[Detection]:
    return [Detection(box=(0, 0, 1, 1), digit=digit, confidence=p) for digit, p in digits_and_confidences]


def test_cuts_stand_gate():
    assert not cuts_stand([], (4, 3), 0.5) and cuts_stand([], (4, 3), 0.49)
    assert cuts_stand(_reading((9, 0.5)), (9, 1), 0.79) and not cuts_stand(_reading((9, 0.5)), (9, 1), 0.8)
    assert cuts_stand(_reading((9, 0.99)), (9, 1), 0.89) and not cuts_stand(_reading((9, 0.99)), (9, 1), 0.9)
    assert cuts_stand(_reading((9, 0.99)), (9, 1), 0.999, over_sure_digit=float("inf"))
    assert cuts_stand(_reading((6, 0.9), (5, 0.9)), (4, 5), 0.94)
    assert not cuts_stand(_reading((6, 0.9), (5, 0.9)), (4, 5), 0.95)
    assert cuts_stand(_reading((4, 0.9), (5, 0.9)), (4, 5), 0.99)  # the same digits: the cuts' boxes stay
    assert not cuts_stand(_reading((1, 0.9), (1, 0.9), (1, 0.9)), (4, 5), 0.8)
    assert cuts_stand([], (4, 3), 0.7, over_nothing=0.8)


def _probabilities(size: int, sure: dict[int, float]) -> np.ndarray:
    """A probability vector of `size` classes: the given ones, the rest shared evenly."""
    vector = np.full(size, (1 - sum(sure.values())) / (size - len(sure)), np.float32)
    for index, p in sure.items():
        vector[index] = p
    return vector


def _heads(left: int, right: int, left_p: float, right_p: float, **second) -> tuple[np.ndarray, np.ndarray]:
    """The pair network's two heads reading (left, right); `second` overrides the second head's probabilities."""
    return (_probabilities(NOT_A_PAIR + 1, {left: left_p}),
            _probabilities(NOT_A_PAIR, second.get("second") or {right: right_p}))


def _cut(left: int, right: int, left_p: float = 0.95, right_p: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """A two-part cut's parts' probabilities (10 digits and not-a-digit) reading (left, right)."""
    return _probabilities(11, {left: left_p}), _probabilities(11, {right: right_p})


def test_a_cut_that_reads_what_the_pair_network_reads_replaces_the_cuts_reading():
    first, second = _heads(4, 1, 0.8, 0.7)  # 0.56 sure: under PAIR_OVER_CUTS
    cuts = [_cut(9, 7), _cut(4, 1, 0.9, 0.6)]
    agreed = agreeing_cut([], first, second, cuts, min_confidence=0.5)
    assert agreed is not None and agreed.index == 1
    assert (int(agreed.left.argmax()), int(agreed.right.argmax())) == (4, 1)
    # Both readers' probabilities together: surer than either alone, and each sums to one.
    assert agreed.left[4] > 0.9 and agreed.right[1] > 0.7
    assert np.isclose(agreed.left.sum(), 1.0) and np.isclose(agreed.right.sum(), 1.0)
    # An unsure single digit gives way; a sure one, or the same two digits, stands.
    assert agreeing_cut(_reading((4, 0.9)), first, second, cuts, 0.5) is not None
    assert agreeing_cut(_reading((4, 0.99)), first, second, cuts, 0.5) is None
    assert agreeing_cut(_reading((4, 0.9), (1, 0.9)), first, second, cuts, 0.5) is None
    assert agreeing_cut(_reading((4, 0.9), (1, 0.9), (1, 0.9)), first, second, cuts, 0.5) is None


def test_no_agreeing_cut_without_a_cut_that_reads_the_pair_or_a_sure_enough_pair():
    first, second = _heads(4, 1, 0.8, 0.7)
    assert agreeing_cut([], first, second, [_cut(9, 7), _cut(4, 7)], 0.5) is None
    assert agreeing_cut([], first, second, [_cut(4, 1)], 0.5, floor=0.6) is None  # 0.56 under the floor
    not_a_pair = _probabilities(NOT_A_PAIR + 1, {NOT_A_PAIR: 0.5, 4: 0.4})
    assert agreeing_cut([], not_a_pair, second, [_cut(4, 1)], 0.5) is None
    # Each digit's joint confidence must reach the floor: a '1' the cut reads as 0.2 against 0.18 for a '7'.
    unsure_one = (_probabilities(11, {4: 0.95}), _probabilities(11, {1: 0.2, 7: 0.18}))
    weak_second = _probabilities(NOT_A_PAIR, {1: 0.3, 7: 0.29})
    assert agreeing_cut([], first, weak_second, [unsure_one], 0.5) is None


def test_two_other_digits_stand_when_both_networks_find_them_nearly_as_likely():
    cuts = [_cut(4, 1, 0.95, 0.95)]
    # The pair network reads (4, 1) at 0.8 * 0.55, and (4, 7) at 0.8 * 0.4: the cuts' (4, 7) at 0.99 each stands.
    first, second = _heads(4, 1, 0.8, 0.55, second={1: 0.55, 7: 0.4})
    assert agreeing_cut(_reading((4, 0.99), (7, 0.99)), first, second, cuts, 0.5) is None
    # Where it gives (4, 7) 0.05, the agreement wins.
    first, second = _heads(4, 1, 0.8, 0.9, second={1: 0.9, 7: 0.05})
    assert agreeing_cut(_reading((4, 0.99), (7, 0.99)), first, second, cuts, 0.5) is not None


def test_pair_classifier_refuses_a_missing_or_wrong_model(tmp_path):
    with pytest.raises(ModelFileError, match="train.py --pairs"):
        PairClassifier(tmp_path / "pairs.keras")
    with pytest.raises(ModelFileError, match="not a pair network"):
        PairClassifier(DEFAULT_PAIR_MODEL.with_name("digits.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable LiteRT model"):
        PairClassifier(junk)


@pytest.mark.skipif(not SHIPPED_PAIRS.exists(), reason="no pair network shipped in models/")
def test_the_shipped_pair_network_reads_held_out_pairs_the_cuts_miss(mnist_path):
    from digitrec.evaluate_tracking import pair_read_right
    from digitrec.evaluation import load_held_out_glyphs

    glyphs = load_held_out_glyphs(mnist_path, 2)
    photos = [make_touching_pair(11_200_000 + i, glyphs) for i in range(30)]
    with_pairs, cuts_alone = DigitReader(), DigitReader(pair_model=None)
    assert with_pairs.pair_classifier is not None

    def right(reader):
        return sum(pair_read_right(p, reader.read(Frame(index=0, image=p.page.image, source="t", time=0.0, still=True)))
                   for p in photos)

    assert right(with_pairs) >= right(cuts_alone) + 3
    assert right(with_pairs) >= 25
    # The same photos as video frames (27 against 22 of 30 in session 38; the photos read 28 against 23).
    photo_figures = right(with_pairs), right(cuts_alone)
    in_video = [Frame(index=0, image=p.page.image, source="t", time=0.0, still=False) for p in photos]
    video_right = {name: sum(pair_read_right(p, reader.read(frame)) for p, frame in zip(photos, in_video))
                   for name, reader in (("pairs", with_pairs), ("cuts", cuts_alone))}
    assert video_right["pairs"] >= video_right["cuts"] + 4, (video_right, photo_figures)

    # A wide open '4' of a held-out marked page, which its cuts read '7 4', the pair network calls not a pair
    # (so on LiteRT and on OpenVINO's 8-bit-activation export alike; build/s19/vetosearch.py found it).
    page = make_page(9_100_030, glyphs, "marks")
    four = next(digit for digit in page.digits if digit.box == (416, 348, 40, 32))
    still = Frame(index=0, image=page.image, source="t", time=0.0, still=True)
    assert [d.digit for d in _inside(cuts_alone.read(still).detections, four.box)] == [7, 4]
    assert [d.digit for d in _inside(with_pairs.read(still).detections, four.box)] == [4]
    # A held-out touching '3 1' too narrow to be offered cuts, which the classifier rejects whole (OpenVINO) or
    # reads as the '3' alone (LiteRT).
    narrow = make_touching_pair(9_200_082, glyphs)
    blob = _union([narrow.page.digits[i].box for i in narrow.pair])
    still = Frame(index=0, image=narrow.page.image, source="t", time=0.0, still=True)
    assert [d.digit for d in _inside(DigitReader(pair_gates=PairGates(from_width=WIDE_ONLY)).read(still).detections, blob)] in ([], [3])
    assert [d.digit for d in _inside(with_pairs.read(still).detections, blob)] == [3, 1]
    # As video frames, it and a '4 1' whose '1' the classifier reads whole as the '4' are read from
    # VIDEO_PAIR_FROM_WIDTH under VIDEO_PAIR_UNSURE, and were not with session 21's gate (0.8 heights, under 0.9).
    session_21 = DigitReader(classifier=with_pairs.classifier, pair_gates=PairGates(video_from_width=0.8, video_unsure=0.9))
    for seed, digits in ((9_200_082, [3, 1]), (9_200_015, [4, 1])):
        pair = make_touching_pair(seed, glyphs)
        blob = _union([pair.page.digits[i].box for i in pair.pair])
        frame = Frame(index=0, image=pair.page.image, source="t", time=0.0, still=False)
        assert [d.digit for d in _inside(session_21.read(frame).detections, blob)] in ([], [digits[0]])
        assert [d.digit for d in _inside(with_pairs.read(frame).detections, blob)] == digits
    readings = with_pairs.pair_classifier.read(np.zeros((3, 28, 56, 1), np.float32))
    assert readings.first.shape == (3, 11) and readings.second.shape == (3, 10)


def test_still_photos_are_read_by_the_photo_pair_network_and_video_frames_by_the_other(mnist):
    photo, video = FixedPairs(7, 3), FixedPairs(4, 3, left_p=0.8, right_p=0.8)
    reader = DigitReader(pair_model=video, photo_pair_model=photo, pair_gates=PairGates(from_width=WIDE_ONLY))
    pair = _pair_photo(mnist, CUTS_READ_ONE_UNSURE)
    blob = _union([pair.page.digits[i].box for i in pair.pair])
    still = reader.read(Frame(index=0, image=pair.page.image, source="t", time=0.0, still=True))
    assert [d.digit for d in _inside(still.detections, blob)] == [7, 3]
    assert len(photo.batches) == 1 and video.batches == []
    # A '4 3' that nothing reads in a video frame goes to the video's network alone.
    nothing = _pair_photo(mnist, CUTS_READ_NOTHING)
    frame = reader.read(_video_frame(mnist, CUTS_READ_NOTHING))
    nothing_blob = _union([nothing.page.digits[i].box for i in nothing.pair])
    assert [d.digit for d in _inside(frame.detections, nothing_blob)] == [4, 3]
    assert len(photo.batches) == 1 and len(video.batches) == 1


def test_the_photo_pair_network_is_the_shipped_one_only_beside_the_shipped_pair_network(tmp_path, monkeypatch):
    given = FixedPairs(1, 2)
    assert photo_pair_model_for(DEFAULT_PAIR_MODEL, None) == DEFAULT_PHOTO_PAIR_MODEL
    assert photo_pair_model_for(str(DEFAULT_PAIR_MODEL), None) == DEFAULT_PHOTO_PAIR_MODEL
    # A pair network given alone reads photos too, so that it is the one a run measures.
    assert photo_pair_model_for(tmp_path / "mine.keras", None) is None
    assert photo_pair_model_for(given, None) is None
    assert photo_pair_model_for(given, "photo.keras") == "photo.keras"
    assert DigitReader(pair_model=given).photo_pair_classifier is given
    # No pair network: cuts alone in photos as well.
    assert DigitReader(pair_model=None, photo_pair_model=FixedPairs(1, 2)).photo_pair_classifier is None
    # 'none' as the photo network: photos cut apart only, video frames still read by the pair network.
    no_photo_network = DigitReader(pair_model=given, photo_pair_model="None")
    assert no_photo_network.photo_pair_classifier is None and no_photo_network.pair_classifier is given
    # A checkout without the photo network reads photos with the pair network.
    monkeypatch.setattr(digitrec.reader, "DEFAULT_PHOTO_PAIR_MODEL", tmp_path / "pairs_photo.keras")
    if SHIPPED_PAIRS.exists():
        reader = DigitReader()
        assert reader.pair_classifier is not None and reader.photo_pair_classifier is reader.pair_classifier
    # The command line: --pair-model alone reads photos too; --photo-pair-model as given.
    parser = argparse.ArgumentParser()
    add_pair_model_options(parser)
    assert pair_models(parser.parse_args([])) == {"pair_model": str(DEFAULT_PAIR_MODEL), "photo_pair_model": None}
    assert pair_models(parser.parse_args(["--pair-model", "a.keras", "--photo-pair-model", "b.keras"])) == {
        "pair_model": "a.keras", "photo_pair_model": "b.keras"}
    assert pair_models(parser.parse_args(["--pair-model", "none"]))["pair_model"] is None


@pytest.mark.skipif(not SHIPPED_PHOTO_PAIRS.exists(), reason="no photo pair network shipped in models/")
def test_the_shipped_photo_pair_network_is_the_deeper_one_and_reads_held_out_pairs(mnist_path):
    import keras

    from digitrec.evaluate_tracking import pair_read_right
    from digitrec.evaluation import load_held_out_glyphs
    from digitrec.model import PHOTO_PAIR_BLOCKS

    reader = DigitReader()
    assert reader.photo_pair_classifier.path == SHIPPED_PHOTO_PAIRS
    assert reader.pair_classifier.path == SHIPPED_PAIRS
    network = keras.saving.load_model(DEFAULT_PHOTO_PAIR_MODEL, compile=False)
    convolutions = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convolutions] == [filters for filters, _ in PHOTO_PAIR_BLOCKS]
    glyphs = load_held_out_glyphs(mnist_path, 2)
    photos = [make_touching_pair(11_300_000 + i, glyphs) for i in range(40)]
    video_network_alone = DigitReader(photo_pair_model=DEFAULT_PAIR_MODEL)

    def right(reader):
        return sum(pair_read_right(p, reader.read(Frame(index=0, image=p.page.image, source="t", time=0.0, still=True)))
                   for p in photos)

    # 39 against 37 of 40 when measured (cuts alone: 27).
    assert right(reader) >= right(video_network_alone) >= 34
