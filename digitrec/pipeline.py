"""The capture loop: frames from a source through the reader into sinks, with no window of its own."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from digitrec.annotate import draw_result
from digitrec.reader import DigitReader
from digitrec.sources import FrameSource, ImageSource
from digitrec.track import DigitTracker
from digitrec.types import FrameResult

if TYPE_CHECKING:  # the parallel reader is used by callers that ask for it, not imported by every run
    from digitrec.parallel import ParallelReader

FPS_SMOOTHING = 0.1
"""Weight of the newest frame in the moving average of frames per second."""


@dataclass
class RunSummary:
    frames: int = 0
    digits: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class ReadFrame:
    """One frame's result, its annotated image (when asked for), and the loop's recent speed."""

    result: FrameResult
    annotated: np.ndarray | None
    fps: float
    latency: float | None = None
    """Seconds from capture to this result being drawn, for cameras and streams (None for files)."""


def tracks_source(source: FrameSource) -> bool:
    """Whether a source's frames are a sequence to track: videos, cameras and streams, not still images."""
    return not isinstance(source, ImageSource)


def read_frames(
    source: FrameSource,
    reader: DigitReader | ParallelReader,
    result_sinks: list,
    image_sinks: list,
    annotate: bool,
    max_frames: int | None = None,
    show_confidence: Callable[[], bool] = lambda: False,
    summary: RunSummary | None = None,
) -> Iterator[ReadFrame]:
    """Read every frame of `source`, write each result to the sinks at once, and yield it.

    Args:
        result_sinks: objects with `write(result)` (JSON Lines, CSV).
        image_sinks: objects with `write(annotated_image, result)` (images, video).
        annotate: draw the annotated image even when no image sink needs it (for a window).
        max_frames: stop after this many frames.
        summary: filled in as frames are read, so a caller interrupted mid-way still knows the counts.
    """
    summary = summary if summary is not None else RunSummary()
    fps = 0.0
    started = last = time.perf_counter()
    tracker = DigitTracker() if tracks_source(source) else None
    frames = iter(source) if max_frames is None else itertools.islice(source, max_frames)
    # A file's next frame is waiting, so classifying one frame may overlap preparing the next; a
    # camera's frame is read the moment it comes.
    for result in reader.read_stream(frames, overlap=not source.live):
        frame = result.frame
        if tracker is not None:
            result = tracker.update(result)
        for sink in result_sinks:
            sink.write(result)
        # Counted once its results are written, so that a run stopped while its annotated image is encoded
        # reports every frame its JSON and CSV hold.
        summary.frames += 1
        summary.digits += len(result.detections)
        now = time.perf_counter()
        instant = 1.0 / max(now - last, 1e-6)
        fps = instant if summary.frames == 1 else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING * instant
        last = now
        annotated = None
        if annotate or image_sinks:
            drawing = time.perf_counter()
            annotated = draw_result(frame.image, result, show_confidence=show_confidence())
            result.timings["annotate"] = (time.perf_counter() - drawing) * 1000.0
            encoding = time.perf_counter()
            for sink in image_sinks:
                sink.write(annotated, result)
            if image_sinks:
                result.timings["encode"] = (time.perf_counter() - encoding) * 1000.0
        # Frame.time is the monotonic capture time only for live sources.
        latency = time.monotonic() - frame.time if source.live else None
        summary.seconds = time.perf_counter() - started
        yield ReadFrame(result=result, annotated=annotated, fps=fps, latency=latency)
        if max_frames is not None and summary.frames >= max_frames:
            break
    summary.problems.extend(source.problems)
