"""Measure the camera mode's round trip per frame: JPEG over the WebSocket, read, JSON back.

    python -m digitrec.web.bench                # a Python client sends 640x480 JPEG frames, one at a time
    python -m digitrec.web.bench --browser      # also the real page in headless Chromium on a fake camera

The server runs in this process on a free port, as `live_digits.py --serve` runs it. Each frame is sent
only when the answer to the one before has arrived, as the page does, so the round trip is the time a
frame takes from leaving the client to its boxes being known there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from digitrec.cli_help import DefaultsHelpFormatter

GOAL_MS = 50.0
"""The round trip per 640x480 frame this mode aims at on a laptop CPU."""

JPEG_QUALITY = 85
"""As the page sends (CAMERA_JPEG_QUALITY in static/app.js)."""

WARM_UP_FRAMES = 5
"""Frames sent before timing: the classifier builds its interpreters for new batch sizes on first use."""

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _summary(name: str, round_trips: Sequence[float], server_ms: Sequence[float], cpu_ms: float) -> dict:
    """The figures of one client; `cpu_ms` is this process's CPU time per frame (the server's work, and
    for the Python client its own small share), which waiting for a busy CPU does not inflate."""
    ordered = sorted(round_trips)
    return {
        "client": name,
        "frames": len(ordered),
        "round_trip_median_ms": round(statistics.median(ordered), 1),
        "round_trip_mean_ms": round(statistics.fmean(ordered), 1),
        "round_trip_p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "server_median_ms": round(statistics.median(server_ms), 1),
        "cpu_ms_per_frame": round(cpu_ms, 1),
        "frames_per_s": round(1000.0 / statistics.fmean(ordered), 1),
    }


def measure_python_client(url: str, jpegs: Sequence[bytes]) -> dict:
    """Round trips of `jpegs` sent one at a time by a WebSocket client in this process."""
    from websockets.sync.client import connect

    round_trips, server_ms = [], []
    cpu_started = 0.0
    with connect(url, proxy=None, compression=None, max_size=None) as socket:
        for index, jpeg in enumerate([*jpegs[:WARM_UP_FRAMES], *jpegs]):
            if index == WARM_UP_FRAMES:
                cpu_started = time.process_time()
            started = time.perf_counter()
            socket.send(jpeg)
            answer = json.loads(socket.recv())
            elapsed = (time.perf_counter() - started) * 1000.0
            if "error" in answer:
                raise RuntimeError(f"the server refused a frame: {answer['error']}")
            if index >= WARM_UP_FRAMES:
                round_trips.append(elapsed)
                server_ms.append(answer["server_ms"])
    cpu_ms = (time.process_time() - cpu_started) * 1000.0 / len(jpegs)
    return _summary("python websocket", round_trips, server_ms, cpu_ms)


def measure_browser(page_url: str, frames: Sequence[np.ndarray], count: int, chromium: str) -> dict:
    """Round trips as the page itself measures them, in headless Chromium whose camera plays `frames`."""
    from playwright.sync_api import sync_playwright

    from digitrec.web.y4m import write_y4m

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        fake_camera = write_y4m(frames, Path(folder) / "camera.y4m", fps=30)
        flags = CHROMIUM_FLAGS + [
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_camera}",
        ]  # fmt: skip
        context = playwright.chromium.launch_persistent_context(
            Path(folder) / "profile", executable_path=chromium, headless=True, args=flags
        )
        try:
            page = context.new_page()
            page.goto(page_url + "#camera")
            page.click("#camera-start")
            total = count + WARM_UP_FRAMES
            page.wait_for_function(f"camera.answers >= {WARM_UP_FRAMES}", timeout=max(60_000, total * 2_000))
            cpu_started, answered = time.process_time(), page.evaluate("camera.answers")
            page.wait_for_function(f"camera.answers >= {total}", timeout=max(60_000, total * 2_000))
            cpu_ms = (time.process_time() - cpu_started) * 1000.0 / (page.evaluate("camera.answers") - answered)
            page.click("#camera-stop")
            timings = page.evaluate("camera.timings")
        finally:
            context.close()
    timed = timings[WARM_UP_FRAMES:total]
    return _summary("chromium page", [t["round_trip_ms"] for t in timed], [t["server_ms"] for t in timed], cpu_ms)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digitrec.web.bench",
        formatter_class=DefaultsHelpFormatter,
        description="Measure the web camera mode's round trip per frame (JPEG over the WebSocket, "
        f"read, JSON back) on synthetic hand-held video; the goal is {GOAL_MS:.0f} ms or less at 640x480.",
    )
    parser.add_argument("--model", default=None, help="a .keras or .tflite digit model (default: models/digits.keras)")
    parser.add_argument("--frames", type=int, default=100, help="frames to time (after a few warm-up frames)")
    parser.add_argument("--width", type=int, default=640, help="frame width in pixels (even)")
    parser.add_argument("--height", type=int, default=480, help="frame height in pixels (even)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the synthetic video")
    parser.add_argument("--condition", default="mixed", help="page condition of the video (see digitrec.synth)")
    parser.add_argument("--browser", action="store_true",
                        help="also time the real page in headless Chromium (needs Debian's chromium and playwright)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium to drive with --browser")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start the server, time the clients, print one line each; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.frames < 1 or args.width < 64 or args.height < 64 or args.width % 2 or args.height % 2:
        print("error: --frames must be 1 or more, --width and --height even and 64 or more", file=sys.stderr)
        return 2
    if args.browser and not Path(args.chromium).is_file():
        print(f"error: no Chromium at {args.chromium}; apt-get install -y chromium, or pass --chromium PATH",
              file=sys.stderr)
        return 2
    from digitrec.classify import ModelFileError
    from digitrec.reader import DEFAULT_MODEL, DigitReader
    from digitrec.synth import CONDITIONS, StrokeGlyphs, make_video
    from digitrec.web.app import create_app
    from digitrec.web.server import ServerError, WebServer

    if args.condition not in CONDITIONS:
        print(f"error: --condition must be one of {', '.join(CONDITIONS)}", file=sys.stderr)
        return 2
    try:
        reader = DigitReader(args.model or DEFAULT_MODEL)
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Generated frames are costly (~80 ms each); a 30-frame clip is played forwards then backwards.
    clip = make_video(args.seed, StrokeGlyphs(), frames=30, size=(args.width, args.height), condition=args.condition)
    loop = clip.frames + clip.frames[-2:0:-1]
    frames = [loop[index % len(loop)] for index in range(args.frames + WARM_UP_FRAMES)]
    jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes() for frame in frames]

    results = []
    try:
        with WebServer(create_app(reader), "127.0.0.1", 0) as server:
            socket_url = server.url.replace("http://", "ws://") + "ws/camera"
            results.append(measure_python_client(socket_url, jpegs[WARM_UP_FRAMES:]))
            if args.browser:
                results.append(measure_browser(server.url, loop, args.frames, args.chromium))
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"camera mode round trip, {args.width}x{args.height} JPEG q{JPEG_QUALITY}, synthetic '{args.condition}' "
          f"video, {WARM_UP_FRAMES} warm-up frames not counted; goal <= {GOAL_MS:.0f} ms")
    print(f"{'client':<18}{'frames':>7}{'median':>9}{'mean':>8}{'p90':>8}{'server':>9}{'cpu':>7}{'fps':>7}  goal")
    for result in results:
        met = "met" if result["round_trip_median_ms"] <= GOAL_MS else "NOT met"
        print(f"{result['client']:<18}{result['frames']:>7}{result['round_trip_median_ms']:>9.1f}"
              f"{result['round_trip_mean_ms']:>8.1f}{result['round_trip_p90_ms']:>8.1f}"
              f"{result['server_median_ms']:>9.1f}{result['cpu_ms_per_frame']:>7.1f}{result['frames_per_s']:>7.1f}  {met}")
    print("ms per frame: median, mean and p90 of the round trip; server = the server's median wall time for "
          "decode + read + JSON;\ncpu = this process's CPU time per frame (the work, whatever else the CPU is "
          "doing); fps = 1000 / mean round trip")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
