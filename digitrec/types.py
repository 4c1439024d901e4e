"""The plain data that flows through the reader: frames in, regions, detections and numbers out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitrec.images import frame_image

Box = tuple[int, int, int, int]
"""(x, y, w, h) in pixels of the original frame, top-left origin."""


@dataclass
class Frame:
    """One image from a source."""

    index: int
    """0 for a still image, else the 0-based index of the decoded video frame."""
    image: np.ndarray
    """(h, w, 3) uint8 BGR, or (h, w) uint8 grey. Other arrays given are converted to one of these, or
    refused with a ValueError naming the fix (`images.frame_image`)."""
    source: str
    time: float
    """Seconds: the video position for files, time.monotonic() at capture for cameras and streams."""
    still: bool = False
    """A photo read once (an image file, an upload), not a frame of a video or a camera: the reader
    may spend more time on it (it also tries cutting narrower blobs into touching digits)."""

    def __post_init__(self) -> None:
        self.image = frame_image(self.image)


@dataclass
class Region:
    """A candidate digit found by the segmenter."""

    box: Box
    mask: np.ndarray
    """(h, w) uint8 ink mask of the box, 1 = ink, holding only this region's strokes."""


@dataclass
class Detection:
    """A digit read in a frame."""

    box: Box
    digit: int
    confidence: float
    number: int = -1
    """Index into the frame's numbers, -1 until grouped."""
    track_id: int | None = None
    probabilities: np.ndarray | None = field(default=None, repr=False)
    """The classifier's (10,) digit probabilities for this crop (not-a-digit column dropped), for
    voting across frames and showing runners-up; not part of the JSON contract."""
    image: np.ndarray | None = field(default=None, repr=False)
    """The (28, 28) normalised crop the classifier read, for saving labelled crops; not in the JSON."""


@dataclass
class NumberReading:
    """Digits on one line close enough together to form one number, in reading order."""

    text: str
    box: Box
    confidence: float
    detections: list[int] = field(default_factory=list)
    """Indices into the frame's detections, left to right."""
    line: int = 0


@dataclass
class FrameResult:
    """Everything the reader found in one frame."""

    frame: Frame
    detections: list[Detection]
    numbers: list[NumberReading]
    rejected: int = 0
    """Regions the classifier judged not to be digits, or below the confidence floor, or far shorter than their line
    (`reader.SHORT_FOR_LINE`)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds spent in each stage of the flow for this frame."""

    def to_json(self) -> dict:
        """The JSON Lines contract of the design doc."""
        height, width = self.frame.image.shape[:2]
        return {
            "source": self.frame.source,
            "frame": self.frame.index,
            "width": int(width),
            "height": int(height),
            "detections": [
                {
                    "box": [int(v) for v in d.box],
                    "digit": int(d.digit),
                    "confidence": round(float(d.confidence), 4),
                    "number": int(d.number),
                    **({"track": int(d.track_id)} if d.track_id is not None else {}),
                }
                for d in self.detections
            ],
            "numbers": [
                {"text": n.text, "box": [int(v) for v in n.box], "confidence": round(float(n.confidence), 4)}
                for n in self.numbers
            ],
        }
