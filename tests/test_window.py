"""The real OpenCV window, under a virtual X display, with a synthetic video standing in for the camera.

Needs the Debian packages xvfb and xdotool, and the pip package mss (screen capture); skipped without them.
Screenshots go to the test's tmp_path, and also to $DIGITREC_WINDOW_SHOTS when that is set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("DIGITREC_WINDOW_MODEL") or ROOT / "models" / "digits.keras")
BOX_BGR = np.array((0, 200, 0))  # digitrec.annotate.BOX_COLOUR
CONFIDENCE_BGR = np.array((90, 90, 90))  # digitrec.annotate.CONFIDENCE_COLOUR
SIZE = (640, 480)

pytestmark = [
    pytest.mark.skipif(
        not (shutil.which("Xvfb") and shutil.which("xdotool")),
        reason="needs Xvfb and xdotool (apt-get install -y xvfb xdotool)",
    ),
    pytest.mark.skipif(importlib.util.find_spec("mss") is None, reason="needs mss for screenshots (pip install mss)"),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"no trained model at {MODEL}: run train.py first"),
]


@pytest.fixture
def display(tmp_path):
    """A fresh Xvfb server on a display number it picks itself (-displayfd); yields ':N'."""
    read_end, write_end = os.pipe()
    log = open(tmp_path / "xvfb.log", "wb")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=log, stderr=log,
    )  # fmt: skip
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 15)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:
            pytest.fail(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text(errors='replace')[-1000:]}")
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def video(tmp_path) -> Path:
    """About 600 frames of a hand-held page: 30 generated frames written 20 times (generating costs ~80 ms a frame)."""
    from digitrec.synth import StrokeGlyphs, SyntheticVideo, make_video, write_video

    clip = make_video(7, StrokeGlyphs(), frames=30, size=SIZE)
    return write_video(SyntheticVideo(clip.frames * 20, clip.truth * 20, clip.condition), tmp_path / "clip.mp4")


class Window:
    """The live_digits.py window on `display`: find it, grab it, send it keys."""

    def __init__(self, display: str, process: subprocess.Popen, log: Path, shots: Path):
        import mss

        self.display, self.process, self.log, self.shots = display, process, log, shots
        self.env = {**os.environ, "DISPLAY": display}
        self.screen = mss.MSS(display=display)
        self.id = ""
        self.count = 0

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if not line.startswith(("QFontDatabase", "Note that Qt")))[-2000:]

    def wait_for_window(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"live_digits.py exited with {self.process.returncode}:\n{self.tail()}"
            found = self.xdotool("search", "--onlyvisible", "--name", "^digitrec$").split()
            if found:
                self.id = found[0]
                time.sleep(0.5)  # let the first frames paint
                return
            time.sleep(0.25)
        pytest.fail(f"no 'digitrec' window within {timeout:.0f} s:\n{self.tail()}")

    def grab(self, name: str) -> np.ndarray:
        """The window's pixels as BGR, saved as <shots>/<n>_<name>.png."""
        geometry = dict(line.split("=") for line in self.xdotool("getwindowgeometry", "--shell", self.id).split())
        assert geometry, f"the window is gone:\n{self.tail()}"
        box = {"left": int(geometry["X"]), "top": int(geometry["Y"]),
               "width": int(geometry["WIDTH"]), "height": int(geometry["HEIGHT"])}  # fmt: skip
        image = np.ascontiguousarray(np.array(self.screen.grab(box))[:, :, :3])
        self.count += 1
        cv2.imwrite(str(self.shots / f"{self.count:02d}_{name}.png"), image)
        return image

    def close(self) -> None:
        """What a window manager's close button does: send the window WM_DELETE_WINDOW (Xvfb has no manager)."""
        import ctypes

        x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
        x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

        class ClientMessage(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                        ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

        class Event(ctypes.Union):
            _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

        connection = x11.XOpenDisplay(self.display.encode())
        event = Event()
        event.xclient.type, event.xclient.window, event.xclient.format = 33, int(self.id), 32  # 33: ClientMessage
        event.xclient.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
        event.xclient.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(connection, int(self.id), 0, 0, ctypes.byref(event))
        x11.XFlush(connection)
        x11.XCloseDisplay(connection)

    def key(self, key: str) -> None:
        assert self.process.poll() is None, f"live_digits.py exited with {self.process.returncode}:\n{self.tail()}"
        self.xdotool("windowfocus", "--sync", self.id)
        self.xdotool("key", key)

    def wait_until(self, name: str, test: Callable[[np.ndarray], bool], timeout: float = 15.0) -> np.ndarray:
        """Grab the window until `test` holds on its frame area; fails with the last grab's file name."""
        deadline = time.monotonic() + timeout
        while True:
            image = frame_area(self.grab(name))
            if test(image):
                return image
            if time.monotonic() > deadline:
                pytest.fail(f"{name}: not seen within {timeout:.0f} s (last grab {self.shots}/{self.count:02d}_{name}.png)"
                            f"\n{self.tail()}")  # fmt: skip
            time.sleep(0.3)

    def wait_for_snapshots(self, folder: Path, count: int, timeout: float = 10.0) -> list[Path]:
        """The snapshot_*.png files in `folder` once `count` are there and the program has said it saved them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            said = self.log.read_text(errors="replace").count("saved ")
            snapshots = sorted(folder.glob("snapshot_*.png"), key=lambda path: path.stat().st_mtime)
            if said >= count and len(snapshots) >= count:
                assert len(snapshots) == count, snapshots
                return snapshots
            time.sleep(0.2)
        pytest.fail(f"{count} snapshot_*.png not saved in {folder} within {timeout:.0f} s:\n{self.tail()}")


def frame_rows(window: np.ndarray) -> tuple[int, int]:
    """First and past-last row of the shown frame: the longest run of rows between rows of plain
    toolbar/status-bar colour (Qt's chrome)."""
    colours, counts = np.unique(window[0], axis=0, return_counts=True)
    chrome = colours[counts.argmax()]
    if chrome.min() == chrome.max() and chrome[0] in (0, 255):  # no chrome: the first row is the frame itself
        return 0, len(window)
    plain = np.r_[True, np.mean(np.all(window == chrome, axis=2), axis=1) > 0.95, True]
    edges = np.flatnonzero(np.diff(plain.astype(np.int8)))  # alternating starts and ends of runs of frame rows
    if edges.size < 2:
        return 0, len(window)
    starts, ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


def frame_area(window: np.ndarray) -> np.ndarray:
    """The shown frame, without Qt's toolbar and status bar."""
    top, bottom = frame_rows(window)
    return window[top:bottom]


def box_pixels(image: np.ndarray) -> int:
    """How many pixels are near the green of the digit boxes and their labels."""
    return int(np.sum(np.all(np.abs(image.astype(int) - BOX_BGR) <= (60, 45, 60), axis=2)))


def label_pixels(image: np.ndarray) -> int:
    """How many pixels lie inside the filled green digit labels (box outlines are too thin to survive erosion)."""
    green = np.all(np.abs(image.astype(int) - BOX_BGR) <= (60, 45, 60), axis=2).astype(np.uint8)
    return int(cv2.erode(green, np.ones((3, 3), np.uint8)).sum())


def confidence_pixels(image: np.ndarray) -> int:
    """How many pixels lie inside the filled grey confidence labels (digitrec.annotate.CONFIDENCE_COLOUR)."""
    grey = np.all(image == CONFIDENCE_BGR, axis=2).astype(np.uint8)
    return int(cv2.erode(grey, np.ones((3, 3), np.uint8)).sum())


def binary_fraction(image: np.ndarray) -> float:
    """Fraction of pixels that are pure black or pure white."""
    grey = image[:, :, 0]
    return float(np.mean(np.all(image == grey[:, :, None], axis=2) & ((grey == 0) | (grey == 255))))


def live_view(image: np.ndarray) -> bool:
    return float(image.mean()) > 50 and float(image.std()) > 15 and binary_fraction(image) < 0.3


def shots_folder(tmp_path: Path) -> Path:
    """Where the screenshots go: $DIGITREC_WINDOW_SHOTS, else the test's tmp_path."""
    shots = Path(os.environ.get("DIGITREC_WINDOW_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def start_reader(display: str, tmp_path: Path, log: Path, *args: str) -> subprocess.Popen:
    """live_digits.py in a window on `display`, with the test's model, its output in `log`."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("WAYLAND_DISPLAY", None)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "live_digits.py"), "--model", str(MODEL), *args],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(window: Window | None, process: subprocess.Popen) -> None:
    """Release the screen grabber and end live_digits.py if a test left it running."""
    if window is not None:
        window.screen.close()
    if process.poll() is None:
        process.kill()
        process.wait()


def test_the_window_shows_the_annotated_video_and_obeys_its_keys(display, video, tmp_path):
    shots, log = shots_folder(tmp_path), tmp_path / "live_digits.log"
    process = start_reader(display, tmp_path, log, "--source", str(video))
    window = None
    try:
        window = Window(display, process, log, shots)
        window.wait_for_window()
        window.xdotool("mousemove", "1270", "790")  # keep the pointer (and Qt's pixel read-out) off the window

        # The video, annotated: a real picture with green digit boxes, the size of the video's frames.
        first = window.wait_until("live", lambda image: live_view(image) and box_pixels(image) > 300)
        assert abs(first.shape[1] - SIZE[0]) <= 4 and abs(first.shape[0] - SIZE[1]) <= 4, first.shape
        window.wait_until("moving", lambda image: live_view(image) and not np.array_equal(image, first))

        # d: the threshold mask, black with white ink; d again: back to the video.
        window.key("d")
        mask = window.wait_until("mask", lambda image: binary_fraction(image) > 0.9)
        assert np.mean(mask == 0) > 0.5 and np.mean(mask == 255) > 0.002
        window.key("d")
        window.wait_until("unmasked", live_view)

        # c: each digit's confidence in a grey label under its green one; c again: gone.
        # (Keys are sent one at a time, each once its effect shows: OpenCV's Qt backend keeps only the last of the
        # keys that arrive between two waitKey calls.)
        before = window.wait_until("plain_labels", live_view)
        plain, grey = label_pixels(before), confidence_pixels(before)
        assert plain > 20
        window.key("c")
        window.wait_until("confidence", lambda image: live_view(image) and confidence_pixels(image) > grey + plain // 2)
        window.key("c")
        window.wait_until("no_confidence", lambda image: live_view(image)
                          and confidence_pixels(image) < grey + plain // 2)  # fmt: skip

        # space: paused, the picture holds still.
        # (The key lands once the frame being read is done: allow a few tries on a busy machine.)
        window.key("space")
        held = window.grab("pausing")
        for _ in range(8):
            time.sleep(1.0)
            previous, held = held, window.grab("pausing")
            if np.array_equal(held, previous):
                break
        time.sleep(1.0)
        assert np.array_equal(window.grab("paused"), held), "the picture changed while paused"
        assert process.poll() is None

        # s, while paused: a snapshot in the working folder, the very picture on screen.
        window.key("s")
        snapshots = window.wait_for_snapshots(tmp_path, 1)
        saved = cv2.imread(str(snapshots[0]))
        on_screen = frame_area(held)
        assert saved is not None and saved.shape == on_screen.shape
        assert np.abs(saved.astype(int) - on_screen).mean() < 2

        # space again: moving again; s while running also saves.
        window.key("space")
        window.wait_until("resumed", lambda image: live_view(image) and not np.array_equal(image, on_screen))
        window.key("s")
        window.wait_for_snapshots(tmp_path, 2)

        # q: the program ends cleanly.
        window.key("q")
        assert process.wait(timeout=20) == 0, window.tail()
    finally:
        stop(window, process)


SELECTION_BGR = np.array((255, 0, 255))  # digitrec.annotate.SELECTION_COLOUR


def selection_centre(image: np.ndarray) -> tuple[float, float] | None:
    """Centre (x, y) of the magenta frame round the box chosen in labelling mode; None when none is drawn."""
    ys, xs = np.nonzero(np.all(np.abs(image.astype(int) - SELECTION_BGR) <= 40, axis=2))
    return (float(xs.mean()), float(ys.mean())) if len(xs) > 40 else None


def test_labelling_mode_saves_the_chosen_box_under_the_typed_digit(display, video, tmp_path):
    shots, log, labels = shots_folder(tmp_path), tmp_path / "live_digits.log", tmp_path / "my_labels"
    process = start_reader(display, tmp_path, log, "--source", str(video), "--labels", str(labels))
    window = None
    try:
        window = Window(display, process, log, shots)
        window.wait_for_window()
        window.xdotool("mousemove", "1270", "790")
        window.wait_until("live", lambda image: live_view(image) and box_pixels(image) > 300)

        def saved() -> list[dict]:
            index = labels / "index.jsonl"
            return [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []

        def wait_for_saved(count: int) -> list[dict]:
            deadline = time.monotonic() + 10
            while len(saved()) < count:
                if time.monotonic() > deadline:
                    pytest.fail(f"{count} labelled crops not saved in {labels}:\n{window.tail()}")
                time.sleep(0.2)
            return saved()

        # l: paused, in labelling mode, the first box framed in magenta.
        window.key("l")
        first = window.wait_until("labelling", lambda image: selection_centre(image) is not None)
        first_centre = selection_centre(first)

        # 3: the framed box is saved as a 3, and the frame moves on to the next box.
        window.key("3")
        records = wait_for_saved(1)
        assert records[0]["digit"] == 3 and (labels / records[0]["image"]).is_file()
        moved = window.wait_until("next_box", lambda image: selection_centre(image) not in (None, first_centre))

        # Tab: on to another box; 7 saves that one, a different box, as a 7.
        window.key("Tab")
        window.wait_until("tab", lambda image: selection_centre(image) not in (None, selection_centre(moved)))
        window.key("7")
        records = wait_for_saved(2)
        assert records[1]["digit"] == 7 and records[1]["box"] != records[0]["box"]

        # A click on the first box picks it again; 5 saves it as a 5.
        grab = window.grab("before_click")
        top, _ = frame_rows(grab)
        x, y, w, h = records[0]["box"]
        window.xdotool("mousemove", "--window", window.id, str(x + w // 2), str(top + y + h // 2))
        window.xdotool("click", "1")
        window.wait_until("clicked", lambda image: selection_centre(image) is not None
                          and np.hypot(*np.subtract(selection_centre(image), first_centre)) < 5)  # fmt: skip
        window.key("5")
        records = wait_for_saved(3)
        assert records[2]["digit"] == 5 and records[2]["box"] == records[0]["box"]

        # Esc leaves labelling mode (and does not quit): the magenta frame goes.
        window.xdotool("mousemove", "1270", "790")
        window.key("Escape")
        window.wait_until("done", lambda image: selection_centre(image) is None)
        assert process.poll() is None

        # The crops are the 28x28 images the model read, in digit folders, with raw crops beside. The first box,
        # labelled again, keeps only its new label: fine-tuning never learns both.
        crops = sorted(path.relative_to(labels).parts[0] for path in labels.glob("[0-9]/*.png"))
        assert crops == ["5", "7"]
        assert not (labels / records[0]["image"]).exists() and not (labels / records[0]["raw"]).exists()
        for record in records[1:]:
            assert cv2.imread(str(labels / record["image"]), cv2.IMREAD_UNCHANGED).shape == (28, 28)
            raw = cv2.imread(str(labels / record["raw"]))
            assert raw.shape[0] > record["box"][3] and raw.shape[1] > record["box"][2]

        window.key("q")
        assert process.wait(timeout=20) == 0, window.tail()
        assert "labelled box" in window.tail() and "(replaces its label 3)" in window.tail()
    finally:
        stop(window, process)


def test_the_close_button_ends_the_run_playing_or_paused_and_a_photo_waits_for_a_key(display, video, tmp_path):
    # Closing a paused window ended in a cv2.error traceback; closing a playing one opened it again.
    shots = shots_folder(tmp_path)
    photo = tmp_path / "page.jpg"
    photo.write_bytes((ROOT / "samples" / "page.jpg").read_bytes())
    for run, (source, keys) in enumerate([(video, []), (video, ["space"]), (photo, [])]):
        log = tmp_path / f"live_digits_{run}.log"
        process = start_reader(display, tmp_path, log, "--source", str(source))
        window = None
        try:
            window = Window(display, process, log, shots)
            window.wait_for_window()
            for key in keys:
                window.key(key)
            time.sleep(1.0)
            assert process.poll() is None, window.tail()  # a photo too is held until a key or the close button
            window.close()
            assert process.wait(timeout=20) == 0, window.tail()
            assert "Traceback" not in window.tail() and "read " in window.tail()
            assert not window.xdotool("search", "--onlyvisible", "--name", "^digitrec$")
        finally:
            stop(window, process)
