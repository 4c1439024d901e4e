"""The reader: one frame in, every digit and number in it out (segment, normalise, classify, group)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from digitrec.classify import NOT_A_DIGIT_INDEX, DigitClassifier
from digitrec.group import DEFAULT_GROUPING, GroupingConfig, group_numbers
from digitrec.normalise import MNIST_SIZE, EmptyCropError, normalise_mask_to_mnist
from digitrec.segment import DEFAULT_SEGMENTATION, SegmentationConfig, segment_digits
from digitrec.split import (
    DEFAULT_SPLIT,
    SplitConfig,
    cannot_beat_whole,
    choose_hypothesis,
    line_heights,
    split_hypotheses,
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

    def read(self, frame: Frame) -> FrameResult:
        """Find, read and group the digits of one frame."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        regions, self.last_mask = segment_digits(frame.image, self.segmentation)
        timings["segment"] = _elapsed_ms(started)

        started = time.perf_counter()
        wholes, whole_rows = _batch_rows(regions)
        timings["normalise"] = _elapsed_ms(started)
        started = time.perf_counter()
        whole_probabilities = self.classifier.probabilities(wholes)
        timings["classify"] = _elapsed_ms(started)

        started = time.perf_counter()
        # Each region is read whole and, when it is wide for its line, cut into touching digits; the
        # classifier's confidences pick the reading. A cut can only win against a whole that is not
        # read confidently, so only those regions' cuts are normalised and classified (one more batch).
        whole_scores = _log_confidences(whole_probabilities, whole_rows)
        heights = line_heights(regions)
        splits = [
            [] if cannot_beat_whole(score, self.splitting) else split_hypotheses(region, height, self.splitting)
            for region, height, score in zip(regions, heights, whole_scores)
        ]
        parts = [part for options in splits for option in options for part in option]
        split_batch, split_rows = _batch_rows(parts)
        timings["normalise"] += _elapsed_ms(started)
        started = time.perf_counter()
        split_probabilities = self.classifier.probabilities(split_batch) if len(split_batch) else whole_probabilities[:0]
        timings["classify"] += _elapsed_ms(started)

        started = time.perf_counter()
        probabilities = np.concatenate([whole_probabilities, split_probabilities])
        split_rows = np.where(split_rows >= 0, split_rows + len(whole_probabilities), -1)
        detections: list[Detection] = []
        rejected = 0
        cursor = 0
        for index, options in enumerate(splits):
            scored = [([regions[index]], whole_rows[index : index + 1], whole_scores[index : index + 1])]
            for option in options:
                rows = split_rows[cursor : cursor + len(option)]
                cursor += len(option)
                scored.append((option, rows, _log_confidences(probabilities, rows)))
            option, rows, _ = scored[choose_hypothesis([scores for _, _, scores in scored], self.splitting)]
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
                                            probabilities=probabilities[row, :10].copy()))
        numbers = group_numbers(detections, self.grouping)
        timings["group"] = _elapsed_ms(started)
        return FrameResult(frame=frame, detections=detections, numbers=numbers, rejected=rejected, timings=timings)


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


def _batch_rows(regions: list[Region]) -> tuple[np.ndarray, np.ndarray]:
    """The normalised batch of `regions` and, per region, its row in the batch (-1 when it held no ink)."""
    batch, kept = normalise_regions(regions)
    rows = np.full(len(regions), -1)
    rows[kept] = np.arange(len(kept))
    return batch, rows


def _log_confidences(probabilities: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Log of each part's best digit probability; -inf for parts that are empty or not digits."""
    scores = np.full(len(rows), -np.inf)
    for index, row in enumerate(rows):
        if row >= 0 and probabilities[row].argmax() != NOT_A_DIGIT_INDEX:
            scores[index] = np.log(max(float(probabilities[row].max()), 1e-12))
    return scores


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
