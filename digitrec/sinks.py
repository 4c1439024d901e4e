"""Where results go: JSON Lines, CSV, annotated images and videos; each flushes every frame."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from digitrec.sources import IMAGE_SUFFIXES
from digitrec.types import FrameResult

CSV_COLUMNS = ("source", "frame", "number", "text", "digit", "confidence", "x", "y", "w", "h", "track")

VIDEO_OUTPUT_SUFFIXES = (".mp4", ".avi")
"""What an annotated video may be called: MPEG-4 (mp4v) or Motion JPEG (MJPG), both in OpenCV's own FFmpeg."""

VIDEO_OUTPUT_FPS = (1.0, 240.0)
"""The frame rates an annotated video is written at: a source's rate outside them (a time-lapse's 0.001, a bad
header's 120 000) is brought to the nearer end, where FFmpeg's writer would refuse it or mistime it."""


class SinkError(RuntimeError):
    """An output cannot be written; the message names the path and the fix."""


def check_distinct(inputs: Iterable[str | Path], outputs: dict[str, str | Path | None]) -> None:
    """Refuse, before anything is written, an output that is one of the inputs (it would be overwritten while it is
    read) or the same file as another output (they would be written into one). `outputs` maps an option's name to
    its path (None: not given; '-': stdout).

    Raises:
        SinkError: naming the two and the fix.
    """
    seen: dict[object, str] = {_file_identity(path): "--source" for path in inputs}
    for option, path in outputs.items():
        if path is None or str(path) == "-":
            continue
        identity = _file_identity(path)
        if identity in seen:
            what = "the input it reads" if seen[identity] == "--source" else f"the same file as {seen[identity]}"
            raise SinkError(f"{option} {path} is {what}; it would be overwritten. Name another file.")
        seen[identity] = option


def _file_identity(path: str | Path) -> object:
    """What tells two names of one file apart from two files: an existing file's device and inode (a hard link, or
    another case on a case-insensitive disk, is the same file), else the absolute path with links resolved."""
    try:
        status = Path(path).stat()
    except OSError:
        return Path(path).resolve()
    return (status.st_dev, status.st_ino)


def _check_folder(path: Path) -> None:
    """Refuse a file path whose folder is not there (or is a file)."""
    if path.parent.is_dir():
        return
    if path.parent.exists():
        raise SinkError(f"{path}: {path.parent} is a file, not a folder. Pick another path.")
    raise SinkError(f"{path}: the folder {path.parent} does not exist. Create it or pick another path.")


def _check_writable(path: Path) -> None:
    """Refuse a file that cannot be written, with the reason, before the first frame is read."""
    reason = _why_not_writable(path)
    if reason is not None:
        raise SinkError(f"{path}: cannot be written ({reason}). Pick a folder you can write to.")


def _why_not_writable(path: Path) -> str | None:
    """Why `path` cannot be opened for writing, tried once (and removed again if it is new); None when it can."""
    if path.exists() and not path.is_file():
        return None  # a named pipe or device (/dev/stdout): opening it to try would hand its reader an end of file
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        return error.strerror
    if not existed:
        path.unlink()
    return None


class _TextSink:
    """A text file (or '-' for stdout) opened on entry, flushed after every frame.

    Every sink has `check()`, which refuses an output that cannot be written without touching any file the user
    has: a caller checks all its sinks before entering any, so one refused output never empties another's file."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._file: IO[str] | None = None

    def check(self) -> None:
        """Raise SinkError if the file cannot be written; an existing file is left as it is."""
        if self.path != "-":
            _check_folder(Path(self.path))
            _check_writable(Path(self.path))

    def __enter__(self):
        if self.path == "-":
            self._file = sys.stdout
        else:
            target = Path(self.path)
            self.check()
            try:
                self._file = open(target, "w", newline="", encoding="utf-8")
            except OSError as error:
                raise SinkError(f"{target}: cannot be written ({error.strerror}).") from None
        self._started()
        return self

    def _started(self) -> None:
        """Hook for a header."""

    def __exit__(self, *exc_info) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None


class JsonLinesSink(_TextSink):
    """One JSON object per frame, in the design doc's contract."""

    def write(self, result: FrameResult) -> None:
        assert self._file is not None, "use the sink as a context manager"
        self._file.write(json.dumps(result.to_json()) + "\n")
        self._file.flush()


class CsvSink(_TextSink):
    """One row per digit read: where, what, and which number it belongs to; in reading order (number by number, each
    left to right), so a table's rows read across as on the page."""

    def _started(self) -> None:
        self._writer = csv.writer(self._file)
        self._writer.writerow(CSV_COLUMNS)
        self._file.flush()

    def write(self, result: FrameResult) -> None:
        grouped = [index for number in result.numbers for index in number.detections]
        ungrouped = [index for index, detection in enumerate(result.detections) if detection.number < 0]
        for detection in (result.detections[index] for index in grouped + ungrouped):
            number = result.numbers[detection.number] if detection.number >= 0 else None
            self._writer.writerow(
                [
                    result.frame.source,
                    result.frame.index,
                    detection.number,
                    number.text if number else "",
                    detection.digit,
                    f"{detection.confidence:.4f}",
                    *detection.box,
                    "" if detection.track_id is None else detection.track_id,
                ]
            )
        self._file.flush()


class AnnotatedImageSink:
    """Writes annotated stills: to one file for a single image, else into a folder by source name."""

    def __init__(self, path: str | Path, single_image: bool, inputs: Iterable[str | Path] = ()):
        """`inputs`: the images read, never written over (an --output folder may be the folder they are in)."""
        self.path = Path(path)
        self.single_image = single_image
        self.written: list[Path] = []
        self._inputs = {_file_identity(path) for path in inputs}

    def _one_file(self) -> bool:
        return self.single_image and self.path.suffix.lower() in IMAGE_SUFFIXES

    def check(self) -> None:
        """Raise SinkError if the output cannot be written; nothing is created or changed."""
        suffix = self.path.suffix.lower()
        if self._one_file():
            _check_folder(self.path)
            _check_writable(self.path)
            return
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"{self.path} is a file; for several images --output names a folder (it is created).")
        if not self.path.exists() and suffix:
            if suffix in IMAGE_SUFFIXES:
                raise SinkError(f"{self.path} names one image, but the source holds several; name a folder instead.")
            raise SinkError(f"{self.path}: not an image name. Use a .png or .jpg name for one image, or a folder "
                            "name without an extension.")
        # The folder, or the nearest folder above it that is there (where it will be made), must take files.
        folder = self.path
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder.is_dir():
            try:
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as error:
                raise SinkError(f"{self.path}: {folder} cannot be written to ({error.strerror}). Pick a folder you "
                                "can write to.") from None

    def __enter__(self):
        self.check()
        if self._one_file():
            return self
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"{self.path}: the folder cannot be made ({error.strerror}).") from None
        return self

    def write(self, image: np.ndarray, result: FrameResult) -> None:
        if self._one_file():
            target = self.path
        else:
            # Name outputs after the input's own file name, made safe; distinct within one run.
            stem = Path(result.frame.source).stem or "frame"
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
            target = self.path / f"{stem}_read.png"
            counter = 1
            while target in self.written or _file_identity(target) in self._inputs:
                target = self.path / f"{stem}_read_{counter}.png"
                counter += 1
        try:
            written = cv2.imwrite(str(target), image)
        except cv2.error:
            written = False
        if not written:
            raise SinkError(f"{target}: the image could not be written: {_why_not_written(target, image)}.")
        self.written.append(target)

    def __exit__(self, *exc_info) -> None:
        pass


LARGEST_SIDE = {".jpg": 65_535, ".jpeg": 65_535, ".webp": 16_383}
"""The longest side each image format can hold."""


def _why_not_written(target: Path, image: np.ndarray) -> str:
    """The likeliest reason OpenCV could not write `image` to `target`, and what to do."""
    largest = LARGEST_SIDE.get(target.suffix.lower())
    if largest is not None and max(image.shape[:2]) > largest:
        return (f"{target.suffix} holds images up to {largest} px a side and this one is "
                f"{image.shape[1]}x{image.shape[0]}; name a .png instead")
    reason = _why_not_writable(target)
    if reason is not None:
        return f"{reason}; pick a folder you can write to"
    return "is the disk full?"


LIVE_GAP_FILLED = 5.0
"""Seconds between two frames (a stream stalled) that an annotated video holds at most, as repeats of the frame before
it; a file's longer gaps are jumps in its clock, which its source times as one frame (`sources.TIME_JUMP_S`)."""


def _fitted(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit (height, width) `size`, its shape kept, centred on black."""
    height, width = size
    scale = min(height / image.shape[0], width / image.shape[1])
    scaled = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (height - scaled.shape[0]) // 2, (width - scaled.shape[1]) // 2
    return cv2.copyMakeBorder(scaled, top, height - scaled.shape[0] - top, left, width - scaled.shape[1] - left,
                              cv2.BORDER_CONSTANT, value=(0, 0, 0))


class VideoSink:
    """Writes annotated frames to a video of the source's size and frame rate.

    Frames are placed by their times (`Frame.time`): a frame fills the video's frames since the one before it, so
    the video plays at the speed it was filmed. A live source (camera, stream) drops the frames the reader has no
    time for, and may deliver more than the video's rate: a frame whose time the one before it already holds is
    left out. A file's frames are all kept; one that comes later than the rate says (a varying frame rate) is
    held for its time, up to `LIVE_GAP_FILLED`."""

    def __init__(self, path: str | Path, fps: float, live: bool = False):
        self.path = Path(path)
        self.fps = min(max(fps, VIDEO_OUTPUT_FPS[0]), VIDEO_OUTPUT_FPS[1]) if fps and fps > 0 else 30.0
        self.live = live
        self._writer: cv2.VideoWriter | None = None
        self._first_time: float | None = None
        self._size: tuple[int, int] | None = None
        """(height, width) of the video, its first frame's."""
        self.frames = 0

    def check(self) -> None:
        """Raise SinkError if the video cannot be written; an existing file is left as it is."""
        if self.path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise SinkError(f"{self.path}: not a video name; the annotated video of a video or camera is written as "
                            f"{' or '.join(VIDEO_OUTPUT_SUFFIXES)}.")
        _check_folder(self.path)
        _check_writable(self.path)

    def __enter__(self):
        self.check()
        return self

    def write(self, image: np.ndarray, result: FrameResult) -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # the writer takes colour frames only
        # FFmpeg's encoders take even sides only and would crop an odd one's last row or column (boxes may lie
        # there): such a frame gets one more, a copy of its edge.
        if image.shape[0] % 2 or image.shape[1] % 2:
            image = cv2.copyMakeBorder(image, 0, image.shape[0] % 2, 0, image.shape[1] % 2, cv2.BORDER_REPLICATE)
        if self._writer is not None and image.shape[:2] != self._size:
            # A stream that changed its resolution: the writer drops a frame of another size without a word.
            image = _fitted(image, self._size)
        if self._writer is None:
            height, width = self._size = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise SinkError(f"{self.path}: OpenCV cannot write this video. Try the other of "
                                f"{' and '.join(VIDEO_OUTPUT_SUFFIXES)}.")
        if self._first_time is None:
            self._first_time = result.frame.time
        due = round((result.frame.time - self._first_time) * self.fps) + 1  # frames the video should hold by now
        most = round(LIVE_GAP_FILLED * self.fps)
        if due - self.frames > most:  # a stall: what it leaves out is skipped, not owed by the frames after it
            self._first_time += (due - self.frames - most) / self.fps
            due = self.frames + most
        copies = max(0 if self.live else 1, due - self.frames)
        for _ in range(copies):
            self._writer.write(image)
        self.frames += copies

    def __exit__(self, *exc_info) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
