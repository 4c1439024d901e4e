"""The capture loop: frames from a source through the reader into sinks, with no window of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from digitrec.annotate import draw_result
from digitrec.reader import DigitReader, SegmentedFrame
from digitrec.sources import FrameSource
from digitrec.track import DigitTracker, tracks_source
from digitrec.types import Frame, FrameResult

FPS_SMOOTHING = 0.1
"""Weight of the newest frame in the moving average of frames per second."""

STOP_WAIT_SECONDS = 1.0
"""How long a stopped loop waits for the frame being fetched ahead before letting it go."""


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


def read_frames(
    source: FrameSource,
    reader: DigitReader,
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
    frames = iter(source)

    def next_segmented() -> tuple[Frame, SegmentedFrame] | None:
        frame = next(frames, None)
        return None if frame is None else (frame, reader.segment(frame))

    # The next frame is fetched and segmented on a worker thread while this one is classified,
    # tracked and written: OpenCV releases the GIL, so the two stages share the CPU's cores. A
    # source's error surfaces one frame later, after everything before it has been written.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digitrec-segment")
    upcoming = None
    try:
        upcoming = worker.submit(next_segmented)
        while upcoming is not None:
            fetched = upcoming.result()
            if fetched is None:
                break
            frame, segmented = fetched
            wanted_more = max_frames is None or summary.frames + 1 < max_frames
            upcoming = worker.submit(next_segmented) if wanted_more else None
            result = reader.read(frame, segmented)
            if tracker is not None:
                result = tracker.update(result)
            for sink in result_sinks:
                sink.write(result)
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-6)
            fps = instant if summary.frames == 0 else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING * instant
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
            summary.frames += 1
            summary.digits += len(result.detections)
            summary.seconds = time.perf_counter() - started
            yield ReadFrame(result=result, annotated=annotated, fps=fps, latency=latency)
    finally:
        # Let a fetch in flight finish before the caller closes the source, but never wait long
        # for a stream that is still trying to reconnect.
        worker.shutdown(wait=False, cancel_futures=True)
        if upcoming is not None:
            wait([upcoming], timeout=STOP_WAIT_SECONDS)
    summary.problems.extend(source.problems)
