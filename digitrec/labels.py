"""The user's labelled digit crops: saved from the window's labelling mode, loaded for fine-tuning.

A label folder holds, for each labelled crop,

    DIR/<digit>/<source>_<frame>_<n>.png   the 28x28 image the classifier read (white ink on black)
    DIR/raw/<source>_<frame>_<n>.png       the frame's BGR pixels round the box, with a margin, so a
                                           future normaliser can cut the crop again
    DIR/index.jsonl                        one JSON object per crop: digit, both paths, source, frame, boxes

The digit folders are the truth: moving a PNG to another digit's folder relabels it, deleting it
drops it. The index records where each crop came from.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from digitrec.binarise import binarise_ink, drop_specks, ink_channel
from digitrec.normalise import MNIST_SIZE, normalise_mask_to_mnist
from digitrec.types import Box, Detection, Frame

INDEX_NAME = "index.jsonl"
RAW_FOLDER = "raw"

RAW_MARGIN = 0.25
"""Paper kept round the box in the raw crop, as a fraction of the box's longer side."""

DEFAULT_LABELS_DIR = "labels"


class LabelFolderError(ValueError):
    """A label folder is missing, empty or holds files the labeller did not write; the message names the fix."""


@dataclass(frozen=True)
class LabelledCrop:
    """One saved crop, as recorded in the index."""

    digit: int
    image_path: Path
    raw_path: Path
    source: str
    frame: int
    box: Box


@dataclass
class LabelledCrops:
    """Every crop of a label folder, ready to train on."""

    images: np.ndarray
    """(N, 28, 28) float32 in [0, 1], white ink on black: what the classifier reads."""
    labels: np.ndarray
    """(N,) int64 digits 0-9."""
    paths: list[Path]

    def counts(self) -> dict[int, int]:
        """How many crops of each digit."""
        return {int(d): int(np.sum(self.labels == d)) for d in np.unique(self.labels)}


def _raw_box(box: Box, frame_shape: tuple[int, ...]) -> Box:
    x, y, w, h = box
    margin = int(round(RAW_MARGIN * max(w, h)))
    height, width = frame_shape[:2]
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
    return (x0, y0, x1 - x0, y1 - y0)


def model_input_from_frame(image: np.ndarray, box: Box, ink: str = "dark") -> np.ndarray:
    """The 28x28 crop of `box` cut from a BGR frame alone, when the reader's own is not at hand.

    The ink is thresholded in the box with a margin of paper, as the segmenter does over the whole
    frame, so it is close to but not always exactly what the reader classified (its threshold
    comes from the whole frame); prefer `Detection.image`. `ink`: as the segmenter's
    (`segment.SegmentationConfig.ink`), "light" for light ink on a dark ground.
    """
    raw_x, raw_y, raw_w, raw_h = _raw_box(box, image.shape)
    gray = ink_channel(image[raw_y : raw_y + raw_h, raw_x : raw_x + raw_w], ink)
    paper_kernel = max(15, int(max(box[2], box[3]))) | 1
    mask = binarise_ink(np.ascontiguousarray(gray), paper_kernel)
    x, y, w, h = box
    inside = mask[y - raw_y : y - raw_y + h, x - raw_x : x - raw_x + w]
    return normalise_mask_to_mnist(drop_specks(inside))


def _safe_name(text: str) -> str:
    stem = Path(text).stem if text else "frame"
    return re.sub(r"[^A-Za-z0-9-]+", "-", stem).strip("-") or "frame"


def _place(frame: Frame, box: Box) -> tuple[str, int, Box]:
    """Where a crop was cut: its source, frame and box (a box labelled again there replaces its crop)."""
    return frame.source, int(frame.index), tuple(int(v) for v in box)


class LabelStore:
    """Writes labelled crops into a label folder (created on the first crop)."""

    def __init__(self, folder: str | os.PathLike = DEFAULT_LABELS_DIR, ink: str = "dark"):
        """`ink`: the reader's (`segment.SegmentationConfig.ink`), for crops cut again from the frame (`add`)."""
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise LabelFolderError(f"{self.folder}: is a file, not a folder. Pass --labels DIR to a folder.")
        self.ink = ink
        self.added = 0
        self._saved: dict[tuple[str, int, Box], LabelledCrop] = {}  # this session's crops, by where they were cut

    def earlier_label(self, frame: Frame, box: Box) -> int | None:
        """The digit this box of this frame was labelled as earlier in this session (None: not labelled yet)."""
        earlier = self._saved.get(_place(frame, box))
        return None if earlier is None else earlier.digit

    def _free_name(self, source: str, frame: int) -> str:
        base = f"{_safe_name(source)}_{frame}"
        n = 0
        while (self.folder / RAW_FOLDER / f"{base}_{n}.png").exists() or any(
            (self.folder / str(d) / f"{base}_{n}.png").exists() for d in range(10)
        ):
            n += 1
        return f"{base}_{n}.png"

    def add(self, frame: Frame, box: Box, digit: int, model_input: np.ndarray | None = None) -> LabelledCrop:
        """Save the crop of `box` in `frame` as `digit`. A box labelled earlier in this session is labelled anew:
        its earlier crop is deleted (the digit folders are the truth), so fine-tuning never learns both labels.

        Args:
            model_input: the (28, 28) image the classifier read for this box (`Detection.image`);
                cut again from the frame when None.
        """
        if not 0 <= int(digit) <= 9:
            raise ValueError(f"a label is a digit 0-9, not {digit}")
        if model_input is None:
            model_input = model_input_from_frame(frame.image, box, self.ink)
        if model_input.shape != (MNIST_SIZE, MNIST_SIZE):
            raise ValueError(f"the model input of a crop is 28x28, not {model_input.shape}")
        key = _place(frame, box)
        name = self._free_name(frame.source, frame.index)
        image_path = self.folder / str(int(digit)) / name
        raw_path = self.folder / RAW_FOLDER / name
        rx, ry, rw, rh = raw_box = _raw_box(box, frame.image.shape)
        try:
            image_path.parent.mkdir(parents=True, exist_ok=True)
            raw_path.parent.mkdir(parents=True, exist_ok=True)
            written = cv2.imwrite(str(image_path), np.round(np.clip(model_input, 0, 1) * 255).astype(np.uint8))
            written = written and cv2.imwrite(str(raw_path), frame.image[ry : ry + rh, rx : rx + rw])
        except OSError as error:
            raise LabelFolderError(f"{self.folder}: the crop cannot be saved there ({error.strerror}). "
                                   "Pass --labels DIR to a folder you can write to.") from None
        if not written:
            raise LabelFolderError(f"{image_path}: the crop could not be written. Is the disk full?")
        earlier = self._saved.get(key)
        if earlier is not None:
            earlier.image_path.unlink(missing_ok=True)
            earlier.raw_path.unlink(missing_ok=True)
            self.added -= 1
        record = {
            "digit": int(digit),
            "image": image_path.relative_to(self.folder).as_posix(),
            "raw": raw_path.relative_to(self.folder).as_posix(),
            "source": frame.source,
            "frame": int(frame.index),
            "box": [int(v) for v in box],
            "raw_box": [int(v) for v in raw_box],
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        with open(self.folder / INDEX_NAME, "a", encoding="utf-8") as index:
            index.write(json.dumps(record) + "\n")
        self.added += 1
        self._saved[key] = LabelledCrop(int(digit), image_path, raw_path, frame.source, int(frame.index), key[2])
        return self._saved[key]

    def add_detection(self, frame: Frame, detection: Detection, digit: int) -> LabelledCrop:
        """Save a detection's crop, with the very image the classifier read when the reader kept it."""
        return self.add(frame, detection.box, digit, detection.image)


def read_index(folder: str | os.PathLike) -> list[LabelledCrop]:
    """The crops recorded in a label folder's index, in the order they were labelled."""
    folder = Path(folder)
    path = folder / INDEX_NAME
    if not path.is_file():
        return []
    crops = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            crops.append(LabelledCrop(int(record["digit"]), folder / record["image"], folder / record["raw"],
                                      str(record["source"]), int(record["frame"]), tuple(record["box"])))
        except (ValueError, KeyError, TypeError) as error:
            raise LabelFolderError(f"{path}, line {number}: not a crop record ({error}). "
                                   "Delete the line or restore the file from the labeller.") from None
    return crops


def load_labelled_crops(folder: str | os.PathLike) -> LabelledCrops:
    """Every 28x28 crop in a label folder's digit folders, with its digit.

    Raises:
        LabelFolderError: the folder is missing or a file, holds no crops, or a crop is not a
            28x28 grey PNG.
    """
    folder = Path(folder)
    hint = "Label digits in the window: python3 live_digits.py --labels DIR, pause, press l."
    if not folder.exists():
        raise LabelFolderError(f"{folder}: no such folder. {hint}")
    if not folder.is_dir():
        raise LabelFolderError(f"{folder}: is a file, not a label folder. {hint}")
    paths = sorted(path for digit in range(10) for path in (folder / str(digit)).glob("*.png"))
    if not paths:
        raise LabelFolderError(f"{folder}: holds no labelled crops (no PNG in its 0-9 folders). {hint}")
    images = np.zeros((len(paths), MNIST_SIZE, MNIST_SIZE), np.float32)
    labels = np.zeros(len(paths), np.int64)
    for row, path in enumerate(paths):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.shape != (MNIST_SIZE, MNIST_SIZE):
            found = "unreadable" if image is None else f"of shape {image.shape}"
            raise LabelFolderError(f"{path}: {found}, not a 28x28 grey crop written by the labeller. "
                                   "Delete it (its raw crop is in the raw/ folder).")
        images[row] = image.astype(np.float32) / 255.0
        labels[row] = int(path.parent.name)
    return LabelledCrops(images=images, labels=labels, paths=paths)


def box_at(boxes: list[Box], point: tuple[int, int]) -> int | None:
    """Index of the box under a point (the smallest, where boxes nest), else of the nearest box
    within one box size of it, else None."""
    if not boxes:
        return None
    x, y = point
    arr = np.array(boxes, np.float64)
    inside = (arr[:, 0] <= x) & (x < arr[:, 0] + arr[:, 2]) & (arr[:, 1] <= y) & (y < arr[:, 1] + arr[:, 3])
    if inside.any():
        areas = np.where(inside, arr[:, 2] * arr[:, 3], np.inf)
        return int(areas.argmin())
    centres = arr[:, :2] + arr[:, 2:] / 2
    distances = np.hypot(centres[:, 0] - x, centres[:, 1] - y)
    nearest = int(distances.argmin())
    return nearest if distances[nearest] <= arr[nearest, 2:].max() else None


def reading_order(detections: list[Detection]) -> list[int]:
    """Indices of `detections` in the order labelling steps through them: number by number in reading order, each
    number's digits left to right, then any digit in no number (left to right, top to bottom)."""
    last = 1 + max((detection.number for detection in detections), default=-1)
    return sorted(range(len(detections)), key=lambda index: (
        detections[index].number if detections[index].number >= 0 else last,
        detections[index].box[0], detections[index].box[1]))


__all__ = [
    "DEFAULT_LABELS_DIR",
    "LabelFolderError",
    "LabelStore",
    "LabelledCrop",
    "LabelledCrops",
    "box_at",
    "load_labelled_crops",
    "model_input_from_frame",
    "read_index",
    "reading_order",
]
