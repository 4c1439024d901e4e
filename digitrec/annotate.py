"""Draw what was read onto a frame: boxes, digits, number texts, FPS."""

from __future__ import annotations

import cv2
import numpy as np

from digitrec.types import FrameResult

BOX_COLOUR = (0, 200, 0)
NUMBER_COLOUR = (0, 140, 255)
CONFIDENCE_COLOUR = (90, 90, 90)
TEXT_COLOUR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour: tuple[int, int, int],
           under: bool = False) -> int:
    """Text on a filled background so it reads on any page: its bottom-left at `origin`, or with `under` its
    top-left there. Returns the background's bottom row."""
    thickness = max(1, int(round(scale * 2)))
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = origin
    y = max(y + (height + baseline + 1 if under else 0), height + baseline)
    cv2.rectangle(image, (x, y - height - baseline), (x + width, y + baseline // 2), colour, cv2.FILLED)
    cv2.putText(image, text, (x, y - baseline // 2), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
    return y + baseline // 2


def draw_result(image: np.ndarray, result: FrameResult, show_confidence: bool = False) -> np.ndarray:
    """An annotated copy of `image` (in colour, a grey one too): each digit boxed and labelled, each number's
    text above it."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    height = canvas.shape[0]
    scale = max(0.4, height / 1200.0)
    for number in result.numbers:
        x, y, w, h = number.box
        pad = max(2, h // 10)
        cv2.rectangle(canvas, (x - pad, y - pad), (x + w + pad, y + h + pad), NUMBER_COLOUR, 1, cv2.LINE_AA)
        _label(canvas, number.text, (x - pad, y - pad - 2), scale * 1.2, NUMBER_COLOUR)
    for detection in result.detections:
        x, y, w, h = detection.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), BOX_COLOUR, max(1, int(scale * 2)), cv2.LINE_AA)
        bottom = _label(canvas, str(detection.digit), (x, y + h + int(24 * scale)), scale * 0.8, BOX_COLOUR)
        if show_confidence:  # on a line of its own: beside the digit, '5 1.00' read as '51.00'
            _label(canvas, f"{detection.confidence:.2f}", (x, bottom), max(0.3, scale * 0.6), CONFIDENCE_COLOUR,
                   under=True)
    return canvas


def draw_status(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a status line (FPS, pause, mode) in its top-left corner, drawn in place."""
    scale = max(0.4, image.shape[0] / 1200.0)
    _label(image, text, (8, int(32 * scale) + 8), scale, (60, 60, 60))
    return image


def mask_view(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The thresholded ink as a BGR image of the frame's size, for the window's 'd' view."""
    view = cv2.resize(mask * 255, size, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(view, cv2.COLOR_GRAY2BGR)


SELECTION_COLOUR = (255, 0, 255)


def draw_selection(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The image with a thick magenta frame round the box chosen in labelling mode, drawn in place."""
    x, y, w, h = box
    pad = max(3, h // 8)
    thickness = max(2, int(round(image.shape[0] / 240)))
    cv2.rectangle(image, (x - pad, y - pad), (x + w + pad, y + h + pad), SELECTION_COLOUR, thickness, cv2.LINE_AA)
    return image
