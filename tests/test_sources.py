from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.sources import (
    ImageSource,
    SegmentPacer,
    SourceError,
    StreamSource,
    VideoFileSource,
    decode_photo,
    is_hls,
    open_source,
    video_track_frames,
)


def _image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def _write_video(path, frames: int, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 10 % 255, np.uint8))
    writer.release()


def test_a_folder_yields_its_images_in_name_order_and_skips_corrupt_ones(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), _image(20))
    cv2.imwrite(str(tmp_path / "a.png"), _image(10))
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as source:
        assert isinstance(source, ImageSource) and source.total == 3
        frames = list(source)
    assert [f.source.rsplit("/", 1)[-1] for f in frames] == ["a.png", "b.png"]
    assert all(f.index == 0 and f.still for f in frames)  # photos: the reader may spend more on each
    assert len(source.problems) == 1 and "c.jpg" in source.problems[0]


def test_a_glob_selects_matching_images(tmp_path):
    for name in ("x1.png", "x2.png", "y1.png"):
        cv2.imwrite(str(tmp_path / name), _image(5))
    with open_source(str(tmp_path / "x*.png")) as source:
        assert [f.source.rsplit("/", 1)[-1] for f in source] == ["x1.png", "x2.png"]


def test_a_video_file_yields_numbered_frames_with_times(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 12)
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource) and source.total == 12 and source.fps == pytest.approx(10.0)
        frames = list(source)
    assert [f.index for f in frames] == list(range(12)) and not any(f.still for f in frames)
    assert frames[5].time == pytest.approx(0.5)
    assert source.problems == []


def test_a_video_cut_off_mid_way_keeps_the_frames_before_the_break(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with open_source(path) as source:
        frames = list(source)
    assert 5 <= len(frames) < 40
    assert source.problems and "broke off" in source.problems[0]


def test_a_recorded_video_served_over_http_is_read_once_to_its_end(tmp_path):
    # A stream would drop frames the reader is too slow for, and replay the file whenever it ends.
    import functools
    import http.server
    import threading

    _write_video(tmp_path / "clip.avi", 12)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.avi") as source:
            assert isinstance(source, VideoFileSource) and not source.live and source.files == []
            frames = list(source)
    finally:
        server.shutdown()
        server.server_close()
    assert [f.index for f in frames] == list(range(12)) and source.problems == []


@pytest.mark.parametrize("spec, message", [
    ("no/such/file.png", "no such file or folder"),
    ("nothing-*.png", "no image matches"),
    ("", "--source is empty"),
])
def test_bad_paths_say_what_to_give_instead(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match="holds no images"):
        open_source(tmp_path)


def test_a_file_that_is_neither_image_nor_video_is_refused(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot be opened as a video"):
        open_source(path)


def test_a_missing_camera_names_what_to_try():
    with pytest.raises(SourceError, match=r"no camera at index 9.*--source"):
        open_source("9")


class _FakeCapture:
    """A stream or file that delivers some frames, then drops or ends; a file's container claims `count` frames
    (what OpenCV reports of real files) and its codec `fourcc`."""

    def __init__(self, frames: int, opened: bool = True, count: int = 0, fourcc: str = "h264"):
        self.frames, self.opened, self.count, self.fourcc = frames, opened, count, fourcc

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.count, cv2.CAP_PROP_FPS: 30.0,
                cv2.CAP_PROP_FOURCC: int.from_bytes(self.fourcc.encode(), "little")}.get(prop, 0.0)

    def isOpened(self):
        return self.opened

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, _image(self.frames)

    def release(self):
        self.opened = False


class _TimedCapture(_FakeCapture):
    """A recording whose frames carry their own times (ms), with the frame rate a container claims."""

    def __init__(self, milliseconds: list[float], fps: float):
        super().__init__(len(milliseconds), count=len(milliseconds), fourcc="VP80")
        self.milliseconds, self.claimed_fps, self.read_count = milliseconds, fps, 0

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.milliseconds[self.read_count - 1] if self.read_count else 0.0
        return self.claimed_fps if prop == cv2.CAP_PROP_FPS else super().get(prop)

    def read(self):
        ok, image = super().read()
        self.read_count += ok
        return ok, image


def test_a_recording_that_does_not_say_its_rate_is_timed_by_its_frames_own_times():
    # A browser's (MediaRecorder's) or OBS's WebM: OpenCV says 1000 fps, so its annotated copy played 8 times too fast.
    milliseconds = [500.0 + 1000.0 / 30 * index + (9.0 if index % 3 == 1 else 0.0) for index in range(40)]
    milliseconds[20:] = [value + 400.0 for value in milliseconds[20:]]  # a pause, as a low-light camera makes
    with VideoFileSource(Path("call.webm"), capture=_TimedCapture(milliseconds, fps=1000.0)) as source:
        assert source.fps == pytest.approx(30.0, rel=0.05)
        frames = list(source)
    assert [frame.index for frame in frames] == list(range(40))
    assert [frame.time for frame in frames] == pytest.approx([(value - 500.0) / 1000.0 for value in milliseconds])


def test_a_jump_in_a_files_clock_is_one_frame_and_the_frames_after_it_keep_their_own_spacing():
    # One frame stamped an hour ahead gave the copy a 5-s freeze, and the frames after it lost their times; files
    # joined end to end (the clock going back) lost their varying rate for the rest of the video.
    milliseconds = [1000.0 / 30 * index for index in range(10)]
    milliseconds[4] = 3_600_000.0  # one bad stamp
    milliseconds += [0.0 + 1000.0 / 15 * index for index in range(6)]  # a second file, at 15 fps, from 0 again
    with VideoFileSource(Path("joined.mkv"), capture=_TimedCapture(milliseconds, fps=30.0)) as source:
        times = [frame.time for frame in source]
    assert times[:10] == pytest.approx([index / 30 for index in range(10)])
    assert times[10] == pytest.approx(10 / 30) and np.diff(times[10:]) == pytest.approx([1 / 15] * 5)


def test_frames_without_times_that_go_forward_are_timed_by_the_frame_rate():
    with VideoFileSource(Path("clip.avi"), capture=_TimedCapture([0.0] * 6, fps=25.0)) as source:
        times = [frame.time for frame in source]
    assert source.fps == 25.0 and times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16, 0.2])


def test_a_dropped_stream_reconnects_then_gives_up_keeping_every_frame():
    captures = iter([_FakeCapture(3), _FakeCapture(0, opened=False), _FakeCapture(4)])
    source = StreamSource("rtsp://camera.test/live", open_capture=lambda url: next(captures, _FakeCapture(0, False)),
                          reconnect_delays=(0.01, 0.01, 0.01))
    with source:
        frames = list(source)
    # Newest frame wins, so a slow consumer may skip some, but it gets frames from both connections.
    assert 2 <= len(frames) <= 7
    assert source.reconnects >= 2
    assert source.problems and "reconnection attempts failed" in source.problems[0]


class _SegmentedCapture:
    """A live HLS stream as FFmpeg gives it: each segment's frames at once, once the segment has been filmed (one
    segment's time after the one before) and fetched."""

    def __init__(self, segments: int, per_segment: int = 10, fps: float = 30.0, fetch: float = 0.02):
        self.left, self.per_segment, self.fps, self.fetch, self.given = segments * per_segment, per_segment, fps, fetch, 0
        self.started: float | None = None

    def isOpened(self):
        return True

    def get(self, prop):
        return self.given * 1000.0 / self.fps if prop == cv2.CAP_PROP_POS_MSEC else 0.0

    def read(self):
        if self.left == 0:
            return False, None
        self.started = self.started if self.started is not None else time.monotonic()
        if self.given % self.per_segment == 0:
            filmed = self.started + self.given / self.fps
            time.sleep(max(0.0, filmed - time.monotonic()) + self.fetch)
        self.left -= 1
        self.given += 1
        return True, _image(self.given % 256)

    def release(self):
        pass


@pytest.mark.parametrize("url", ["http://camera.test/live/index.m3u8", "rtsp://camera.test/live"])
def test_a_hls_streams_segments_are_given_frame_by_frame_not_only_their_last_frames(url):
    # Newest-wins kept one or two frames of each one-second segment: a live HLS stream was read at 2.6 fps.
    source = StreamSource(url, open_capture=lambda _: _SegmentedCapture(4), reconnect_delays=())
    with source:
        seen = []
        for frame in source:
            seen.append(frame)
            time.sleep(0.004)  # a reader far faster than the stream
    if is_hls(url):
        assert len(seen) >= 34  # of 40: the first segment's frames may come before the reader is ready
        gaps = np.diff([frame.time for frame in seen[-9:]])
        assert np.median(gaps) > 0.02  # spread as filmed (1/30 s), not in a burst
    else:
        assert len(seen) <= 12  # other streams come frame by frame: one in a burst stays the newest frame


def test_a_hls_stream_falls_no_further_behind_with_each_segments_download():
    # Held on the thread that reads, each segment is fetched only once the last one's frames are given: the pacer
    # restarted its clock on each late first frame, so every download's time was added for good.
    source = StreamSource("http://camera.test/live.m3u8", open_capture=lambda _: _SegmentedCapture(6, fetch=0.1),
                          reconnect_delays=())
    with source:
        seen = [frame for frame in source if time.sleep(0.002) is None]
    filmed = [int(frame.image[0, 0, 0]) / 30.0 for frame in seen]  # each frame's value is its number in the stream
    behind = [frame.time - at for frame, at in zip(seen, filmed)]
    assert len(seen) >= 45 and max(behind[-10:]) - min(behind[:10]) < 0.12, behind


def test_the_segment_pacer_holds_a_bursts_frames_for_their_time_and_never_behind_a_stall():
    pacer = SegmentPacer(hold_at_most=5.0, late_kept=2.0)
    assert pacer.hold(10.0, now=100.0) == 0.0  # the first frame sets the clock
    assert pacer.hold(10.5, now=100.1) == pytest.approx(0.4)  # half a second on in the stream: held till then
    # The next segment's first frame, late by its download: given at once, and the clock kept, so the download
    # is not added to every later frame (the delay behind the live stream grew by each one).
    assert pacer.hold(11.0, now=101.3) == 0.0
    assert pacer.hold(11.5, now=101.3) == pytest.approx(0.2)
    assert pacer.hold(12.0, now=105.0) == 0.0  # 3 s late (a stall): given at once, and the clock starts again...
    assert pacer.hold(12.25, now=105.0) == pytest.approx(0.25)  # ...from it
    assert pacer.hold(30.0, now=102.1) == 0.0  # a jump in the stream's time is not waited out
    assert pacer.hold(0.0, now=102.2) == 0.0 and pacer.hold(0.1, now=102.2) == 0.0  # no stream time: nothing held
    assert is_hls("https://cdn.test/a/b/PLAYLIST.M3U8?token=1") and not is_hls("rtsp://cam.test/stream.m3u8x")


class _StalledCapture:
    """A stream that gives one frame, then stalls inside its next read until `resume` is set."""

    def __init__(self):
        self.reading = threading.Event()
        self.resume = threading.Event()
        self.in_read = False
        self.released_while_reading = False
        self.released = False
        self.reads = 0

    def isOpened(self):
        return True

    def get(self, prop):
        return 0.0

    def read(self):
        self.reads += 1
        if self.reads == 1:
            return True, _image(1)
        self.in_read = True
        self.reading.set()
        self.resume.wait(10)
        self.in_read = False
        return True, _image(2)  # the stream came back: the thread sees it was closed meanwhile

    def release(self):
        self.released_while_reading |= self.in_read
        self.released = True


def test_closing_a_stalled_stream_leaves_its_capture_to_the_read_waiting_on_it(monkeypatch):
    # Released under a read still waiting on the network, OpenCV's capture crashed Python when the read came back
    # (Ctrl-C while an IP camera was frozen: exit 139).
    monkeypatch.setattr("digitrec.sources.CLOSE_WAIT_S", 0.2)
    capture = _StalledCapture()
    source = StreamSource("rtsp://camera.test/live", open_capture=lambda url: capture, reconnect_delays=())
    assert capture.reading.wait(5)
    source.close()
    assert not capture.released and not capture.released_while_reading
    capture.resume.set()
    source._thread.join(5)
    assert capture.released and not capture.released_while_reading


def test_a_stream_that_never_opens_is_refused():
    with pytest.raises(SourceError, match="stream cannot be opened"):
        StreamSource("rtsp://nowhere.test/x", open_capture=lambda url: _FakeCapture(0, opened=False))


def _strokes_on_nothing(colour: int) -> np.ndarray:
    """A BGRA drawing: a digit-like stroke of `colour`, antialiased, on a fully transparent ground."""
    alpha = np.zeros((120, 100), np.uint8)
    cv2.polylines(alpha, [np.array([[25, 20], [75, 20], [45, 100]], np.int32)], False, 255, 9, cv2.LINE_AA)
    drawing = np.zeros((120, 100, 4), np.uint8)
    drawing[..., :3] = colour
    drawing[..., 3] = alpha
    return drawing


@pytest.mark.parametrize("stroke, ground", [(20, 255), (240, 0)], ids=["dark-strokes", "light-strokes"])
def test_a_drawing_on_a_transparent_ground_is_laid_on_a_ground_it_stands_out_from(tmp_path, stroke, ground):
    cv2.imwrite(str(tmp_path / "drawing.png"), _strokes_on_nothing(stroke))
    with open_source(tmp_path / "drawing.png") as source:
        (frame,) = list(source)
    assert frame.image.shape == (120, 100, 3) and frame.image.dtype == np.uint8
    assert (frame.image[0, 0] == ground).all()  # the ground where nothing was drawn
    assert (np.abs(frame.image[20, 50].astype(int) - stroke) <= 2).all()  # the stroke's own colour
    # OpenCV alone drops the alpha channel, and with it the drawing: one flat colour is left
    assert np.ptp(cv2.imread(str(tmp_path / "drawing.png"))) == 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_an_opaque_image_with_an_alpha_channel_decodes_as_opencv_decodes_it(tmp_path, dtype):
    rng = np.random.default_rng(1)
    bgra = rng.integers(0, 256, (30, 40, 4)).astype(np.uint8)
    bgra[..., 3] = 255
    path = tmp_path / "opaque.png"
    cv2.imwrite(str(path), bgra.astype(dtype) * (257 if dtype == np.uint16 else 1))
    assert np.array_equal(decode_photo(np.fromfile(str(path), np.uint8)), cv2.imread(str(path), cv2.IMREAD_COLOR))


def test_only_images_whose_header_allows_transparency_are_decoded_for_it(tmp_path):
    from digitrec.sources import _may_be_transparent

    for name, image, expected in (("rgb.png", _image(50), False), ("grey.png", _image(50)[..., 0], False),
                                  ("rgba.png", _strokes_on_nothing(20), True), ("photo.jpg", _image(50), False),
                                  ("drawing.webp", _strokes_on_nothing(20), True)):
        ok, data = cv2.imencode(Path(name).suffix, image)
        assert ok and _may_be_transparent(data.ravel()) is expected, name


def _upright_drawing() -> np.ndarray:
    """A BGRA drawing taller than wide, strokes in the top half only, so any turn or flip shows."""
    drawing = np.zeros((90, 60, 4), np.uint8)
    drawing[..., :3] = 20
    cv2.line(drawing, (10, 10), (50, 30), (20, 20, 20, 255), 6)
    return drawing


def _save_with_pillow(path: Path, pixels: np.ndarray, orientation: int = 1, **options) -> None:
    """`pixels` (BGR/BGRA or grey) saved by Pillow, stored turned as a phone stores them for EXIF `orientation`
    6 (the camera held a quarter turn clockwise) and tagged so."""
    from PIL import Image

    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if orientation == 6:
        pixels = np.rot90(pixels, 1).copy()  # stored a quarter turn anticlockwise; the tag turns it back
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, **options)


@pytest.mark.parametrize("name", ["drawing.png", "drawing.webp"])
def test_a_transparent_drawing_with_an_exif_orientation_is_turned_upright(tmp_path, name):
    upright = _upright_drawing()
    _save_with_pillow(tmp_path / name, upright, orientation=6, **({"lossless": True} if name.endswith("webp") else {}))
    with open_source(tmp_path / name) as source:
        (frame,) = list(source)
    assert frame.image.shape == (90, 60, 3)
    assert frame.image[:45].min() < 100 and frame.image[45:].min() == 255  # strokes on top, white ground below


@pytest.mark.parametrize("name, pixels, options", [
    ("grey_key.png", np.where(np.eye(40, dtype=bool), 30, 0).astype(np.uint8), {"transparency": 0}),
    ("rgba.tif", _strokes_on_nothing(20), {}),
    ("drawing.gif", np.where(np.eye(40, dtype=bool), 30, 0).astype(np.uint8), {"transparency": 0}),
], ids=["png-transparent-colour", "tiff-alpha", "gif-transparent-colour"])
def test_transparency_other_than_a_png_alpha_channel_is_laid_on_a_plain_ground(tmp_path, name, pixels, options):
    # OpenCV alone decodes each as a black ground: the drawing is lost (or, grey on black, read inverted).
    _save_with_pillow(tmp_path / name, pixels, **options)
    assert cv2.imread(str(tmp_path / name)).min() == 0
    with open_source(tmp_path / name) as source:
        (frame,) = list(source)
    assert frame.image.shape[:2] == pixels.shape[:2]
    assert frame.image[0, -1].tolist() == [255, 255, 255]  # dark strokes: a white ground
    assert frame.image.min() < 50  # and the strokes on it


@pytest.mark.parametrize("name", ["photo.jfif", "photo.jpe", "photo"])
def test_a_jpeg_under_another_name_is_read_as_a_photo_turned_upright(tmp_path, name):
    upright = np.full((90, 60, 3), 255, np.uint8)
    cv2.line(upright, (10, 10), (50, 30), (20, 20, 20), 6)  # dark strokes on white, in the top half only
    _save_with_pillow(tmp_path / name, upright, orientation=6, format="JPEG", quality=95)
    with open_source(tmp_path / name) as source:
        assert isinstance(source, ImageSource)
        (frame,) = list(source)
    assert frame.still and frame.image.shape == (90, 60, 3)
    assert frame.image[:45].min() < 100 and frame.image[45:].min() > 200


def test_a_folder_reads_gif_jfif_and_unnamed_photos_too(tmp_path):
    for name in ("a.gif", "b.jfif", "c"):
        _save_with_pillow(tmp_path / name, _image(40)[..., 0], format="GIF" if name.endswith("gif") else "JPEG")
    (tmp_path / "notes").write_text("not a photo")
    (tmp_path / "read.jsonl").write_text("{}")
    with open_source(tmp_path) as source:
        assert [Path(f.source).name for f in source] == ["a.gif", "b.jfif", "c"]
    assert source.problems == []


def test_a_tiff_of_several_pages_is_read_from_its_first_with_a_warning(tmp_path):
    from PIL import Image

    pages = [Image.fromarray(np.full((30, 40), value, np.uint8)) for value in (200, 100, 50)]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    with open_source(tmp_path / "scan.tif") as source:
        (frame,) = list(source)
    assert frame.image.max() == 200  # the first page
    assert len(source.problems) == 1 and "holds 3 pages" in source.problems[0]


def test_a_heic_photo_is_named_as_such_with_the_fix(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    with open_source(path) as source:
        assert list(source) == []
    assert len(source.problems) == 1 and "HEIC" in source.problems[0] and "JPEG" in source.problems[0]


def test_a_broken_photo_is_one_warning_without_opencvs_own_lines(tmp_path, capfd):
    page = np.full((600, 900, 3), 255, np.uint8)
    cv2.putText(page, "123", (100, 300), cv2.FONT_HERSHEY_SIMPLEX, 5, (0, 0, 0), 10)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    data = (tmp_path / "page.png").read_bytes()
    (tmp_path / "page.png").write_bytes(data[: len(data) * 3 // 10])  # cut off in its image data
    with open_source(tmp_path / "page.png") as source:
        assert list(source) == []
    assert len(source.problems) == 1
    assert "WARN" not in capfd.readouterr().err


@pytest.mark.parametrize("name, broke_off", [("talk.mkv", False), ("talk.webm", False), ("talk.mp4", True)])
def test_only_containers_that_record_their_frame_count_can_say_a_video_broke_off(name, broke_off):
    # A Matroska or WebM file's count is FFmpeg's estimate from its duration: 30 frames under 3 s of sound say 90.
    with VideoFileSource(Path(name), capture=_FakeCapture(frames=30, count=90)) as source:
        assert len(list(source)) == 30
        assert source.total == (90 if broke_off else None)  # no progress bar stuck at 30 of 90
    assert bool(source.problems) is broke_off


def _mp4_boxes(data: bytearray, start: int, end: int, kind: bytes) -> tuple[int, int]:
    """(start, end) of the first box of type `kind` between `start` and `end`."""
    while start + 8 <= end:
        size, found = struct.unpack(">I4s", data[start:start + 8])
        if found == kind:
            return start, start + size
        start += size
    raise AssertionError(f"no {kind} box")


def _cut_as_ffmpeg_copy_does(path: Path, frames: int, hidden_s: float, shown_s: float) -> None:
    """An MP4 of `frames` numbered frames at 10 fps whose edit list shows `shown_s` from `hidden_s` in, as
    `ffmpeg -ss 1.5 -i in.mp4 -t 2 -c copy` writes one: the frames before stay in the file, counted but never shown."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(frames):
        image = np.full((120, 160, 3), 255, np.uint8)
        cv2.putText(image, str(i), (20, 90), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 4)
        writer.write(image)
    writer.release()
    data = bytearray(path.read_bytes())
    moov = _mp4_boxes(data, 0, len(data), b"moov")
    mvhd, _ = _mp4_boxes(data, moov[0] + 8, moov[1], b"mvhd")
    trak = _mp4_boxes(data, moov[0] + 8, moov[1], b"trak")
    tkhd, _ = _mp4_boxes(data, trak[0] + 8, trak[1], b"tkhd")
    mdia = _mp4_boxes(data, trak[0] + 8, trak[1], b"mdia")
    mdhd, _ = _mp4_boxes(data, mdia[0] + 8, mdia[1], b"mdhd")
    edts = _mp4_boxes(data, trak[0] + 8, trak[1], b"edts")
    elst, _ = _mp4_boxes(data, edts[0] + 8, edts[1], b"elst")
    assert all(data[box + 8] == 0 for box in (mvhd, tkhd, mdhd, elst))  # version 0: 32-bit times
    movie_scale, = struct.unpack(">I", data[mvhd + 20:mvhd + 24])
    media_scale, = struct.unpack(">I", data[mdhd + 20:mdhd + 24])
    data[tkhd + 28:tkhd + 32] = struct.pack(">I", round(shown_s * movie_scale))
    data[elst + 16:elst + 24] = struct.pack(">Ii", round(shown_s * movie_scale), round(hidden_s * media_scale))
    path.write_bytes(bytes(data))


def test_an_mp4_cut_without_re_encoding_is_read_whole_not_said_to_break_off(tmp_path):
    path = tmp_path / "cut.mp4"
    _cut_as_ffmpeg_copy_does(path, frames=40, hidden_s=1.5, shown_s=2.0)
    assert video_track_frames(path) == 20
    with open_source(path) as source:
        frames = list(source)
        assert source.total == 20  # the progress bar's length too
    assert len(frames) == 20 and source.problems == []
    assert frames[0].time == 0.0 and frames[-1].time == pytest.approx(1.9)
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x10moov\x00\x00\x00\x09mvhd" + bytes(3))
    assert video_track_frames(tmp_path / "junk.mp4") is None and video_track_frames(tmp_path / "cut.avi") is None


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
@pytest.mark.parametrize("codec", [["-c:v", "libx264", "-g", "60"], ["-c:v", "libx264", "-bf", "0"], ["-c:v", "mpeg4"]],
                         ids=["h264", "h264-no-b-frames", "mpeg4"])
def test_an_mp4_trimmed_by_ffmpeg_itself_is_read_whole(codec, tmp_path):
    # With B-frames the edit list reaches two frames past the last one shown: the count of session 47's first fix,
    # the track's shown time times its rate, still said the video broke off.
    import subprocess

    source_video, trimmed = tmp_path / "source.mp4", tmp_path / "trimmed.mp4"
    quiet = ["ffmpeg", "-loglevel", "error", "-y"]
    subprocess.run([*quiet, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-t", "5", *codec,
                    "-pix_fmt", "yuv420p", str(source_video)], check=True)
    subprocess.run([*quiet, "-ss", "1.5", "-i", str(source_video), "-t", "2", "-c", "copy", str(trimmed)], check=True)
    with open_source(trimmed) as source:
        frames = list(source)
        total = source.total
    assert source.problems == [] and len(frames) == total == video_track_frames(trimmed)


def test_a_video_whose_codec_cannot_be_decoded_is_refused_naming_the_codec_and_the_fix():
    with pytest.raises(SourceError, match=r"codec AV01.*ffmpeg -i clip.mp4 -c:v libx264"):
        VideoFileSource(Path("clip.mp4"), capture=_FakeCapture(frames=0, count=5, fourcc="AV01"))


def test_a_truncated_video_is_one_line_without_ffmpegs_own_log(tmp_path):
    # FFmpeg is set up once a process, so the CLI is run afresh.
    import subprocess
    import sys

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[:-200])  # its index (moov), written last, is cut
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "live_digits.py"), "--source", str(path), "--no-display"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    lines = [line for line in done.stderr.splitlines() if "tensorflow" not in line.lower() and line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "cannot be opened as a video" in lines[0], done.stderr


def test_a_raw_motion_jpeg_video_is_read_as_a_video_though_it_begins_as_a_jpeg(tmp_path):
    path = tmp_path / "camera.mjpeg"
    path.write_bytes(b"".join(cv2.imencode(".jpg", _image(value))[1].tobytes() for value in (10, 100, 200)))
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource)
        assert len(list(source)) == 3


def test_a_live_stream_that_becomes_a_recording_has_ended_and_is_not_replayed():
    # A live HLS playlist, once finished, reopens as a recording of its frames: reading it again would replay them.
    import itertools

    captures = iter([_FakeCapture(3)])
    source = StreamSource("http://camera.test/live.m3u8",
                          open_capture=lambda url: next(captures, None) or _FakeCapture(5, count=5),
                          reconnect_delays=(0.01, 0.01))
    with source:
        frames = list(itertools.islice(source, 20))  # replayed, it would never end
    assert 1 <= len(frames) <= 3 and source.problems == []


def test_a_host_that_accepts_and_never_answers_is_given_up_on_after_the_stream_timeout(monkeypatch):
    import socket
    import time

    import digitrec.sources as sources

    monkeypatch.setattr(sources, "STREAM_TIMEOUT_MS", 1000)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # connections are accepted by the kernel and never answered
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="stream cannot be opened"):
            open_source(f"http://127.0.0.1:{listener.getsockname()[1]}/video")
        assert time.monotonic() - started < 10  # OpenCV's own timeout is 30 s
    finally:
        listener.close()


def test_only_unnamed_files_are_taken_for_photos_by_their_first_bytes(tmp_path):
    _save_with_pillow(tmp_path / "scan", _image(40)[..., 0], format="JPEG")
    (tmp_path / "notes.txt").write_text("BMW service log: 12 000 km")  # 'BM', as a bitmap begins
    with open_source(tmp_path) as source:
        assert [Path(f.source).name for f in source] == ["scan"]
    assert source.problems == []
    with open_source(str(tmp_path / "*")) as source:  # a glob as a folder
        assert [Path(f.source).name for f in source] == ["scan"]


def test_an_animated_gif_is_read_as_a_video_of_its_frames(tmp_path):
    from PIL import Image

    frames = [Image.fromarray(np.full((48, 64), value, np.uint8)) for value in (30, 120, 210)]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100)
    with open_source(tmp_path / "clip.gif") as source:
        assert isinstance(source, VideoFileSource)
        assert len(list(source)) == 3
    assert source.problems == []


def test_a_16_bit_grey_png_with_a_transparent_colour_decodes_as_opencv_decodes_it(tmp_path):
    from PIL import Image

    grey = np.full((40, 40), 60000, np.uint16)
    grey[10:30, 18:22] = 12000  # a dark stroke on the transparent colour
    Image.fromarray(grey).save(tmp_path / "grey16.png", transparency=60000)
    with open_source(tmp_path / "grey16.png") as source:
        (frame,) = list(source)
    assert np.array_equal(frame.image, cv2.imread(str(tmp_path / "grey16.png"), cv2.IMREAD_COLOR))


def _png_header_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """A grey PNG whose header gives `width` x `height` and whose data holds `rows` white rows: a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + b"\xff" * width) * rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_a_photo_of_too_many_pixels_is_skipped_from_its_header_and_the_rest_read(tmp_path):
    # A 900-megapixel PNG of under 1 MB took 12.8 GB to read; past 1 gigapixel OpenCV raised, ending the whole run.
    from digitrec.sources import MAX_PHOTO_PIXELS

    page = np.full((60, 80, 3), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), page)
    (tmp_path / "b.png").write_bytes(_png_header_claiming(40_000, 40_000))
    (tmp_path / "c.png").write_bytes(_png_header_claiming(13_000, MAX_PHOTO_PIXELS // 13_000 + 1))
    cv2.imwrite(str(tmp_path / "d.png"), page)
    with open_source(tmp_path) as source:
        assert [Path(frame.source).name for frame in source] == ["a.png", "d.png"]
    assert len(source.problems) == 2
    assert all("megapixels" in problem and "Scale it down" in problem for problem in source.problems)
    assert decode_photo(np.frombuffer(_png_header_claiming(40_000, 40_000), np.uint8)) is None  # not OpenCV's error
