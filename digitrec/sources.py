"""Frame sources behind one interface: camera, video file, image, folder, glob or stream URL."""

from __future__ import annotations

import contextlib
import glob
import io
import queue
import struct
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from imutils.video import WebcamVideoStream

from digitrec.images import on_plain_ground
from digitrec.types import Frame

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Image names an annotated photo may be written as (OpenCV writes each)."""

PHOTO_SUFFIXES = (*IMAGE_SUFFIXES, ".jfif", ".jpe", ".gif", ".avif", ".heic", ".heif")
"""Names read as photos, in folders and globs too. HEIC is among them so that it is told apart from a video: it cannot
be decoded here, and the message says so. A file of another name is a photo when its first bytes say so."""

HEIF_MESSAGE = "a HEIC/HEIF photo, which cannot be decoded here: save it as JPEG or PNG (phones: the camera's "\
               "'Most Compatible' format)"

MAX_PHOTO_PIXELS = 150_000_000
"""A photo of more pixels is skipped with a warning, found from its header before it is decoded: reading one takes
about 6 bytes a pixel and more where it is speckled (a 900-megapixel PNG of under 1 MB took 12.8 GB), and OpenCV
refuses past 1 gigapixel with an error that ended the run."""

STREAM_RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds to wait before each reconnection attempt of a dropped stream; then it gives up."""

STREAM_TIMEOUT_MS = 8000
"""How long opening a stream, or waiting for its next frame, may take before it counts as down (OpenCV's own is
30 s, so a host that accepts the connection and then says nothing kept the reader waiting minutes before it gave
up: 30 s for each of its reconnection attempts)."""

CAMERA_START_TIMEOUT = 5.0
"""Seconds to wait for a camera's first frame before declaring it absent."""

EXACT_COUNT_SUFFIXES = (".mp4", ".m4v", ".mov", ".3gp", ".avi")
"""Video containers that record how many frames they hold. For others (Matroska, WebM, ...) FFmpeg estimates the
count from the duration, which a longer sound track or a varying frame rate stretches past the last frame: that
count is not taken for the video's length, nor a video that ends before it for one cut short."""

MP4_SUFFIXES = (".mp4", ".m4v", ".mov", ".3gp")
"""Containers of ISO boxes, whose movie header says which frames are shown (`video_track_frames`)."""

UNKNOWN_RATE_FPS = 1000.0
"""What OpenCV reports as the frame rate of a video that does not say its own: a WebM or MKV as a browser (MediaRecorder)
or OBS writes it, timed in milliseconds with no frame duration. Its rate is measured from its first frames' times."""

RATE_FROM_FRAMES = 8
"""How many frame gaps that measurement takes the median of..."""

MOST_FPS = 240.0
"""...leaving out gaps shorter than a frame at this rate (a phone's slow motion)."""

TIME_JUMP_S = 5.0
"""A file's frame stamped more than this after the one before it, or not after it, is a jump in its clock, not a
pause in its filming: it is timed one frame after the one before."""

PREFETCH_FRAMES = 4
"""Decoded frames a video file may hold ready ahead of the reader: enough to ride out a slow
frame, few enough that memory stays flat (a 720p frame is 2.7 MB)."""


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message says what to try instead."""


class FrameSource:
    """Iterate to get `Frame`s; use as a context manager so devices are released.

    Attributes:
        name: what the frames are called in results.
        total: number of frames or images, when known (for progress bars).
        fps: frames per second of a video or camera, when known.
        live: True for cameras and streams (frames arrive in real time and stale ones are dropped).
        problems: what went wrong and was skipped (corrupt images, a video cut short).
        files: the local files it reads (outputs must not overwrite them).
    """

    name: str = ""
    total: int | None = None
    fps: float | None = None
    live: bool = False

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.files: list[Path] = []

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ImageSource(FrameSource):
    """Still images, one frame each; unreadable files are reported in `problems` and skipped."""

    def __init__(self, paths: list[Path], name: str):
        super().__init__()
        self.paths = paths
        self.files = list(paths)
        self.name = name
        self.total = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        for path in self.paths:
            data = _read_bytes(path)
            too_large = None if data is None else _too_many_pixels(data)
            if too_large:
                self.problems.append(f"{path}: {too_large}; skipped")
                continue
            with _opencv_quiet():  # a broken file gets the one line below, not OpenCV's warnings too
                image = None if data is None else decode_photo(data)
            if image is None:
                kind = None if data is None else image_kind(data)
                what = HEIF_MESSAGE if kind == "heif" else "not a readable image (corrupt, empty or not an image)"
                self.problems.append(f"{path}: {what}; skipped")
                continue
            pages = page_count(data)
            if pages > 1:
                self.problems.append(f"{path}: {first_page_only(pages)}")
            yield Frame(index=0, image=image, source=str(path), time=0.0, still=True)


def _too_many_pixels(data: np.ndarray) -> str | None:
    """What is wrong when an encoded photo's header gives it more than `MAX_PHOTO_PIXELS`; None when it does not (or
    its header cannot be read: decoding then says what is wrong)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data.tobytes())) as header:
                width, height = header.size
        except Image.DecompressionBombError:  # Pillow's own limit, past ours
            size = f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        except Exception:
            return None
        else:
            if width * height <= MAX_PHOTO_PIXELS:
                return None
            size = f"{width}x{height} = {width * height / 1e6:.0f} megapixels"
    return (f"the photo is {size}; photos of up to {MAX_PHOTO_PIXELS / 1e6:.0f} megapixels are read. Scale it "
            "down: a digit 100 px tall reads as well as a larger one")


def _read_bytes(path: Path) -> np.ndarray | None:
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        return None
    return data if data.size else None


def image_kind(data: np.ndarray | bytes) -> str | None:
    """The image format its first bytes name ("png", "jpeg", "gif", "tiff", "webp", "bmp", "avif", "heif"), or None."""
    head = bytes(data[:32])
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"GIF8"):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 108, 124):
        return "bmp"  # "BM" and the size of one of the BMP info headers
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "heif"
    return None


def _may_be_transparent(data: np.ndarray) -> bool:
    """Whether encoded bytes may hold transparency: a PNG whose header says so (grey or colour with alpha, or a
    palette) or that carries a tRNS chunk (one colour transparent), or a format that may (WebP, GIF, TIFF, AVIF).
    Any other image is decoded once, by OpenCV alone."""
    kind = image_kind(data)
    if kind == "png":
        if len(data) > 25 and data[25] in (3, 4, 6):  # IHDR's colour type
            return True
        head = bytes(data[:65536])
        image_data = head.find(b"IDAT")
        return b"tRNS" in head[: image_data if image_data > 0 else None]  # tRNS comes before the image data
    return kind in ("webp", "gif", "tiff", "avif")


def page_count(data: np.ndarray) -> int:
    """How many pages (TIFF) or frames (GIF) an image file holds; 1 for any other kind."""
    if image_kind(data) not in ("tiff", "gif"):
        return 1
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as image:
                return int(getattr(image, "n_frames", 1))
    except Exception:  # Pillow cannot walk it; OpenCV decoded its first page, which is what is read
        return 1


def first_page_only(pages: int) -> str:
    """The warning for an image file of several pages (`page_count`), of which only the first is read."""
    return f"holds {pages} pages or frames and only the first was read; save each page as an image of its own " \
        "to read them all"


def decode_photo(data: np.ndarray) -> np.ndarray | None:
    """(h, w, 3) uint8 BGR from an encoded image's bytes, its EXIF orientation applied, or None where they cannot
    be decoded.

    An image with transparency (an alpha channel, a palette's transparent entries, a PNG's transparent colour) is
    laid on a plain ground its opaque pixels stand out from: white under dark strokes, black under light ones. A
    drawing exported from a canvas is often dark strokes on nothing, which OpenCV alone gives as black on black.
    Pillow decodes those (OpenCV's decoding with the alpha channel ignores EXIF orientation); any other image is
    decoded as OpenCV decodes it, and by Pillow where OpenCV cannot. A fully opaque image comes out the same
    either way."""
    if _may_be_transparent(data):
        image = _decode_with_pillow(data, only_transparent=True)
        if image is not None:
            return on_plain_ground(image)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # past OpenCV's own pixel limit, or out of memory: not a readable image here
        return None
    if image is None:
        image = _decode_with_pillow(data, only_transparent=False)
    return image


def _decode_with_pillow(data: np.ndarray, only_transparent: bool) -> np.ndarray | None:
    """BGRA of an image with transparency, or BGR of one without (None if `only_transparent`), upright by its EXIF
    orientation; None where Pillow cannot decode it."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as image:
                transparent = image.has_transparency_data
                if only_transparent and (not transparent or image.mode.startswith("I")):
                    return None  # 16- and 32-bit grey: Pillow clips them to 8 bits, OpenCV scales them
                upright = ImageOps.exif_transpose(image)
                pixels = np.asarray(upright.convert("RGBA" if transparent else "RGB"))
    except Exception:  # anything Pillow cannot decode, including a decompression bomb, is not a readable image
        return None
    return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if transparent else cv2.COLOR_RGB2BGR)


MAX_MOVIE_HEADER_BYTES = 64 * 1024 * 1024
"""A movie header (`moov`) larger than this is not read for `video_track_frames` (hours of video take a few MB)."""


def video_track_frames(path: Path) -> int | None:
    """How many frames an MP4/MOV file's first video track shows: its samples whose composition time falls inside
    its edit list's windows (all of them where it has none). None for another container, a fragmented MP4 (no sample
    table in its header) or one whose header cannot be read.

    OpenCV's FFmpeg counts every sample of the track, also those an edit list hides: an MP4 cut with `ffmpeg -ss X
    -i in.mp4 -t Y -c copy` keeps the frames before its first key frame, and with B-frames one or two after its end,
    which the decoder never gives. Only the movie header is read, never the media."""
    if path.suffix.lower() not in MP4_SUFFIXES:
        return None
    try:
        with open(path, "rb") as file:
            movie = _movie_header(file, path.stat().st_size)
        if movie is None:
            return None
        return _shown_frames(movie)
    except (OSError, IndexError, ValueError, struct.error):
        return None


def _movie_header(file, size: int) -> bytes | None:
    """The bytes of the file's top-level `moov` box, found by walking the top-level box headers."""
    position = 0
    while position + 8 <= size:
        file.seek(position)
        box = _box_header(file.read(16), size - position)
        if box is None:
            return None
        kind, content, length = box
        if kind == b"moov":
            if length > MAX_MOVIE_HEADER_BYTES:
                return None
            file.seek(position + content)
            return file.read(length - content)
        position += length
    return None


def _box_header(header: bytes, room: int) -> tuple[bytes, int, int] | None:
    """(type, offset of its content, length) of the box whose first 16 bytes (or fewer) are `header`, with `room`
    bytes left where it stands (a length of 0: the rest); None where its length cannot be."""
    length, kind = struct.unpack(">I4s", header[:8])
    content = 8
    if length == 1:
        length, content = struct.unpack(">Q", header[8:16])[0], 16
    elif length == 0:
        length = room
    if length < content or length > room:
        return None
    return kind, content, length


def _boxes(data: bytes, kind: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(content start, end) of each box of type `kind` directly inside data[start:end]."""
    end = len(data) if end is None else end
    found = []
    while start + 8 <= end:
        box = _box_header(data[start : start + 16], end - start)
        if box is None:
            break
        if box[0] == kind:
            found.append((start + box[1], start + box[2]))
        start += box[2]
    return found


def _timescale(movie: bytes, header: int) -> int:
    """The time units a second of an `mvhd` or `mdhd` box whose content starts at `header` (after its version's dates)."""
    offset = header + (20 if movie[header] == 1 else 12)
    return struct.unpack(">I", movie[offset : offset + 4])[0]


def _shown_frames(movie: bytes) -> int | None:
    """`video_track_frames` of a movie header's bytes."""
    (header, _), = _boxes(movie, b"mvhd")
    movie_scale = _timescale(movie, header)
    for track in _boxes(movie, b"trak"):
        media = _boxes(movie, b"mdia", *track)[0]
        handler = _boxes(movie, b"hdlr", *media)[0][0]
        if movie[handler + 8 : handler + 12] != b"vide":
            continue
        media_scale = _timescale(movie, _boxes(movie, b"mdhd", *media)[0][0])
        table = _boxes(movie, b"stbl", *_boxes(movie, b"minf", *media)[0])[0]
        (times, _), = _boxes(movie, b"stts", *table)
        entries = struct.unpack(">I", movie[times + 4 : times + 8])[0]
        counts_deltas = np.frombuffer(movie, ">u4", 2 * entries, times + 8).reshape(-1, 2).astype(np.int64)
        if counts_deltas[:, 0].sum() == 0:
            return None  # fragmented: the samples are in the fragments
        decode = np.concatenate(([0], np.cumsum(np.repeat(counts_deltas[:, 1], counts_deltas[:, 0]))[:-1]))
        shown_at = decode
        for offsets_box, _ in _boxes(movie, b"ctts", *table):
            entries = struct.unpack(">I", movie[offsets_box + 4 : offsets_box + 8])[0]
            pairs = np.frombuffer(movie, ">u4", 2 * entries, offsets_box + 8).reshape(-1, 2)
            offsets = pairs[:, 1].astype(np.int32).astype(np.int64)  # signed, as FFmpeg reads either version
            shown_at = decode + np.repeat(offsets, pairs[:, 0].astype(np.int64))[: len(decode)]
        edits = _boxes(movie, b"edts", *track)
        if not edits:
            return len(decode)
        (edit_list, _), = _boxes(movie, b"elst", *edits[0])
        wide = movie[edit_list] == 1
        entries = struct.unpack(">I", movie[edit_list + 4 : edit_list + 8])[0]
        layout = ">Qq4x" if wide else ">Ii4x"
        shown = np.zeros(len(decode), bool)
        for index in range(entries):
            duration, start = struct.unpack_from(layout, movie, edit_list + 8 + index * (20 if wide else 12))
            if start >= 0:  # -1: an empty edit, a pause before the track
                shown |= (shown_at >= start) & (shown_at < start + duration * media_scale / movie_scale)
        return int(shown.sum())
    return None


class VideoFileSource(FrameSource):
    """Frames of a recorded video, decoded on their own thread a few frames ahead of the reader,
    so decoding overlaps the reading; a video that breaks off keeps what was decoded before."""

    def __init__(self, path: Path | str, prefetch: int = PREFETCH_FRAMES, capture: cv2.VideoCapture | None = None):
        """`path`: a local file, or the URL of a recorded video (read to its end, never replayed); `capture`: the
        video already opened there (`open_source` probes a URL once)."""
        super().__init__()
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1 frame, not {prefetch}")
        self.path = path
        self.files = [path] if isinstance(path, Path) else []
        self.name = str(path)
        self._capture = capture if capture is not None else cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise SourceError(f"{path}: cannot be opened as a video or image. It may be cut short (an MP4 cut short "
                              "cannot be opened at all) or in a format OpenCV's FFmpeg lacks: check the file, or "
                              "convert it to MP4.")
        # The first frame now, so that a video nothing of which decodes (a codec this FFmpeg lacks) is refused
        # before any output is opened.
        ok, first = self._capture.read()
        if not ok or first is None:
            fourcc = int(self._capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
            codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ")
            self._capture.release()
            fix = (f"OpenCV's FFmpeg may lack its decoder. Convert it to H.264, e.g. ffmpeg -i {Path(str(path)).name} "
                   "-c:v libx264 converted.mp4")
            if not isinstance(path, Path):  # over HTTP an MP4's index at its end is out of reach without byte ranges
                fix += (" Served over HTTP, an MP4 also needs its index at its start (ffmpeg -i in.mp4 -c copy "
                        "-movflags +faststart out.mp4) or a server that serves byte ranges.")
            raise SourceError(f"{path}: no frame of it can be decoded{f' (codec {codec})' if codec else ''}. {fix}")
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        suffix = path.suffix if isinstance(path, Path) else Path(urllib.parse.urlparse(str(path)).path).suffix
        self.total = count if count > 0 and suffix.lower() in EXACT_COUNT_SUFFIXES else None
        self._start: float | None = None
        self._head = [(first, self._stream_time())]
        """Frames decoded before the decoding thread starts, with their times (`_stream_time`)."""
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        if fps >= UNKNOWN_RATE_FPS or fps <= 0:
            fps = self._rate_from_first_frames()
        self.fps = fps if fps > 0 else None
        shown = video_track_frames(path) if isinstance(path, Path) and self.total else None
        if shown:
            # An MP4 cut with `ffmpeg -c copy` holds frames its edit list hides: the count holds them, the decoder
            # never yields them, and the video is not cut short.
            self.total = min(self.total, shown)
        # Bounded, so a reader slower than the decoder holds only `prefetch` frames, never the video.
        self._decoded: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False

    def _stream_time(self) -> float:
        """The seconds from the first frame to the one just decoded, by its timestamp: a video of a varying frame
        rate (a phone in low light, a browser's recording) is not timed by its frame count."""
        milliseconds = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        if self._start is None:
            self._start = milliseconds
        return (milliseconds - self._start) / 1000.0

    def _rate_from_first_frames(self) -> float:
        """Frames a second by the median gap between the first frames' times; 0 where they give none."""
        while len(self._head) <= RATE_FROM_FRAMES:
            ok, image = self._capture.read()
            if not ok or image is None:
                break
            self._head.append((image, self._stream_time()))
        gaps = np.diff([seconds for _, seconds in self._head])
        gaps = gaps[gaps >= 1.0 / MOST_FPS]  # frames stamped together (a burst at the start) say nothing of the rate
        return 1.0 / float(np.median(gaps)) if len(gaps) else 0.0

    def _decode_all(self) -> None:
        """The decoding thread: every frame into the queue in order, with its time, then None to say it ended."""
        try:
            head, self._head = self._head, []
            while head:  # each let go once queued: nine 4K frames are 225 MB
                if not self._put(head.pop(0)):
                    return
            while not self._stop.is_set():
                ok, image = self._capture.read()
                if not ok or image is None:
                    break
                if not self._put((image, self._stream_time())):
                    return
        finally:
            self._put(None)
            _release_if_closed(self._capture, self._stop)

    def _put(self, item: tuple[np.ndarray, float] | None) -> bool:
        """Wait for room in the queue; False when the source was closed meanwhile."""
        while not self._stop.is_set():
            try:
                self._decoded.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Frame]:
        if self._ended:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._decode_all, name=f"decode {self.name}", daemon=True)
            self._thread.start()
        index, previous, offset = 0, 0.0, 0.0
        while True:
            item = self._decoded.get()
            if item is None:
                self._ended = True
                break
            image, stamped = item
            seconds = stamped - offset
            if index and not previous < seconds <= previous + TIME_JUMP_S:
                # No times, a frame out of order, or a clock that jumps (files joined, a wrapped MPEG-TS clock, one
                # bad stamp): this frame is one frame on, and the frames after it are timed on from it.
                seconds = previous + 1.0 / (self.fps or 30.0)
                offset = stamped - seconds
            yield Frame(index=index, image=image, source=self.name, time=seconds)
            previous = seconds
            index += 1
        if self.total and index < self.total - 1:
            self.problems.append(f"{self.path}: the video broke off after frame {index} of {self.total}; kept what was read")

    def close(self) -> None:
        self._stop.set()
        _release_when_done(self._capture, self._thread)


@contextlib.contextmanager
def _opencv_quiet():
    """OpenCV's own log silenced while a camera is probed: a missing one prints a page of backend warnings
    before `CameraSource` says in one line what is wrong and what to do."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


class _TimedWebcamStream(WebcamVideoStream):
    """imutils' threaded webcam, also noting when each frame was captured (for the latency figure)."""

    def __init__(self, src: int):
        super().__init__(src=src)
        self.captured = (self.frame, time.monotonic())

    def start(self) -> _TimedWebcamStream:
        """imutils' start, keeping the thread, so that closing can wait for it to be out of its read."""
        self.thread = threading.Thread(target=self.update, name=self.name, daemon=True)
        self.thread.start()
        return self

    def update(self) -> None:
        while not self.stopped:
            self.grabbed, frame = self.stream.read()
            # One tuple assignment, so the reader never pairs a frame with another frame's time.
            self.captured = (frame, time.monotonic())
        self.stream.release()  # stopped: released here, out of any read (`_release_when_done`)

    def read(self) -> tuple[np.ndarray | None, float]:
        return self.captured


class CameraSource(FrameSource):
    """A webcam read on its own thread (imutils' WebcamVideoStream): the newest frame wins.

    Frame.time is time.monotonic() when the frame was captured, so capture-to-overlay latency
    can be measured.
    """

    live = True

    def __init__(self, index: int):
        super().__init__()
        self.name = f"camera:{index}"
        with _opencv_quiet():
            self._stream = _TimedWebcamStream(index)
        if not self._stream.stream.isOpened() or not self._stream.grabbed:
            self._stream.stream.release()
            raise SourceError(
                f"no camera at index {index}. Plug one in, try another index (--source {1 if index == 0 else 0}), "
                "or read a file instead (--source video.mp4)."
            )
        fps = float(self._stream.stream.get(cv2.CAP_PROP_FPS))
        self.fps = fps if fps > 0 else None
        self._stream.start()

    def __iter__(self) -> Iterator[Frame]:
        index, last = 0, None
        started = time.monotonic()
        while not self._stream.stopped:
            image, captured_at = self._stream.read()
            if image is None or image is last:
                # No new frame yet: do not read the same picture twice.
                if time.monotonic() - started > CAMERA_START_TIMEOUT and last is None:
                    raise SourceError(f"{self.name} gives no frames. Is another program using it?")
                time.sleep(0.002)
                continue
            last = image
            yield Frame(index=index, image=image, source=self.name, time=captured_at)
            index += 1
        if not self._stream.grabbed:
            self.problems.append(f"{self.name}: the camera stopped delivering frames")

    def close(self) -> None:
        self._stream.stop()
        _release_when_done(self._stream.stream, getattr(self._stream, "thread", None))


HLS_HOLD_AT_MOST_S = 12.0
"""The longest an HLS frame is held for its time (`SegmentPacer`): more than the longest segments streams use (Apple
recommends 6 s), so a frame due later still is a jump in the stream's clock, not a segment's frame."""


def is_hls(url: str) -> bool:
    """Whether a URL names an HLS playlist (.m3u8), whose frames FFmpeg gives a whole segment at a time."""
    return urllib.parse.urlsplit(url).path.lower().endswith(".m3u8")


HLS_LATE_KEPT_S = 2.0
"""An HLS frame up to this late keeps the pacer's clock (`SegmentPacer`); a later one (a stall) starts it again."""


class SegmentPacer:
    """Spreads frames that come in bursts back over the time they were filmed.

    An HLS stream comes in segments of a second or more, which FFmpeg decodes at once: newest-wins then kept the last
    frame or two of each (a live HLS stream was read at 2.6 frames a second). The first frame sets the clock; each
    later one is held until its stream time comes round on it. A frame that comes late (the next segment's first,
    after its download) is given at once and keeps the clock, so the downloads' time is not added to every frame
    after them and the delay behind the live stream stays as it was; one more than `late_kept` seconds late (a
    stall) starts the clock again, so nothing is held behind it, and one due more than `hold_at_most` seconds ahead
    (a jump in the stream's time, a new connection) is not held."""

    def __init__(self, hold_at_most: float = HLS_HOLD_AT_MOST_S, late_kept: float = HLS_LATE_KEPT_S):
        self.hold_at_most, self.late_kept = hold_at_most, late_kept
        self._anchor: tuple[float, float] | None = None
        """(time.monotonic(), stream seconds) of the frame that set the clock."""

    def hold(self, stream_seconds: float, now: float) -> float:
        """How many seconds to hold a frame of this stream time that arrived at `now` (0: give it at once)."""
        if self._anchor is not None and stream_seconds > 0:
            wait = self._anchor[0] + (stream_seconds - self._anchor[1]) - now
            if -self.late_kept <= wait <= self.hold_at_most:
                return max(wait, 0.0)
        self._anchor = (now, stream_seconds) if stream_seconds > 0 else None
        return 0.0


def open_network_capture(url: str) -> cv2.VideoCapture:
    """A URL opened by OpenCV's FFmpeg with `STREAM_TIMEOUT_MS` for opening and for each frame."""
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])


class StreamSource(FrameSource):
    """A network stream (rtsp://, http://) read on its own thread, reconnecting when it drops.

    The newest frame wins; Frame.time is time.monotonic() when the frame was captured (for HLS, when its time came:
    `SegmentPacer`).
    """

    live = True

    def __init__(
        self,
        url: str,
        open_capture: Callable[[str], cv2.VideoCapture] = open_network_capture,
        reconnect_delays: tuple[float, ...] = STREAM_RECONNECT_DELAYS,
        capture: cv2.VideoCapture | None = None,
    ):
        """`capture`: the stream already opened (`open_source` probes a URL once); else `open_capture(url)`."""
        super().__init__()
        self.url = url
        self.name = url
        self._open = open_capture
        self._delays = reconnect_delays
        self._capture = capture if capture is not None else self._open(url)
        if not self._capture.isOpened():
            raise SourceError(f"{url}: the stream cannot be opened. Check the address and that it is live.")
        self.reconnects = 0
        self._latest: tuple[np.ndarray, float] | None = None
        """The newest frame not yet read, with its capture time."""
        self._condition = threading.Condition()
        self._finished = False
        self._stop = threading.Event()
        self._pacer = SegmentPacer() if is_hls(url) else None
        self._thread = threading.Thread(target=self._read_forever, daemon=True)
        self._thread.start()

    def _read_forever(self) -> None:
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if ok and image is not None:
                if self._pacer is not None:
                    hold = self._pacer.hold(self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, time.monotonic())
                    if hold and self._stop.wait(hold):
                        break
                with self._condition:
                    self._latest = (image, time.monotonic())
                    self._condition.notify()
                continue
            if not self._reconnect():
                break
        _release_if_closed(self._capture, self._stop)
        with self._condition:
            self._finished = True
            self._condition.notify()

    def _reconnect(self) -> bool:
        self._capture.release()
        for delay in self._delays:
            if self._stop.wait(delay):
                return False
            self.reconnects += 1
            self._capture = self._open(self.url)
            if self._capture.isOpened() and self._capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
                return False  # what was live is now a recording (a finished HLS playlist): it ended, not dropped
            if self._capture.isOpened():
                ok, image = self._capture.read()
                if ok and image is not None:
                    with self._condition:
                        self._latest = (image, time.monotonic())
                        self._condition.notify()
                    return True
            self._capture.release()
        self.problems.append(f"{self.url}: the stream dropped and {len(self._delays)} reconnection attempts failed")
        return False

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            with self._condition:
                while self._latest is None and not self._finished:
                    self._condition.wait(0.5)
                if self._latest is None:
                    return
                (image, captured_at), self._latest = self._latest, None
            yield Frame(index=index, image=image, source=self.name, time=captured_at)
            index += 1

    def close(self) -> None:
        self._stop.set()
        _release_when_done(self._capture, self._thread)


CLOSE_WAIT_S = 2.0
"""How long closing a source waits for its reading thread, which may be inside a stalled stream's read."""


def _release_when_done(capture: cv2.VideoCapture, thread: threading.Thread | None) -> None:
    """Release a capture that `thread` reads, once it is out of its read: releasing it while a read was waiting on a
    stalled stream (up to `STREAM_TIMEOUT_MS`) crashed Python when the read came back. A thread still reading after
    `CLOSE_WAIT_S` releases it itself (`_release_if_closed`)."""
    if thread is not None:
        thread.join(timeout=CLOSE_WAIT_S)
        if thread.is_alive():
            return
    capture.release()


def _release_if_closed(capture: cv2.VideoCapture, stop: threading.Event) -> None:
    """The reading thread's last step: release its capture if the source was closed (maybe while it read)."""
    if stop.is_set():
        capture.release()


def _image_paths_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_photo(p))


def _is_photo(path: Path) -> bool:
    """A regular file that is a photo by its name, or by its first bytes where its name has no extension or a photo's
    with something after it (a JPEG saved without one, or as 'photo.jpg_large')."""
    if not path.is_file():
        return False  # a named pipe would block the read; a folder is not a photo
    suffix = path.suffix.lower()
    if suffix in PHOTO_SUFFIXES:
        return True
    if suffix and not suffix.startswith(PHOTO_SUFFIXES):
        return False
    try:
        with open(path, "rb") as file:
            return image_kind(file.read(32)) is not None
    except OSError:
        return False


def _is_animation(path: Path) -> bool:
    """A GIF of several frames: read as a video (FFmpeg decodes GIFs), as before photos were sniffed."""
    try:
        with open(path, "rb") as file:
            head = file.read(32)
        if image_kind(head) != "gif":
            return False
        return page_count(np.fromfile(str(path), np.uint8)) > 1
    except OSError:
        return False


RECORDED_VIDEO_SCHEMES = ("http", "https", "ftp")
"""URL schemes that may serve a recorded video file rather than a live stream."""


def _open_url(url: str) -> FrameSource:
    """A live stream, or a recorded video served over HTTP or FTP: one that says how many frames it has is read
    frame by frame to its end like a file (as a stream it would drop frames, and replay from the start whenever
    it ended)."""
    capture = open_network_capture(url)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{url}: the stream cannot be opened. Check the address and that it is live.")
    scheme = url.split("://", 1)[0].lower()
    if scheme in RECORDED_VIDEO_SCHEMES and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
        return VideoFileSource(url, capture=capture)
    return StreamSource(url, capture=capture)


def open_source(spec: str | int) -> FrameSource:
    """Open what --source names: a camera index, a URL, an image, a video, a folder or a glob.

    Raises:
        SourceError: nothing readable there; the message names the fix.
    """
    spec = str(spec)
    if spec.isdigit():
        return CameraSource(int(spec))
    if not spec.strip():
        raise SourceError("--source is empty. Give a camera index (0), a video, an image, a folder, a glob or a URL.")
    if "://" in spec:
        return _open_url(spec)
    path = Path(spec)
    if path.is_dir():
        paths = _image_paths_in(path)
        if not paths:
            raise SourceError(f"{path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)}, GIF or AVIF).")
        return ImageSource(paths, name=str(path))
    if path.is_file():
        if _is_photo(path) and not _is_animation(path):
            return ImageSource([path], name=str(path))
        return VideoFileSource(path)
    if any(char in spec for char in "*?["):
        paths = sorted(Path(p) for p in glob.glob(spec) if _is_photo(Path(p)))
        if not paths:
            raise SourceError(f"{spec}: no image matches this pattern.")
        return ImageSource(paths, name=spec)
    raise SourceError(
        f"{spec}: no such file or folder. Give a camera index (0), a video, an image, a folder, "
        "a glob such as 'scans/*.jpg', or a stream URL."
    )


__all__ = [
    "CameraSource",
    "FrameSource",
    "ImageSource",
    "SourceError",
    "StreamSource",
    "VideoFileSource",
    "open_source",
]
