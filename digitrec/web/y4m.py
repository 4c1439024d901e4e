"""Write frames as an uncompressed .y4m video: what Chromium's fake camera plays (--use-file-for-fake-video-capture)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np


def write_y4m(frames: Sequence[np.ndarray], path: str | Path, fps: int = 15) -> Path:
    """BGR frames of one size as YUV 4:2:0 ('C420') .y4m; Chromium loops it as a camera at `fps`."""
    if not frames:
        raise ValueError("write_y4m needs at least one frame")
    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 video needs an even width and height, not {width}x{height}")
    path = Path(path)
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode("ascii"))
        for frame in frames:
            if frame.shape[:2] != (height, width):
                raise ValueError(f"every frame must be {width}x{height}, not {frame.shape[1]}x{frame.shape[0]}")
            file.write(b"FRAME\n")
            file.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path
