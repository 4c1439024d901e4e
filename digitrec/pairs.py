"""Read a blob of two touching digits whole, with the pair network, in one batched LiteRT call.

The digit classifier reads a wrong cut of two touching digits as surely as the right one; the pair
network (`model.build_pair_cnn`, trained by `train.py --pairs`) sees the blob at 28x56
(`normalise.PAIR_FORMAT`) and reads both digits at once, or says it is not a pair.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.classify import ModelFileError, read_tflite, tflite_path_for
from digitrec.normalise import PAIR_FORMAT

NOT_A_PAIR = 10
"""The first head's eleventh class: the region is not two touching digits."""

PAIR_SURE = 0.5
"""In the network's own figures (`pair_training`, `pairs_metrics.json`), a blob counts as read as a pair
when the product of its two heads' best digit probabilities is at least this (and "not a pair" does not
win the first head). The reader asks more: `PAIR_OVER_CUTS`."""

PAIR_OVER_CUTS = 0.8
"""The reader reports a pair reading instead of the cuts' only when it is at least this sure, and the cuts
did not read the region as one digit at least `SURE_SINGLE_DIGIT` surely (unless the pair is at least
`PAIR_OVER_SURE_DIGIT` sure), nor as two digits (unless other ones than the pair's, with the pair at least
`PAIR_OVER_TWO_DIGITS` sure): `cuts_stand`..."""

PAIR_OVER_NOTHING = 0.5
"""...or at least this sure where the cuts (or the whole) read no digit at all: the region would otherwise
be lost. Chosen on held-out photos in session 18 (docs/history.md): of the touching pairs whose region read
nothing, 10 of 15 pair readings at 0.5-0.8 were right, and on 160 marked pages and 300 pages only 3 regions
reading nothing were read as a pair at 0.5-0.8."""

PAIR_FROM_WIDTH = 0.5
"""On a still photo the pair network also reads the regions not offered cuts that are at least this many
line heights wide (under the same gate): two touching digits that overlap, or one of them a '1', are often
narrower than the 0.8 heights from which cuts are offered (`split.SplitConfig.still_candidate_width`). Of
the 400 touching pairs of two held-out draws, 18 were such a region, 14 of them read right by the network,
while it read no single digit of 80 marked pages as a pair (session 18)."""

VIDEO_PAIR_FROM_WIDTH = 0.5
VIDEO_PAIR_UNSURE = 0.99
"""A video frame's regions go to the pair network only when they are at least `VIDEO_PAIR_FROM_WIDTH` line
heights wide (a photo's `PAIR_FROM_WIDTH`) and the classifier's batch read them whole as no digit, or as one less
than `VIDEO_PAIR_UNSURE` surely (a second, small call, on the frames that have any; then the same gate as a
photo's). Asking about every region from 0.5 heights, as a photo does, took 640x480 frames of 16 digits from 9.5
to 12.6 ms on one core (session 21); asked this way, about 0.7 regions a frame go to the network on the bench's
640x480 video of 16 digits, which costs about 0.2 ms of a 12 ms frame there (session 38's Xeon).

Session 21 asked only from 0.8 heights and under 0.9 (0.2 regions a frame), which left the pairs a photo reads
and a video frame does not: a '1' swallowed by its neighbour, narrower than 0.8 heights or read whole as the
neighbour at 0.9-0.99. Session 38 (docs/history.md) chose today's gate on development pairs read as video frames
(600, held-out digits: 516 right with the old gate, 533 from 0.5 heights, 532 under 0.99, 552 with both), and
judged it on fresh held-out draws by a rule written before they were read: 1 000 pairs 867 -> 912 as video frames,
12 tracked videos 98.40 % read on both with 0.97 -> 0.94 % false detections, 6 tracked videos of marked, mixed,
grid and noisy pages 98.85 -> 98.83 % with 1.33 -> 1.35 %."""

SURE_SINGLE_DIGIT = 0.99
PAIR_OVER_TWO_DIGITS = 0.95
"""Both chosen on held-out photos in session 16 (docs/history.md): where the pair network read a region
surely and wrongly that the cuts read right, the cuts had read one digit at least 0.99 surely (a wide '9'
it read "0 1" at 0.89 and 0.93) or two digits (a '7 0' it read '1 0' at 0.82); where it read two other
digits than the cuts at least 0.95 surely, it was right more often."""

PAIR_OVER_SURE_DIGIT = 0.9
"""A pair reading at least this sure is reported even where the cuts (or the whole) read one digit at least
`SURE_SINGLE_DIGIT` surely: mostly a '1' swallowed by its neighbour ('1 6' read whole as a '6' at 1.00, which
the pair network reads '1 6' at 0.999). `SURE_SINGLE_DIGIT` was set for session 16's network (12 000 photos);
this was chosen in session 29 (docs/history.md) for today's (24 000 photos, overlapping pairs taught), on
development photos: of 600 touching pairs 546 were read right with the single digit always standing, 550 with it
giving way from 0.99, 555 from 0.95, 558 from 0.9 and 559 from 0.8, while 150 pages read 2 digits more and 1 false
detection fewer from 0.95 and 0.9, and 60 marked pages the same. Judged on fresh held-out draws by a rule written
before they were read: 923 against 910 of 1 000 pairs, and pages, marked pages and videos read as before."""


NOT_A_PAIR_SURE = 0.99
"""A region the pair network calls "not a pair" at least this surely is read whole when the digit classifier
reads it whole as a digit, whatever its cuts read: a wide single digit ('4' with a long bar, a wide '0') is
otherwise cut into two sure digits. Chosen on held-out photos in session 17 (docs/history.md): of 33 wide
single digits cut in two, 26 were called not a pair at >= 0.99, and none of 298 touching pairs whose cuts
read right was called so at even 0.9."""


PAIR_WITH_AGREEING_CUT = 0.3
AGREEING_CUT_MARGIN = 2.0
"""The pair network's reading of a region, at least `PAIR_WITH_AGREEING_CUT` sure, is also reported when one of
the region's two-part cuts reads the same two digits, unless the cuts' chosen reading is one digit at least
`SURE_SINGLE_DIGIT` sure, or two other digits for which the product of both networks' probabilities is more
than 1 / `AGREEING_CUT_MARGIN` of the agreeing pair's (`agreeing_cut`)."""


@dataclass(frozen=True)
class PairGates:
    """When the reader asks the pair network about a region and takes its reading over the digit classifier's
    (each default is the constant above that says how it was chosen)."""

    over_cuts: float = PAIR_OVER_CUTS
    """How surely it must read a pair to be reported instead of the cuts' reading, which stands anyway in the
    cases `cuts_stand` names..."""
    over_nothing: float = PAIR_OVER_NOTHING
    """...where the cuts read no digit..."""
    over_sure_digit: float = PAIR_OVER_SURE_DIGIT
    """...and where they read one digit at least `SURE_SINGLE_DIGIT` surely (inf: that digit always stands)."""
    not_a_pair: float = NOT_A_PAIR_SURE
    """How surely it must call a region not a pair for the region's whole reading to stand against its cuts, when
    the classifier reads it whole as a digit (`whole_stands`)."""
    from_width: float = PAIR_FROM_WIDTH
    """A still photo's regions not offered cuts are read by it from this many line heights wide (inf: none)..."""
    video_from_width: float = VIDEO_PAIR_FROM_WIDTH
    video_unsure: float = VIDEO_PAIR_UNSURE
    """...a video frame's from `video_from_width` heights, only those the classifier read whole as no digit or as
    one under `video_unsure` surely (inf: none)."""
    with_agreeing_cut: float = PAIR_WITH_AGREEING_CUT
    """How surely it must read a pair to be reported instead of the cuts' reading when one of the region's two-part
    cuts reads the same two digits (`agreeing_cut`; inf: never)."""


DEFAULT_PAIR_GATES = PairGates()


@dataclass(frozen=True)
class AgreeingCut:
    """A two-part cut of a region that reads the pair network's two digits."""

    index: int
    """Which of the cuts given to `agreeing_cut`."""
    left: np.ndarray
    right: np.ndarray
    """(10,) each digit's probabilities, the pair network's head times the cut's part, renormalised."""


def agreeing_cut(reading: Sequence, first: np.ndarray, second: np.ndarray,
                 two_part_cuts: Sequence[tuple[np.ndarray, np.ndarray]], min_confidence: float,
                 floor: float = PAIR_WITH_AGREEING_CUT, margin: float = AGREEING_CUT_MARGIN) -> AgreeingCut | None:
    """The two-part cut whose parts read the pair network's two digits, where the two readers' agreement
    replaces the cuts' chosen `reading` of a region (see `PAIR_WITH_AGREEING_CUT`); None where it does not.

    `first`, `second`: the pair network's two heads for the region; `two_part_cuts`: the parts' probabilities
    (digits and not-a-digit) of each of the region's two-part cuts. The digits' confidences are the two readers'
    probabilities multiplied and renormalised, and each must reach `min_confidence`. The networks see the blob
    differently (whole at 28x56, and cut in two at 28x28), so where they agree each is more often right than
    where either reads alone: the pair network's heads can be unsure of a '1' beside a digit that the cut reads
    surely, and the digit classifier reads a wrong cut as surely as the right one."""
    if first.argmax() == NOT_A_PAIR:
        return None
    left, right = int(first[:NOT_A_PAIR].argmax()), int(second.argmax())
    confidence = float(first[left] * second[right])
    if confidence < floor:
        return None
    best, best_score = None, 0.0
    for index, (left_part, right_part) in enumerate(two_part_cuts):
        score = float(left_part[left] * right_part[right])
        if int(left_part.argmax()) == left and int(right_part.argmax()) == right and score > best_score:
            best, best_score = index, score
    if best is None:
        return None
    left_both = first[:NOT_A_PAIR] * two_part_cuts[best][0][:NOT_A_PAIR]
    right_both = second * two_part_cuts[best][1][:NOT_A_PAIR]
    left_both, right_both = left_both / left_both.sum(), right_both / right_both.sum()
    if min(left_both[left], right_both[right]) < min_confidence:
        return None
    digits = [detection.digit for detection in reading]
    if digits == [left, right] or len(digits) > 2:
        return None
    if len(digits) == 1 and reading[0].confidence >= SURE_SINGLE_DIGIT:
        return None
    if len(digits) == 2:
        theirs = float(first[digits[0]] * second[digits[1]]) * reading[0].confidence * reading[1].confidence
        if confidence * best_score <= margin * theirs:
            return None
    return AgreeingCut(best, left_both.astype(np.float32), right_both.astype(np.float32))


def whole_stands(readings: PairReadings, row: int, floor: float = NOT_A_PAIR_SURE) -> bool:
    """Whether the pair network calls blob `row` of its readings not a pair at least `floor` surely."""
    return float(readings.first[row, NOT_A_PAIR]) >= floor


def cuts_stand(reading: Sequence, pair: tuple[int, int], pair_confidence: float,
               over_cuts: float = PAIR_OVER_CUTS, over_nothing: float = PAIR_OVER_NOTHING,
               over_sure_digit: float = PAIR_OVER_SURE_DIGIT) -> bool:
    """Whether the cuts' reading of a region (its digits, with `.digit` and `.confidence`) stands against the
    pair network's reading `pair` at `pair_confidence` (see `PAIR_OVER_CUTS`, `PAIR_OVER_NOTHING` and
    `PAIR_OVER_SURE_DIGIT`)."""
    if not reading:
        return pair_confidence < over_nothing
    if pair_confidence < over_cuts:
        return True
    if len(reading) == 1:
        return reading[0].confidence >= SURE_SINGLE_DIGIT and pair_confidence < over_sure_digit
    if len(reading) != 2:
        return False
    overruled = pair_confidence >= PAIR_OVER_TWO_DIGITS and (reading[0].digit, reading[1].digit) != tuple(pair)
    return not overruled


_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
"""Batch sizes an interpreter is prepared for; a photo has a few dozen regions at most."""


@dataclass
class PairReadings:
    """The pair network's reading of a batch of blobs."""

    left: np.ndarray
    """(N,) the left digit."""
    right: np.ndarray
    """(N,) the right digit."""
    confidence: np.ndarray
    """(N,) the product of the two heads' best digit probabilities; 0 where "not a pair" wins."""
    first: np.ndarray
    """(N, 11) the first head: the left digit's probabilities, and "not a pair"."""
    second: np.ndarray
    """(N, 10) the second head: the right digit's probabilities."""


def read_pairs(first: np.ndarray, second: np.ndarray) -> PairReadings:
    """The two heads' outputs as readings (see `PairReadings`)."""
    left = first[:, :NOT_A_PAIR].argmax(axis=1)
    right = second.argmax(axis=1)
    rows = np.arange(len(first))
    confidence = first[rows, left] * second[rows, right]
    confidence[first.argmax(axis=1) == NOT_A_PAIR] = 0.0
    return PairReadings(left, right, confidence, first, second)


class PairClassifier:
    """The pair network's LiteRT export, run on whole batches (one call per photo)."""

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None):
        path = Path(model_path)
        runtime_path = tflite_path_for(path) if path.suffix == ".keras" else path
        if runtime_path.suffix != ".tflite" or not runtime_path.is_file():
            raise ModelFileError(f"{path}: no pair network's LiteRT export at {runtime_path}. "
                                 "Train one with train.py --pairs, or pass the .tflite file.")
        self.path = runtime_path
        self.num_threads = num_threads or min(2, os.cpu_count() or 1)
        self._model_content = read_tflite(runtime_path, "Train one with train.py --pairs.")
        self._interpreters: dict[int, tuple] = {}
        self._calling = threading.Lock()
        """Held while a batch runs: the interpreters' buffers are this reader's own (as `DigitClassifier`'s)."""
        try:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._model_content, num_threads=self.num_threads)
        except ValueError as error:
            raise ModelFileError(f"{runtime_path}: not a readable LiteRT model ({error}). "
                                 "Train one with train.py --pairs.") from None
        shape = tuple(int(side) for side in interpreter.get_input_details()[0]["shape"][1:])
        outputs = sorted(int(detail["shape"][-1]) for detail in interpreter.get_output_details())
        if shape != (PAIR_FORMAT.height, PAIR_FORMAT.width, 1) or outputs != [NOT_A_PAIR, NOT_A_PAIR + 1]:
            raise ModelFileError(f"{runtime_path}: takes {shape} and gives {outputs} outputs, not a pair network "
                                 "((28, 56, 1) in, 11 and 10 out). Train one with train.py --pairs.")

    def _interpreter_for(self, bucket: int) -> tuple:
        """(interpreter, input view, first head's index, second head's index) for batches of `bucket`."""
        prepared = self._interpreters.get(bucket)
        if prepared is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._model_content, num_threads=self.num_threads)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, [bucket, PAIR_FORMAT.height, PAIR_FORMAT.width, 1])
            interpreter.allocate_tensors()
            heads = {int(detail["shape"][-1]): detail["index"] for detail in interpreter.get_output_details()}
            prepared = (interpreter, interpreter.tensor(index), heads.get(NOT_A_PAIR + 1), heads.get(NOT_A_PAIR))
            self._interpreters[bucket] = prepared
        return prepared

    def read(self, batch: np.ndarray) -> PairReadings:
        """(N, 28, 56, 1) float32 blobs in [0, 1] -> their readings, in one call per 64."""
        batch = np.asarray(batch, np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (PAIR_FORMAT.height, PAIR_FORMAT.width, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 56, 1), got {batch.shape}")
        firsts, seconds = [], []
        largest = _BATCH_BUCKETS[-1]
        for start in range(0, len(batch), largest):
            chunk = batch[start : start + largest]
            bucket = next(size for size in _BATCH_BUCKETS if size >= len(chunk))
            with self._calling:
                interpreter, input_view, first_index, second_index = self._interpreter_for(bucket)
                input_view()[: len(chunk)] = chunk
                interpreter.invoke()
                firsts.append(interpreter.get_tensor(first_index)[: len(chunk)].copy())
                seconds.append(interpreter.get_tensor(second_index)[: len(chunk)].copy())
        if not firsts:
            return read_pairs(np.zeros((0, NOT_A_PAIR + 1), np.float32), np.zeros((0, NOT_A_PAIR), np.float32))
        return read_pairs(np.concatenate(firsts), np.concatenate(seconds))
