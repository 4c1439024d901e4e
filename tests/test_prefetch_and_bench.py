"""The prefetching video source, working-resolution segmentation, and the benchmark's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from digitrec.segment import SegmentationConfig, segment_digits
from digitrec.sources import VideoFileSource
from tests.conftest import ROOT


def _write_numbered_video(path, frames: int, size=(96, 64)) -> None:
    """Frames that differ from each other: a bar whose position is the frame's index."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for index in range(frames):
        image = np.full((size[1], size[0], 3), 255, np.uint8)
        image[:, 2 * index : 2 * index + 4] = 0
        writer.write(image)
    writer.release()


def _decode_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("decode ")]


@pytest.mark.parametrize("prefetch", [1, 4])
def test_the_prefetching_video_source_yields_every_frame_in_order(tmp_path, prefetch):
    path = tmp_path / "clip.avi"
    _write_numbered_video(path, 30)
    capture = cv2.VideoCapture(str(path))
    expected = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        expected.append(image)
    capture.release()
    with VideoFileSource(path, prefetch=prefetch) as source:
        frames = list(source)
        assert list(source) == []  # a second pass after the end yields nothing and does not hang
    assert [frame.index for frame in frames] == list(range(30))
    assert all(np.array_equal(frame.image, image) for frame, image in zip(frames, expected, strict=True))
    assert source.problems == []


def test_leaving_a_prefetching_video_early_stops_its_decoding_thread(tmp_path):
    path = tmp_path / "clip.avi"
    _write_numbered_video(path, 40)
    with VideoFileSource(path, prefetch=2) as source:
        for frame in source:
            if frame.index == 3:
                break
        assert len(_decode_threads()) == 1  # decoding ahead, blocked on the full queue
    assert _decode_threads() == []


def _page_of_small_digits(size=(1280, 720), digit_height=30) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A lit page with rows of printed digits about 23 px tall (near the smallest read at 720p), and their ink boxes."""
    width, height = size
    page = np.full((height, width, 3), 235, np.uint8)
    page = (page * np.linspace(0.8, 1.0, width)[None, :, None]).astype(np.uint8)  # uneven light
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, digit_height, 2)
    boxes = []
    for row, top in enumerate(range(120, height - 120, 90)):
        for column, left in enumerate(range(100, width - 100, 70)):
            ink = np.zeros((height, width), np.uint8)
            cv2.putText(ink, str((row + column) % 10), (left, top + digit_height), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, 255, 2, cv2.LINE_AA)
            boxes.append(cv2.boundingRect(cv2.findNonZero((ink > 127).astype(np.uint8))))
            page[ink > 127] = (40, 30, 30)
    return page, boxes


def _overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / float(aw * ah + bw * bh - inter)


def test_working_resolution_segmentation_finds_small_digits_with_full_resolution_masks():
    page, truth = _page_of_small_digits()
    regions, mask = segment_digits(page, SegmentationConfig(working_width=640))
    assert mask.shape == (360, 640)  # segmented at half size...
    for box in truth:
        best = max(regions, key=lambda region: _overlap(region.box, box))
        assert _overlap(best.box, box) > 0.7, f"digit at {box} found as {best.box}"
        # ...but each digit's mask is cut from the full frame: one mask pixel per frame pixel.
        assert best.mask.shape == (best.box[3], best.box[2])
    assert len(regions) == len(truth)


def test_working_resolution_masks_match_full_resolution_segmentation():
    page, _ = _page_of_small_digits()
    reduced, _ = segment_digits(page, SegmentationConfig(working_width=640))
    full, _ = segment_digits(page, SegmentationConfig(working_width=1280))
    assert len(reduced) == len(full)
    for small, large in zip(reduced, full):
        assert max(abs(a - b) for a, b in zip(small.box, large.box)) <= 2
        height = min(small.mask.shape[0], large.mask.shape[0])
        width = min(small.mask.shape[1], large.mask.shape[1])
        agreement = np.mean(small.mask[:height, :width] == large.mask[:height, :width])
        assert agreement > 0.9


class _CountingReader:
    """Stands in for the naive reader: notes which frames it was given."""

    def __init__(self):
        self.indices: list[int] = []
        self.classifier = type("Calls", (), {"calls": 0})()

    def read(self, frame):
        self.indices.append(frame.index)
        self.classifier.calls += 2


def test_the_naive_path_reads_frames_spread_over_the_whole_video(tmp_path):
    from digitrec.bench import time_naive

    path = tmp_path / "ramp.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for index in range(31):
        writer.write(np.full((48, 64, 3), 8 * index, np.uint8))
    writer.release()
    reader = _CountingReader()
    timed = time_naive(path, reader, 4)
    # Not the first four frames: the crops a frame offers change as the page moves through the video.
    assert reader.indices == [0, 10, 20, 30] == timed["frame_indices"]
    assert timed["frames"] == 4 and timed["predict_calls_per_frame"] == 2.0 and timed["ms_per_frame"] > 0


def test_the_quick_benchmark_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "digitrec.bench", "--quick", "--workers", "2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"machine", "settings", "videos", "classify", "latency", "memory"} <= results.keys()
    assert {(v["size"][0], v["size"][1], v["digits"]) for v in results["videos"]} == {
        (w, h, d) for w, h in ((640, 480), (1280, 720)) for d in (4, 16, 40)}
    for video in results["videos"]:
        assert {"decode_ms_per_frame", "reader_ms_per_frame", "reader_fps", "reader_over_decode",
                "naive_ms_per_frame", "speedup_over_naive", "digits_read_per_frame"} <= video.keys()
        assert {"decode", "segment", "normalise", "classify", "group", "annotate", "encode"} <= video["stages_ms"].keys()
        assert video["reader_ms_per_frame"] > 0 and video["decode_ms_per_frame"] > 0
        # Both readers read the same frames alike: the parallel one is the same reader on more processes.
        assert video["parallel"]["workers"] == 2 and video["parallel"]["reader_ms_per_frame"] > 0
        assert video["parallel"]["digits_read_per_frame"] == video["digits_read_per_frame"]
    assert results["classify"]["crops"] == 40
    assert results["classify"]["runtime"] == results["settings"]["runtime"]
    assert set(results["classify_by_runtime"]) == {"litert", "openvino"}
    assert all(timed["median_ms"] > 0 for timed in results["classify_by_runtime"].values())
    # Each runtime is timed on the file it reads in a reader of the shipped .keras model.
    assert results["classify_by_runtime"]["litert"]["file"] == "digits.tflite"
    assert results["classify_by_runtime"]["openvino"]["file"] == "digits.int8.tflite"
    # One process and the parallel reader, each on the stream code path.
    assert [latency["workers"] for latency in results["latency"]] == [1, 2, 1, 2]
    for latency in results["latency"]:
        assert {"mean_ms", "p95_ms", "frames_shown", "frames_played"} <= latency.keys()
        assert latency["frames_shown"] >= 1
    assert set(results["memory"]["peak_rss_mb"]) == {"10", "30"}
    assert "video" in done.stdout and "speedup" in done.stdout and "2proc" in done.stdout  # the printed table

