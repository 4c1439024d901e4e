"""The reader: one frame in, every digit and number in it out (segment, normalise, classify, group)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from digitrec import segment, split
from digitrec.classify import NOT_A_DIGIT_INDEX, DigitClassifier, tflite_path_for
from digitrec.group import DEFAULT_GROUPING, GroupingConfig, group_numbers
from digitrec.merge import DEFAULT_MERGE, MergeConfig, choose_join, joined_region, merge_candidates
from digitrec.normalise import (
    MNIST_STROKE,
    PAIR_FORMAT,
    StrokeTarget,
    normalise_regions,
)
from digitrec.pairs import (
    DEFAULT_PAIR_GATES,
    PairClassifier,
    PairGates,
    PairReadings,
    agreeing_cut,
    cuts_stand,
    whole_stands,
)
from digitrec.segment import DEFAULT_SEGMENTATION, SegmentationConfig, segment_digits, segment_photo
from digitrec.split import (
    DEFAULT_SPLIT,
    SplitConfig,
    choose_hypothesis,
    line_heights,
    on_one_line,
    split_hypotheses,
    too_short_to_cut,
)
from digitrec.types import Detection, Frame, FrameResult, Region

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
"""The model shipped with the project."""

DEFAULT_PAIR_MODEL = DEFAULT_MODEL.with_name("pairs.keras")
"""The pair network shipped with the project (its LiteRT export beside it): video frames' wide regions read
unsurely are also read whole by it (`pairs`), and still photos' wide regions when there is no photo network."""

DEFAULT_PHOTO_PAIR_MODEL = DEFAULT_MODEL.with_name("pairs_photo.keras")
"""The pair network that reads still photos' wide regions whole: one block deeper (`model.PHOTO_PAIR_BLOCKS`).
It reads more touching pairs right in photos than `DEFAULT_PAIR_MODEL` (939 against 923 of 1 000 fresh held-out
pairs in session 30, with marked pages and pages as before), but in tracked videos it gave more false detections
(2.44 -> 2.73 % of them, session 29), so video frames keep the other (docs/history.md, sessions 29-30)."""

DEFAULT_MIN_CONFIDENCE = 0.5
"""Digits read with less confidence than this are not reported."""

SHORT_FOR_LINE = 0.5
"""Digits less than this share of their line's height (the median height of the digits read on it, their own
included) are not reported, unless another digit on the line is of their size (`SAME_SIZE`, a small number
beside a big one): a fleck of a neighbour's stroke read as a '1', a scrap of a mark or of ruling. On development
photos (150 pages, 60 marked pages, 600 touching pairs; held-out digits) all 11 of the detections under 0.5 were
false, and under 0.55 all 20; the shortest right one was 0.57. On fresh held-out draws, judged by a rule written
before they were read: 150 pages 32 -> 27 false detections, 80 marked pages 17 -> 14, 12 tracked videos 0.37 ->
0.35 %, with the same digits read, and 1 000 touching pairs read as many (docs/history.md, session 31)."""

SAME_SIZE = 1.5
"""Two digits are of one size when the taller is at most this many times the shorter's height."""

VIDEO_STROKES = (MNIST_STROKE, StrokeTarget(width=2.5, tolerance=0.0))
"""The stroke targets a video's frames are normalised to, in turn (a still photo: MNIST's alone).
The tracker averages a digit's probabilities over its recent frames, so alternating two views of
each crop makes that average a two-view ensemble at no cost per frame: the second view thickens
every stroke, which closes the gaps of faint pen. On the issue #4 videos the blue-pen video read
81.75 -> 86.50 % (an open-loop '6' read '5' under MNIST's stroke alone); held-out videos read as
many digits (14 063 against 14 062 over two draws; false detections 0.41 -> 0.44 %) and the issue #3
set one more (docs/history.md, session 12)."""


OPENCV_THREADS = 1
"""OpenCV's threads in a process that reads (set process-wide when a reader is made). A frame's OpenCV
calls are small: shared among the cores they cost about what they save, and the idle threads spin
between calls. On one thread a 1280x720 frame with 16 digits read 7 % faster and a 640x480 one 2 %,
each with about 30 % less CPU (docs/history.md, session 14)."""


OVERLAP_CLASSIFIER_THREADS = 1
"""LiteRT threads while a frame's batch is classified alongside the next frame's preparation, which keeps
the other core busy: on one thread 640x480 frames with 16 digits read 2-6 % sooner than on two."""


PairModel = str | os.PathLike | PairClassifier | None
"""A pair network as the reader takes it: a path, a loaded one, or None."""

NO_PAIR_MODEL = "none"
"""A pair model given as this reads no pair network: the regions are cut apart only (`--photo-pair-model none`)."""


class DigitReader:
    """Reads digits and numbers in frames with one batched classifier call per frame."""

    def __init__(
        self,
        model_path: str | os.PathLike = DEFAULT_MODEL,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        segmentation: SegmentationConfig = DEFAULT_SEGMENTATION,
        grouping: GroupingConfig = DEFAULT_GROUPING,
        splitting: SplitConfig = DEFAULT_SPLIT,
        classifier: DigitClassifier | None = None,
        merging: MergeConfig = DEFAULT_MERGE,
        video_strokes: tuple[StrokeTarget, ...] = VIDEO_STROKES,
        opencv_threads: int | None = OPENCV_THREADS,
        pair_model: PairModel = DEFAULT_PAIR_MODEL,
        photo_pair_model: PairModel = None,
        pair_gates: PairGates = DEFAULT_PAIR_GATES,
        short_for_line: float = SHORT_FOR_LINE,
        still_photos: bool = True,
    ):
        """`opencv_threads`: OpenCV's thread count for the whole process (`OPENCV_THREADS`); None leaves it be.
        `pair_model`: the pair network that reads a frame's wide regions whole (None: cuts alone, in photos too;
        the default is used when it is there); `photo_pair_model`: the one that reads still photos' instead (None:
        `DEFAULT_PHOTO_PAIR_MODEL` with the default `pair_model` when it is there, else `pair_model`'s;
        `NO_PAIR_MODEL`: photos' regions are cut apart only); `pair_gates`: when the pair network is asked about a
        region and its reading taken (`pairs.PairGates`); `short_for_line`: digits shorter than this share of
        their line's height are not reported (`SHORT_FOR_LINE`; 0: all are); `still_photos`: still photos are segmented
        as photos (`segment.segment_photo`): one at least four times the segmenter's working width at half its own
        width, for digits as small in its pixels as a webcam frame's, and one where nothing is found again inside a
        margin of its own paper, for a crop of one digit (False: as video frames)."""
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"the minimum confidence must be between 0 and 1, not {min_confidence}")
        if not video_strokes:
            raise ValueError("video_strokes needs at least one stroke target")
        self.classifier = classifier or DigitClassifier(model_path)
        self.pair_classifier = (open_pair_model(pair_model) if isinstance(pair_model, (str, os.PathLike))
                                else pair_model)  # a PairClassifier (or None)
        photo_pair_model = photo_pair_model_for(pair_model, photo_pair_model)
        if self.pair_classifier is None or names_no_pair_model(photo_pair_model):
            self.photo_pair_classifier = None
        elif photo_pair_model is None:
            self.photo_pair_classifier = self.pair_classifier
        elif isinstance(photo_pair_model, (str, os.PathLike)):
            self.photo_pair_classifier = open_pair_model(photo_pair_model) or self.pair_classifier
        else:
            self.photo_pair_classifier = photo_pair_model
        self.pair_gates = pair_gates
        self.short_for_line = short_for_line
        self.still_photos = still_photos
        if opencv_threads is not None:
            cv2.setNumThreads(opencv_threads)
        segment.load_compiled()  # the compiled parts, loaded now rather than on the first frame
        split.load_compiled()
        self.min_confidence = min_confidence
        self.segmentation = segmentation
        self.grouping = grouping
        self.splitting = splitting
        self.merging = merging
        self.video_strokes = video_strokes
        """Stroke targets for video frames, taken by frame index (so that serial and parallel reading agree)."""
        self.last_mask: np.ndarray | None = None
        """The thresholded ink of the frame whose result was given last, for the window's mask view."""

    def read_stream(self, frames: Iterable[Frame], overlap: bool = False) -> Iterator[FrameResult]:
        """Read frames one after another, results in order (the interface `parallel.ParallelReader` shares).

        With `overlap`, each frame's batch is classified on a second thread while the next frame is
        segmented and normalised (LiteRT lets go of Python's lock while it runs), and a frame's result
        is given once the next frame is prepared: the same results, one frame later, and 5-22 % less
        time a frame on two cores (the most where there are many digits to classify). For files, whose
        next frame is already waiting (`pipeline.read_frames` asks for it); a camera's frame is read
        the moment it comes, without waiting for the next, as `overlap=False` (the default) does.
        """
        if not overlap:
            for frame in frames:
                yield self.read(frame)
            return
        classifier = (self.classifier.with_threads(OVERLAP_CLASSIFIER_THREADS)
                      if isinstance(self.classifier, DigitClassifier) else self.classifier)
        frames = iter(frames)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digitrec-classify") as classifying:
            waiting: tuple[_PreparedFrame, Future] | None = None
            while True:
                try:
                    frame = next(frames, None)
                    prepared = None if frame is None else self._prepare(frame)
                except Exception:
                    # The source failed (a video cut short, a stream gone) or this frame could not be read:
                    # the frame before it is still given first, as reading one by one would.
                    if waiting is not None:
                        yield self._finish(waiting[0], waiting[1].result())
                    raise
                if prepared is None:
                    break
                classified = classifying.submit(self._classify, prepared, classifier)
                if waiting is not None:
                    yield self._finish(waiting[0], waiting[1].result())
                waiting = (prepared, classified)
            if waiting is not None:
                yield self._finish(waiting[0], waiting[1].result())

    def read(self, frame: Frame) -> FrameResult:
        """Find, read and group the digits of one frame."""
        prepared = self._prepare(frame)
        return self._finish(prepared, self._classify(prepared, self.classifier))

    def _prepare(self, frame: Frame) -> _PreparedFrame:
        """Segment the frame, and cut and normalise every candidate into one batch."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if frame.still and self.still_photos:
            regions, mask = segment_photo(frame.image, self.segmentation)
        else:
            regions, mask = segment_digits(frame.image, self.segmentation)
        timings["segment"] = _elapsed_ms(started)

        started = time.perf_counter()
        # Each region is read whole and, when it is wide for its line, cut into touching digits; two
        # close pieces that may be one broken digit are read apart and joined. Every candidate goes
        # into the one batch, and the classifier's confidences pick the reading.
        units = reading_units(regions, self.splitting, self.merging, still=frame.still)
        parts = [part for unit in units for option in unit.options for part in option]
        stroke = MNIST_STROKE if frame.still else self.video_strokes[frame.index % len(self.video_strokes)]
        batch, normalised = normalise_regions(parts, stroke)
        # A still photo's regions offered cuts, or nearly wide enough for them, are also read whole as a pair of
        # digits (the pair network).
        pair_units: list[int] = []
        pair_batch = None
        if frame.still and self.photo_pair_classifier is not None:
            candidates = [index for index, unit in enumerate(units) if not unit.joined
                          and (len(unit.options) > 1 or unit.width_ratio >= self.pair_gates.from_width)]
            pair_batch, kept = normalise_regions([units[index].options[0][0] for index in candidates], stroke,
                                                 PAIR_FORMAT)
            pair_units = [candidates[index] for index in kept]
        timings["normalise"] = _elapsed_ms(started)
        return _PreparedFrame(frame, mask, units, parts, batch, normalised, timings, pair_units, pair_batch)

    def _classify(self, prepared: _PreparedFrame, classifier: DigitClassifier) -> np.ndarray:
        """The frame's one batched classifier call (and, for a still photo with wide regions, or a video
        frame with wide regions that call read unsurely, the pair network's; its readings are kept in
        `prepared`)."""
        started = time.perf_counter()
        probabilities = classifier.probabilities(prepared.batch)
        if not prepared.frame.still and self.pair_classifier is not None:
            self._choose_unsure_regions(prepared, probabilities)
        if prepared.pair_units:
            pair_classifier = self.photo_pair_classifier if prepared.frame.still else self.pair_classifier
            prepared.pair_readings = pair_classifier.read(prepared.pair_batch)
        prepared.timings["classify"] = _elapsed_ms(started)
        return probabilities

    def _choose_unsure_regions(self, prepared: _PreparedFrame, probabilities: np.ndarray) -> None:
        """A video frame's pair candidates (`pairs.VIDEO_PAIR_FROM_WIDTH`, `VIDEO_PAIR_UNSURE`), normalised into
        `prepared`: chosen after the classifier's call, so that the pair network reads only the few regions it read
        unsurely."""
        candidates = []
        for index, (unit, option_rows) in enumerate(zip(prepared.units, prepared.option_rows)):
            if unit.joined or unit.width_ratio < self.pair_gates.video_from_width:
                continue
            row = option_rows[0][0]  # the region read whole
            if row >= 0:
                reading = probabilities[row]
                if reading.argmax() != NOT_A_DIGIT_INDEX and reading.max() >= self.pair_gates.video_unsure:
                    continue  # read whole as one digit surely enough: it stands
            candidates.append(index)
        if candidates:
            stroke = self.video_strokes[prepared.frame.index % len(self.video_strokes)]
            prepared.pair_batch, kept = normalise_regions(
                [prepared.units[index].options[0][0] for index in candidates], stroke, PAIR_FORMAT)
            prepared.pair_units = [candidates[index] for index in kept]

    def _finish(self, prepared: _PreparedFrame, probabilities: np.ndarray) -> FrameResult:
        """Choose each region's reading by the confidences, and group the digits into numbers."""
        self.last_mask = prepared.mask
        started = time.perf_counter()
        detections: list[Detection] = []
        rejected = 0
        gates = self.pair_gates
        pairs = _sure_pairs(prepared, min(gates.over_cuts, gates.over_nothing), self.min_confidence)
        single = _not_pairs(prepared, gates.not_a_pair)
        pair_row_of = {unit: row for row, unit in enumerate(prepared.pair_units)} if prepared.pair_readings else {}
        for unit_index, (unit, option_rows) in enumerate(zip(prepared.units, prepared.option_rows)):
            if len(unit.options) == 1:  # most regions: one reading, nothing to choose
                option, rows = unit.options[0], option_rows[0]
                scored = None
            else:
                scored = [(option, rows, _log_confidences(probabilities, rows))
                          for option, rows in zip(unit.options, option_rows)]
                scores = [scores for _, _, scores in scored]
                if unit.joined:
                    chosen = 1 if choose_join(scores[0], float(scores[1][0]), self.merging) else 0
                else:
                    chosen = choose_hypothesis(scores, self.splitting, unit.width_ratio)
                    if chosen and scores[0][0] > -np.inf and unit_index in single:
                        chosen = 0  # the pair network sees one digit, and the classifier reads it whole as one
                option, rows, _ = scored[chosen]
            reading, unread = self._read_parts(option, rows, probabilities, prepared)
            if unit_index in pairs:  # the pair network read the region whole as two digits...
                row = pairs[unit_index]
                readings = prepared.pair_readings
                pair = (int(readings.left[row]), int(readings.right[row]))
                # ...and the cuts' (or the whole's) reading gives way
                if not cuts_stand(reading, pair, float(readings.confidence[row]), gates.over_cuts,
                                  gates.over_nothing, gates.over_sure_digit):
                    detections.extend(_pair_detections(unit, scored or [], probabilities, prepared, row))
                    continue
            if scored and unit_index in pair_row_of and not unit.joined:  # a cut that reads the pair network's
                agreed = self._agreeing_cut_detections(reading, scored, probabilities, prepared,  # digits wins
                                                       pair_row_of[unit_index])
                if agreed:
                    detections.extend(agreed)
                    continue
            detections.extend(reading)
            rejected += unread
        if self.short_for_line > 0 and len(detections) > 1:
            short = short_for_their_line(detections, self.short_for_line)
            rejected += int(short.sum())
            detections = [d for d, drop in zip(detections, short) if not drop]
        numbers = group_numbers(detections, self.grouping)
        prepared.timings["group"] = _elapsed_ms(started)
        return FrameResult(frame=prepared.frame, detections=detections, numbers=numbers, rejected=rejected, timings=prepared.timings)

    def _agreeing_cut_detections(self, reading: list[Detection], scored: list, probabilities: np.ndarray,
                                 prepared: _PreparedFrame, row: int) -> list[Detection]:
        """The two digits of the region's two-part cut that reads what the pair network read (row `row` of its
        readings), where that agreement replaces the cuts' `reading` (`pairs.agreeing_cut`); else none."""
        cuts = [(option, rows) for option, rows, _ in scored if len(option) == 2 and min(rows) >= 0]
        readings = prepared.pair_readings
        agreed = agreeing_cut(reading, readings.first[row], readings.second[row],
                              [(probabilities[rows[0]], probabilities[rows[1]]) for _, rows in cuts],
                              self.min_confidence, self.pair_gates.with_agreeing_cut)
        if agreed is None:
            return []
        option, rows = cuts[agreed.index]
        return [Detection(box=part.box, digit=int(both.argmax()), confidence=float(both.max()), probabilities=both,
                          image=prepared.batch[part_row, :, :, 0].copy())
                for part, part_row, both in zip(option, rows, (agreed.left, agreed.right))]

    def _read_parts(self, option: list[Region], rows: np.ndarray, probabilities: np.ndarray,
                    prepared: _PreparedFrame) -> tuple[list[Detection], int]:
        """The digits of a chosen reading's parts, and how many parts were rejected (no ink, not a digit,
        or under the confidence floor)."""
        detections, rejected = [], 0
        for part, row in zip(option, rows):
            if row < 0:
                rejected += 1
                continue
            label = int(probabilities[row].argmax())
            confidence = float(probabilities[row, label])
            if label == NOT_A_DIGIT_INDEX or confidence < self.min_confidence:
                rejected += 1
                continue
            detections.append(Detection(box=part.box, digit=label, confidence=confidence,
                                        probabilities=probabilities[row, :10].copy(),
                                        image=prepared.batch[row, :, :, 0].copy()))
        return detections, rejected


def short_for_their_line(detections: list[Detection], share: float = SHORT_FOR_LINE) -> np.ndarray:
    """For each detection, whether it is less than `share` of its line's height (`split.line_heights`) with no
    other digit of its size on the line (`SAME_SIZE`): a fleck, not a digit (`SHORT_FOR_LINE`)."""
    heights = np.array([d.box[3] for d in detections], float)
    short = heights < share * line_heights(detections)
    if not short.any():
        return short
    ratio = heights[None, :] / np.maximum(heights[:, None], 1.0)
    alike = on_one_line(np.array([d.box for d in detections], float)) & (ratio * SAME_SIZE >= 1) & (ratio <= SAME_SIZE)
    np.fill_diagonal(alike, False)
    return short & ~alike.any(axis=1)


def photo_pair_model_for(pair_model: PairModel, photo_pair_model: PairModel) -> PairModel:
    """The pair network for still photos: `photo_pair_model` when given, else the shipped photo network
    (`DEFAULT_PHOTO_PAIR_MODEL`) when `pair_model` is the shipped one, else None (photos are read by `pair_model`'s,
    so that a network given alone is the one a run measures)."""
    if photo_pair_model is not None:
        return photo_pair_model
    if isinstance(pair_model, (str, os.PathLike)) and Path(pair_model) == DEFAULT_PAIR_MODEL:
        return DEFAULT_PHOTO_PAIR_MODEL
    return None


def names_no_pair_model(model: PairModel) -> bool:
    """Whether `model` is `NO_PAIR_MODEL` (in any case)."""
    return isinstance(model, str) and model.lower() == NO_PAIR_MODEL


def open_pair_model(path: str | os.PathLike | None, num_threads: int | None = None) -> PairClassifier | None:
    """The pair network at `path`; None for None and `NO_PAIR_MODEL`, or for a default (`DEFAULT_PAIR_MODEL`,
    `DEFAULT_PHOTO_PAIR_MODEL`) when this checkout has none (photos are then read by cuts alone, or by the other).
    Any other path that is missing or wrong raises `ModelFileError`."""
    defaults = (DEFAULT_PAIR_MODEL, DEFAULT_PHOTO_PAIR_MODEL)
    if path is None or names_no_pair_model(path):
        return None
    if Path(path) in defaults and not tflite_path_for(Path(path)).exists():
        return None
    return PairClassifier(path, num_threads)


@dataclass
class _PreparedFrame:
    """A frame segmented, its candidates normalised into one batch, waiting for their probabilities."""

    frame: Frame
    mask: np.ndarray
    units: list[ReadingUnit]
    parts: list[Region]
    batch: np.ndarray
    normalised: list[int]
    """The indices in `parts` of the batch's rows (parts without ink have none)."""
    timings: dict[str, float]
    pair_units: list[int] = field(default_factory=list)
    """The indices in `units` of the regions the pair network reads (a still photo's offered cuts or nearly wide
    enough; a video frame's at least half a line height wide read unsurely, chosen once classified)..."""
    pair_batch: np.ndarray | None = None
    """...their (N, 28, 56, 1) blobs..."""
    pair_readings: PairReadings | None = None
    """...and its readings of them, once classified."""

    @cached_property
    def option_rows(self) -> list[list[np.ndarray]]:
        """For each unit, for each of its options, its parts' rows in the classifier's batch (-1 for a part without
        ink): the one place that knows `parts` are the units' options' parts laid end to end."""
        rows = np.full(len(self.parts), -1)
        rows[self.normalised] = np.arange(len(self.normalised))
        by_unit, cursor = [], 0
        for unit in self.units:
            options = []
            for option in unit.options:
                options.append(rows[cursor : cursor + len(option)])
                cursor += len(option)
            by_unit.append(options)
        return by_unit


def reading_hypotheses(
    regions: list[Region], splitting: SplitConfig = DEFAULT_SPLIT, heights: np.ndarray | None = None,
    still: bool = False,
) -> list[list[list[Region]]]:
    """For each region, the ways to read it: whole first, then cut into touching digits when it is
    wide for its line (or, on a still photo, not much narrower). The classifier's confidences later
    pick one per region."""
    heights = line_heights(regions) if heights is None else heights
    short = too_short_to_cut(regions, splitting)
    return [[[region], *([] if is_short else split_hypotheses(region, height, splitting, still))]
            for region, height, is_short in zip(regions, heights, short)]


@dataclass
class ReadingUnit:
    """One region and the ways to read it (whole first, then cuts), or two pieces of a possibly
    broken digit and the two ways to read them (apart, then joined)."""

    options: list[list[Region]]
    width_ratio: float = 0.0
    """The region's width over its line's digit height (for choosing among cuts)."""
    joined: bool = False


def reading_units(regions: list[Region], splitting: SplitConfig = DEFAULT_SPLIT,
                  merging: MergeConfig = DEFAULT_MERGE, still: bool = False) -> list[ReadingUnit]:
    """Everything the classifier reads for a frame's regions (a still photo's if `still`), in reading order."""
    heights = line_heights(regions)
    hypotheses = reading_hypotheses(regions, splitting, heights, still)
    joins = dict(merge_candidates(regions, heights, [len(options) > 1 for options in hypotheses], merging))
    partners = set(joins.values())
    units = []
    for index, (region, options, height) in enumerate(zip(regions, hypotheses, heights)):
        if index in partners:
            continue
        if index in joins:
            other = regions[joins[index]]
            units.append(ReadingUnit([[region, other], [joined_region(region, other)]], joined=True))
        else:
            units.append(ReadingUnit(options, width_ratio=region.box[2] / max(float(height), 1.0)))
    return units


def _sure_pairs(prepared: _PreparedFrame, floor: float, min_confidence: float) -> dict[int, int]:
    """Unit index -> its row in the pair readings, for each region the pair network read as a pair at least
    `floor` surely, with each digit at least `min_confidence` surely (else the cuts read it as before)."""
    readings = prepared.pair_readings
    if readings is None:
        return {}
    rows = np.arange(len(prepared.pair_units))
    sure = ((readings.confidence >= floor) & (readings.first[rows, readings.left] >= min_confidence)
            & (readings.second[rows, readings.right] >= min_confidence))
    return {unit: row for row, unit in enumerate(prepared.pair_units) if sure[row]}


def _not_pairs(prepared: _PreparedFrame, floor: float) -> set[int]:
    """Unit indices of the regions the pair network called not a pair at least `floor` surely."""
    readings = prepared.pair_readings
    if readings is None:
        return set()
    return {unit for row, unit in enumerate(prepared.pair_units) if whole_stands(readings, row, floor)}


def _pair_detections(unit: ReadingUnit, scored: list, probabilities: np.ndarray, prepared: _PreparedFrame,
                     row: int) -> list[Detection]:
    """The two digits the pair network read in a region (row `row` of its readings), boxed by the region's
    two-part cut whose parts the digit classifier reads most like them (the region's halves without one)."""
    readings = prepared.pair_readings
    left, right = int(readings.left[row]), int(readings.right[row])
    best, best_score = None, -np.inf
    for option, rows, _ in scored:
        if len(option) != 2 or min(rows) < 0:
            continue
        score = (np.log(max(float(probabilities[rows[0], left]), 1e-12))
                 + np.log(max(float(probabilities[rows[1], right]), 1e-12)))
        if score > best_score:
            best, best_score = (option, rows), score
    if best is None:
        x, y, w, h = unit.options[0][0].box
        boxes, images = [(x, y, w // 2, h), (x + w // 2, y, w - w // 2, h)], [None, None]
    else:
        boxes = [part.box for part in best[0]]
        images = [prepared.batch[part_row, :, :, 0].copy() for part_row in best[1]]
    left_head = readings.first[row, :10] / max(float(readings.first[row, :10].sum()), 1e-12)
    right_head = readings.second[row]
    sure = (float(readings.first[row, left]), float(readings.second[row, right]))
    return [Detection(box=box, digit=digit, confidence=p, probabilities=head.astype(np.float32), image=image)
            for box, digit, p, head, image in zip(boxes, (left, right), sure, (left_head, right_head), images)]


def _log_confidences(probabilities: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Log of each part's best digit probability; -inf for parts that are empty or not digits."""
    scores = np.full(len(rows), -np.inf)
    for index, row in enumerate(rows):
        if row >= 0 and probabilities[row].argmax() != NOT_A_DIGIT_INDEX:
            scores[index] = np.log(max(float(probabilities[row].max()), 1e-12))
    return scores


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
