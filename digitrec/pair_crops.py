"""Training crops for the pair network: blobs of two touching digits as the reader's segmenter finds
them, read whole (28x56, `normalise.PAIR_FORMAT`), and regions that are not such a pair.

The digit classifier reads a cut of two touching digits as surely as the right cut, so cutting alone
loses many pairs; a network that sees the blob whole reads both digits at once (docs/history.md,
session 15). Its examples come from synthetic photos written with training digits only:

- a region that covers two digits lying side by side is a pair, labelled (left digit, right digit);
- a region that covers one digit, a digit and a piece of its neighbour, three digits, a mark or a
  fragment is "not a pair" (`NOT_A_PAIR` as its first digit).
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

import numpy as np

from digitrec.normalise import PAIR_FORMAT, EmptyCropError, normalise_mask
from digitrec.page_crops import cover_matrix, iou_matrix
from digitrec.pairs import NOT_A_PAIR
from digitrec.segment import segment_digits
from digitrec.synth import MnistGlyphs, make_page, make_touching_pair
from digitrec.types import Box


@dataclass(frozen=True)
class PairCropConfig:
    touching_pairs: int = 24_000
    """Photos of a line of digits where two touch (`synth.make_touching_pair`). Twice session 15's 12 000
    since session 26: on fresh held-out draws the network trained so read 13 more of 1 000 touching pairs
    with the marked pages, pages and videos unchanged (docs/history.md, session 26)."""
    marked_pages: int = 1_500
    """Pages with 10-16 non-digit marks each, whose regions are mostly single digits and marks
    (and some digits written touching, which are pairs too)."""
    cover: float = 0.8
    """A region holds a digit when its box covers this fraction of the digit's box."""
    side_by_side_iou: float = 0.5
    """Two digits held by one region are a pair when their boxes overlap each other by less than this
    (intersection over union), left and right by their boxes' left edges; a region whose two digits overlap
    more (a '1' tucked under a '7', one digit written into the other) is left out. 0.5 since session 28: with
    0.25 the 24 000 photos gave 3 710 fewer pairs ('1' pressed into its neighbour's box), and the network taught
    them read 22 more of 1 000 fresh held-out pairs with the marked pages, pages and videos within their rule.
    Session 18 taught every such region (1.0): more pairs read, but more false detections (docs/history.md)."""
    seed_offset: int = 7_000_003
    """Added to the run's seed so these photos never coincide with the evaluation's or the digit
    model's page crops (`page_crops.PageCropConfig.seed_offset`)."""


DEFAULT_PAIR_CROPS = PairCropConfig()


def pair_crops_of_photo(
    image: np.ndarray, digit_boxes: list[Box], digit_labels: list[int], ignored: list[Box] = (),
    config: PairCropConfig = DEFAULT_PAIR_CROPS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every region the segmenter finds in `image`, normalised to 28x56 and labelled from the known digits.

    Returns:
        (x, first, second): (N, 28, 56) float32 crops; (N,) the left digit or `NOT_A_PAIR`; (N,) the
        right digit, -1 where the region is not a pair.
    """
    regions, _ = segment_digits(image)
    if not regions:
        return _no_crops()
    boxes = [region.box for region in regions]
    covered = cover_matrix(boxes, list(digit_boxes)) >= config.cover
    near_ignored = iou_matrix(boxes, list(ignored)).max(axis=1, initial=0.0)
    apart = iou_matrix(list(digit_boxes), list(digit_boxes)) < config.side_by_side_iou
    crops, firsts, seconds = [], [], []
    for index, region in enumerate(regions):
        if near_ignored[index] > 0.0:
            continue
        which = np.flatnonzero(covered[index])
        if len(which) == 2:
            if not apart[which[0], which[1]]:
                continue  # one digit under another: neither one digit nor a pair
            left, right = sorted(which, key=lambda digit: digit_boxes[digit][0])
            first, second = int(digit_labels[left]), int(digit_labels[right])
        else:
            first, second = NOT_A_PAIR, -1
        try:
            crops.append(normalise_mask(region.mask, layout=PAIR_FORMAT))
        except EmptyCropError:
            continue
        firsts.append(first)
        seconds.append(second)
    if not crops:
        return _no_crops()
    return np.stack(crops).astype(np.float32), np.array(firsts, np.int64), np.array(seconds, np.int64)


def _no_crops() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.zeros((0, PAIR_FORMAT.height, PAIR_FORMAT.width), np.float32), np.zeros(0, np.int64),
            np.zeros(0, np.int64))


_worker_glyphs: MnistGlyphs | None = None


def _start_worker(images: np.ndarray, labels: np.ndarray) -> None:
    global _worker_glyphs
    _worker_glyphs = MnistGlyphs(images, labels)


def _crops_of_seeded_photo(task: tuple[int, bool, PairCropConfig]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed, touching, config = task
    page = make_touching_pair(seed, _worker_glyphs).page if touching else make_page(seed, _worker_glyphs, "marks")
    return pair_crops_of_photo(page.image, [d.box for d in page.digits], [d.digit for d in page.digits],
                               page.ignored, config)


def pair_training_crops(
    images: np.ndarray, labels: np.ndarray, seed: int, config: PairCropConfig = DEFAULT_PAIR_CROPS,
    workers: int | None = None, progress=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw `config.touching_pairs` touching-pair photos and `config.marked_pages` marked pages with the
    given digits (MNIST-style 28x28 uint8) and cut them as the reader's segmenter does.

    `workers`: processes drawing photos in parallel (default: every core); the crops come out the same
    whatever their number. `progress`: called once per photo. Returns `pair_crops_of_photo`'s arrays.
    """
    kinds = [True] * config.touching_pairs + [False] * config.marked_pages
    tasks = [(seed + config.seed_offset + index, touching, config) for index, touching in enumerate(kinds)]
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # workers import the segmenter, never TensorFlow
    parts = []
    with context.Pool(workers, initializer=_start_worker, initargs=(images, labels)) as pool:
        for part in pool.imap(_crops_of_seeded_photo, tasks, chunksize=8):
            parts.append(part)
            if progress is not None:
                progress()
    if not parts:
        return _no_crops()
    return tuple(np.concatenate(column) for column in zip(*parts))
