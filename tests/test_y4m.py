"""The .y4m writer that feeds Chromium's fake camera in the browser tests."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitrec.web.y4m import write_y4m


def test_frames_are_written_as_yuv420_planes_after_one_header(tmp_path):
    # Smooth colour gradients, so halving the colour resolution (4:2:0) loses next to nothing.
    y, x = np.mgrid[0:48, 0:64]
    frames = [np.dstack([x * 4, y * 5, (x + y + 40 * k) % 256]).astype(np.uint8) for k in range(3)]
    data = write_y4m(frames, tmp_path / "clip.y4m", fps=12).read_bytes()
    header, body = data.split(b"\n", 1)
    assert header == b"YUV4MPEG2 W64 H48 F12:1 Ip A1:1 C420"
    frame_bytes = 64 * 48 * 3 // 2
    assert len(body) == 3 * (len(b"FRAME\n") + frame_bytes)
    second = body[len(b"FRAME\n") + frame_bytes:][len(b"FRAME\n"):][:frame_bytes]
    planes = np.frombuffer(second, np.uint8).reshape(48 * 3 // 2, 64)
    back = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
    assert np.abs(back.astype(int) - frames[1].astype(int)).mean() < 3


@pytest.mark.parametrize("shapes", [[(48, 63, 3)], [(48, 64, 3), (50, 64, 3)]])
def test_odd_sizes_and_mixed_sizes_are_refused(tmp_path, shapes):
    with pytest.raises(ValueError):
        write_y4m([np.zeros(shape, np.uint8) for shape in shapes], tmp_path / "clip.y4m")
