"""Training crops cut by the reader's own segmenter from synthetic photos of training digits.

Camera-style augmentation imitates what a camera does to one digit; these crops are what the
reader really feeds the model: thresholded under uneven light, with grid residue, broken or
merged strokes, and the segmenter's own cuts of touching digits. Regions that lie on no digit
(marks, fragments, paper texture) and blobs of two or more touching digits become examples of the
"not a digit" class: a merged pair read as one confident digit would never be cut.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

import numpy as np

from digitrec.augment import NOT_A_DIGIT
from digitrec.evaluation import IOU_THRESHOLD, intersection, iou
from digitrec.normalise import MNIST_SIZE, EmptyCropError, normalise_mask_to_mnist
from digitrec.reader import reading_hypotheses
from digitrec.segment import segment_digits
from digitrec.synth import CONDITIONS, MnistGlyphs, make_page, make_touching_pair
from digitrec.types import Box


@dataclass(frozen=True)
class PageCropConfig:
    pages: int = 500
    """Synthetic photos to cut crops from, the page conditions taken in turn."""
    digit_iou: float = IOU_THRESHOLD
    """A crop whose box overlaps a written digit by this much (intersection over union) is that digit,
    the overlap at which the evaluation counts a digit found..."""
    not_a_digit_iou: float = 0.2
    """...and one that overlaps every digit by less than this is not a digit; crops in between are left out."""
    cut_digit_iou: float = 0.7
    """A cut of a wide region must overlap a digit this much to be that digit: a cut that takes a
    piece of the neighbour along is not a clean example of either (and must not read as well as the right cut)."""
    merged_cover: float = 0.6
    """A crop whose box covers this fraction of each of two digits' boxes that lie side by side
    (overlapping each other by less than `side_by_side_iou`) is touching digits merged into one blob:
    not a digit. Where the two boxes overlap more (a '1' tucked under a '7'), the box cannot tell the
    blob from the digit, and the crop is left out."""
    side_by_side_iou: float = 0.25
    touching_pairs: int = 1500
    """Photos of a line of digits where two touch (`synth.make_touching_pair`), for merged blobs and their cuts."""
    marked_pages: int = 100
    """Extra pages with 10-16 non-digit marks each (cursive loops, scribbles, checkboxes, ...)."""
    still_cuts: bool = True
    """Cut the regions as a still photo is read (`reading_hypotheses(still=True)`), which also offers
    cuts of regions not much wider than a digit: the narrow cuts a photo's reading weighs are then
    trained on too. False: only the cuts a video frame is offered."""
    seed_offset: int = 1_000_003
    """Added to the run's seed so these pages never coincide with the evaluation's (seeds 700 000+)."""


DEFAULT_PAGE_CROPS = PageCropConfig()


def iou_matrix(boxes_a: list[Box], boxes_b: list[Box]) -> np.ndarray:
    """Intersection over union of every box in `boxes_a` with every box in `boxes_b`, as the evaluation scores it."""
    return np.array([[iou(a, b) for b in boxes_b] for a in boxes_a], float).reshape(len(boxes_a), len(boxes_b))


def cover_matrix(boxes_a: list[Box], boxes_b: list[Box]) -> np.ndarray:
    """The fraction of each box in `boxes_b` that each box in `boxes_a` covers."""
    return np.array([[intersection(a, b) / max(b[2] * b[3], 1) for b in boxes_b] for a in boxes_a],
                    float).reshape(len(boxes_a), len(boxes_b))


def crops_of_page(
    image: np.ndarray, digit_boxes: list[Box], digit_labels: list[int], ignored: list[Box],
    config: PageCropConfig = DEFAULT_PAGE_CROPS, whole_digits: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate the reader would classify in `image` (whole regions and cuts of wide ones),
    normalised to 28x28 and labelled from the known digit boxes. "Not a digit" are whole regions that
    lie on no digit, and any crop that holds two or more digits merged. With `whole_digits` False,
    digits cut out whole are left out (pages drawn for their marks or their touching pairs).

    Returns:
        (x, y): (N, 28, 28) float32 crops and (N,) int64 labels, 10 = not a digit.
    """
    regions, _ = segment_digits(image)
    # Each region's first reading is the region whole; the others are cuts of it. A thin slice cut
    # off a wide region looks, once normalised, just like a '1': slices are only ever examples of
    # the digit they cover, never of "not a digit".
    readings = [(part, number == 0) for options in reading_hypotheses(regions, still=config.still_cuts)
                for number, option in enumerate(options) for part in option]
    parts = [part for part, _ in readings]
    is_whole = np.array([whole for _, whole in readings], bool)
    if not parts:
        return np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.float32), np.zeros(0, np.int64)
    part_boxes = [part.box for part in parts]
    overlap = iou_matrix(part_boxes, list(digit_boxes))
    near_ignored = iou_matrix(part_boxes, list(ignored)).max(axis=1, initial=0.0)
    best = overlap.max(axis=1, initial=0.0)
    covered = cover_matrix(part_boxes, list(digit_boxes)) >= config.merged_cover
    apart = iou_matrix(list(digit_boxes), list(digit_boxes)) < config.side_by_side_iou
    crops, labels = [], []
    for index, part in enumerate(parts):
        if near_ignored[index] > 0.0:
            continue
        which = np.flatnonzero(covered[index])
        if len(which) >= 2:
            if not apart[np.ix_(which, which)].any():
                continue
            label = NOT_A_DIGIT
        elif best[index] >= (config.digit_iou if is_whole[index] else config.cut_digit_iou):
            if is_whole[index] and not whole_digits:
                continue
            label = int(digit_labels[int(overlap[index].argmax())])
        elif best[index] < config.not_a_digit_iou and is_whole[index]:
            label = NOT_A_DIGIT
        else:
            continue
        try:
            crops.append(normalise_mask_to_mnist(part.mask))
        except EmptyCropError:
            continue
        labels.append(label)
    if not crops:
        return np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.float32), np.zeros(0, np.int64)
    return np.stack(crops).astype(np.float32), np.array(labels, np.int64)


_worker_glyphs: MnistGlyphs | None = None


def _start_worker(images: np.ndarray, labels: np.ndarray) -> None:
    global _worker_glyphs
    _worker_glyphs = MnistGlyphs(images, labels)


TOUCHING = "touching"
"""The task kind of a touching-pair photo, beside the page conditions."""


def _crops_of_seeded_page(task: tuple[int, str, bool, PageCropConfig]) -> tuple[np.ndarray, np.ndarray]:
    seed, kind, whole_digits, config = task
    page = make_touching_pair(seed, _worker_glyphs).page if kind == TOUCHING else make_page(seed, _worker_glyphs, kind)
    return crops_of_page(page.image, [d.box for d in page.digits], [d.digit for d in page.digits], page.ignored,
                         config, whole_digits)


def segmenter_crops(
    images: np.ndarray, labels: np.ndarray, seed: int, config: PageCropConfig = DEFAULT_PAGE_CROPS,
    workers: int | None = None, progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw `config.pages` synthetic photos (the conditions in turn), `config.marked_pages` pages with
    many marks and `config.touching_pairs` touching-pair photos with the given digits, and cut them as
    the reader would.

    Args:
        images, labels: the handwritten digits to write on the pages (MNIST-style, 28x28 uint8).
        seed: pages are drawn with seeds from `seed + config.seed_offset`, so a run is reproducible.
        workers: processes drawing pages in parallel (default: every core).
        progress: called once per photo (e.g. a tqdm bar's update).

    Returns:
        (x, y): (N, 28, 28) float32 crops in [0, 1], white on black, and (N,) labels, 10 = not a digit.
    """
    # The pages of every condition give every kind of crop; the extra marked pages and touching pairs
    # only what they are drawn for (not digits, merged blobs and cuts), not more whole digits.
    kinds = ([(CONDITIONS[index % len(CONDITIONS)], True) for index in range(config.pages)]
             + [("marks", False)] * config.marked_pages + [(TOUCHING, False)] * config.touching_pairs)
    tasks = [(seed + config.seed_offset + index, kind, whole_digits, config)
             for index, (kind, whole_digits) in enumerate(kinds)]
    workers = workers or os.cpu_count() or 1
    # Spawned workers import only the segmenter and the page generator, never TensorFlow.
    context = multiprocessing.get_context("spawn")
    xs, ys = [], []
    with context.Pool(workers, initializer=_start_worker, initargs=(images, labels)) as pool:
        # imap keeps the pages' order, so the crops come out the same whatever the worker count.
        for x, y in pool.imap(_crops_of_seeded_page, tasks, chunksize=8):
            xs.append(x)
            ys.append(y)
            if progress is not None:
                progress()
    return np.concatenate(xs), np.concatenate(ys)
