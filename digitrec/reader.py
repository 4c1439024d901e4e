"""The reader: one frame in, every digit and number in it out (segment, normalise, classify, group)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from digitrec.classify import NOT_A_DIGIT_INDEX, DigitClassifier
from digitrec.group import DEFAULT_GROUPING, GroupingConfig, group_numbers
from digitrec.normalise import MNIST_SIZE, EmptyCropError, normalise_mask_to_mnist
from digitrec.segment import DEFAULT_SEGMENTATION, SegmentationConfig, segment_digits
from digitrec.split import (
    DEFAULT_SPLIT,
    SplitConfig,
    choose_hypothesis,
    line_heights,
    split_hypotheses,
    too_short_to_cut,
)
from digitrec.types import Detection, Frame, FrameResult, Region

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"
"""The model shipped with the project."""

DEFAULT_MIN_CONFIDENCE = 0.5
"""Digits read with less confidence than this are not reported."""


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
    ):
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"the minimum confidence must be between 0 and 1, not {min_confidence}")
        self.classifier = classifier or DigitClassifier(model_path)
        self.min_confidence = min_confidence
        self.segmentation = segmentation
        self.grouping = grouping
        self.splitting = splitting
        self.last_mask: np.ndarray | None = None
        """The thresholded ink of the last frame, for the window's mask view."""

    def read_stream(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """Read frames one after another (the interface `parallel.ParallelReader` shares)."""
        for frame in frames:
            yield self.read(frame)

    def read(self, frame: Frame) -> FrameResult:
        """Find, read and group the digits of one frame."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        regions, self.last_mask = segment_digits(frame.image, self.segmentation)
        timings["segment"] = _elapsed_ms(started)

        started = time.perf_counter()
        # Each region is read whole and, when it is wide for its line, cut into touching digits;
        # every candidate goes into the one batch, and the classifier's confidences pick the reading.
        heights = line_heights(regions)
        hypotheses = reading_hypotheses(regions, self.splitting, heights)
        parts = [part for options in hypotheses for option in options for part in option]
        batch, normalised = normalise_regions(parts)
        timings["normalise"] = _elapsed_ms(started)

        started = time.perf_counter()
        probabilities = self.classifier.probabilities(batch)
        timings["classify"] = _elapsed_ms(started)

        started = time.perf_counter()
        row_of = np.full(len(parts), -1)
        row_of[normalised] = np.arange(len(normalised))
        detections: list[Detection] = []
        rejected = 0
        cursor = 0
        for options, height in zip(hypotheses, heights):
            scored = []
            for option in options:
                rows = row_of[cursor : cursor + len(option)]
                cursor += len(option)
                scored.append((option, rows, _log_confidences(probabilities, rows)))
            width_ratio = options[0][0].box[2] / max(float(height), 1.0)
            option, rows, _ = scored[choose_hypothesis([scores for _, _, scores in scored], self.splitting, width_ratio)]
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
                                            image=batch[row, :, :, 0].copy()))
        numbers = group_numbers(detections, self.grouping)
        timings["group"] = _elapsed_ms(started)
        return FrameResult(frame=frame, detections=detections, numbers=numbers, rejected=rejected, timings=timings)


def reading_hypotheses(
    regions: list[Region], splitting: SplitConfig = DEFAULT_SPLIT, heights: np.ndarray | None = None
) -> list[list[list[Region]]]:
    """For each region, the ways to read it: whole first, then cut into touching digits when it is
    wide for its line. The classifier's confidences later pick one per region."""
    heights = line_heights(regions) if heights is None else heights
    short = too_short_to_cut(regions, splitting)
    return [[[region], *([] if is_short else split_hypotheses(region, height, splitting))]
            for region, height, is_short in zip(regions, heights, short)]


def normalise_regions(regions: list[Region]) -> tuple[np.ndarray, list[int]]:
    """The (N, 28, 28, 1) batch of the regions that hold ink, and their indices in `regions`."""
    batch = np.zeros((len(regions), MNIST_SIZE, MNIST_SIZE, 1), np.float32)
    kept: list[int] = []
    for index, region in enumerate(regions):
        try:
            batch[len(kept), :, :, 0] = normalise_mask_to_mnist(region.mask)
        except EmptyCropError:
            continue
        kept.append(index)
    return batch[: len(kept)], kept


def _log_confidences(probabilities: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Log of each part's best digit probability; -inf for parts that are empty or not digits."""
    scores = np.full(len(rows), -np.inf)
    for index, row in enumerate(rows):
        if row >= 0 and probabilities[row].argmax() != NOT_A_DIGIT_INDEX:
            scores[index] = np.log(max(float(probabilities[row].max()), 1e-12))
    return scores


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
