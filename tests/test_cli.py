"""End to end through live_digits.py: every source kind, every output, every bad input."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import socketserver
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import live_digits
from digitrec.pipeline import read_frames
from digitrec.reader import DigitReader
from digitrec.sinks import JsonLinesSink
from digitrec.sources import FrameSource, SourceError, open_source
from digitrec.synth import StrokeGlyphs, make_video, write_video
from digitrec.types import Frame

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"
SAMPLE = ROOT / "samples" / "page.jpg"
SAMPLE_NUMBERS = ["6", "168", "4", "838", "08", "48201", "372", "727", "97", "7927", "74", "34468"]


def run(*args: str) -> int:
    return live_digits.main(["--no-display", "--model", str(MODEL), *args])


@pytest.fixture(scope="module")
def video_path(tmp_path_factory) -> Path:
    video = make_video(5, StrokeGlyphs(), frames=24, size=(640, 480))
    return write_video(video, tmp_path_factory.mktemp("video") / "clip.mp4", fps=24.0)


def test_the_committed_sample_page_is_read_with_its_numbers(tmp_path, capsys):
    out_json, out_image = tmp_path / "page.jsonl", tmp_path / "page_read.png"
    assert run("--source", str(SAMPLE), "--json", str(out_json), "--output", str(out_image)) == 0
    record = json.loads(out_json.read_text())
    assert record["frame"] == 0 and (record["width"], record["height"]) == (1280, 720)
    texts = [number["text"] for number in record["numbers"]]
    assert sum(text in texts for text in SAMPLE_NUMBERS) >= 10, texts
    for detection in record["detections"]:
        assert set(detection) >= {"box", "digit", "confidence", "number"}
        number = record["numbers"][detection["number"]]
        nx, ny, nw, nh = number["box"]
        x, y, w, h = detection["box"]
        assert nx <= x and ny <= y and x + w <= nx + nw and y + h <= ny + nh
    annotated = cv2.imread(str(out_image))
    assert annotated.shape == (720, 1280, 3)
    assert not np.array_equal(annotated, cv2.imread(str(SAMPLE)))


def test_a_photo_of_light_ink_on_a_dark_ground_is_read_with_ink_light(tmp_path):
    inverted = tmp_path / "blackboard.png"
    cv2.imwrite(str(inverted), 255 - cv2.imread(str(SAMPLE)))
    records = {}
    for name, source, ink in (("dark", SAMPLE, "dark"), ("light", inverted, "light"), ("unsaid", inverted, "dark")):
        out = tmp_path / f"{name}.jsonl"
        assert run("--source", str(source), "--ink", ink, "--json", str(out)) == 0
        records[name] = json.loads(out.read_text())
    assert len(records["dark"]["detections"]) >= 30
    assert records["light"]["detections"] == records["dark"]["detections"]
    assert records["light"]["numbers"] == records["dark"]["numbers"]
    assert len(records["unsaid"]["detections"]) < len(records["dark"]["detections"]) // 2


def test_json_to_stdout_is_one_object_per_image(capsys):
    assert run("--source", str(SAMPLE), "--json", "-") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and json.loads(lines[0])["source"] == str(SAMPLE)


def test_a_folder_with_a_corrupt_photo_reads_the_rest_and_exits_1(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(SAMPLE.read_bytes())
    (folder / "b_broken.jpg").write_bytes(SAMPLE.read_bytes()[:2000])
    (folder / "c.png").write_bytes(b"not an image")
    out_dir, out_csv = tmp_path / "read", tmp_path / "digits.csv"
    assert run("--source", str(folder), "--output", str(out_dir), "--csv", str(out_csv)) == 1
    err = capsys.readouterr().err
    assert "c.png: not a readable image" in err and "Traceback" not in err
    written = sorted(p.name for p in out_dir.iterdir())
    assert "a_read.png" in written
    rows = list(csv.DictReader(out_csv.open()))
    assert rows and {row["source"].rsplit("/", 1)[-1] for row in rows} >= {"a.jpg"}
    assert set(rows[0]) == {"source", "frame", "number", "text", "digit", "confidence", "x", "y", "w", "h", "track"}


def test_a_glob_of_photos_is_read(tmp_path):
    for name in ("p1.jpg", "p2.jpg"):
        (tmp_path / name).write_bytes(SAMPLE.read_bytes())
    out_json = tmp_path / "out.jsonl"
    assert run("--source", str(tmp_path / "p*.jpg"), "--json", str(out_json)) == 0
    assert [json.loads(line)["source"].rsplit("/", 1)[-1] for line in out_json.read_text().splitlines()] == ["p1.jpg", "p2.jpg"]


def test_a_video_gives_one_record_per_frame_and_an_annotated_video_of_the_same_shape(video_path, tmp_path):
    out_json, out_video = tmp_path / "v.jsonl", tmp_path / "v_read.mp4"
    assert run("--source", str(video_path), "--json", str(out_json), "--output", str(out_video), "--max-frames", "10") == 0
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(10))
    assert sum(len(r["detections"]) for r in records) > 20
    written = cv2.VideoCapture(str(out_video))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    assert (int(written.get(cv2.CAP_PROP_FRAME_WIDTH)), int(written.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)
    assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(24.0)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stream_url_is_read(video_path, tmp_path, workers):
    # MJPEG in AVI streams over plain HTTP (MP4 needs seeking, which a stream does not offer).
    streamed = tmp_path / "stream.avi"
    capture, writer = cv2.VideoCapture(str(video_path)), cv2.VideoWriter(str(streamed), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (640, 480))
    ok, image = capture.read()
    while ok:
        writer.write(image)
        ok, image = capture.read()
    writer.release()
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{streamed.name}"
        out_json = tmp_path / "s.jsonl"
        try:
            assert run("--source", url, "--json", str(out_json), "--max-frames", "3", "--workers", workers) == 0
        finally:
            server.shutdown()
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert len(records) == 3 and records[0]["source"] == url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_results_are_on_disk_as_soon_as_each_frame_is_read(video_path, tmp_path):
    out_json = tmp_path / "live.jsonl"
    with open_source(video_path) as source, JsonLinesSink(out_json) as sink:
        frames = read_frames(source, DigitReader(MODEL), [sink], [], annotate=False)
        next(frames)
        # Nothing closed yet, as after a Ctrl-C or a crash: the first frame is already written.
        assert len(out_json.read_text().splitlines()) == 1
        next(frames)
        assert len(out_json.read_text().splitlines()) == 2


def test_a_run_stopped_while_a_frame_is_encoded_counts_every_frame_its_json_holds(video_path, tmp_path):
    from digitrec.pipeline import RunSummary

    class StoppedOnThirdFrame:
        written = 0

        def write(self, image, result):
            self.written += 1
            if self.written == 3:
                raise KeyboardInterrupt  # Ctrl-C while the annotated frame is encoded

    out_json, summary = tmp_path / "read.jsonl", RunSummary()
    with open_source(video_path) as source, JsonLinesSink(out_json) as sink, pytest.raises(KeyboardInterrupt):
        for _ in read_frames(source, DigitReader(MODEL), [sink], [StoppedOnThirdFrame()], annotate=False,
                                  summary=summary):
            pass
    assert summary.frames == len(out_json.read_text().splitlines()) == 3


class _FailingSource(FrameSource):
    """The sample photo as `good` frames of a video, then the error a dead stream raises."""

    def __init__(self, good: int):
        super().__init__()
        self.good = good
        self.fetched = 0

    def __iter__(self):
        image = cv2.imread(str(SAMPLE))
        for index in range(self.good):
            self.fetched += 1
            yield Frame(index=index, image=image, source="failing", time=index / 30.0)
        raise SourceError("the stream died")


def test_every_frame_before_a_source_error_is_read_and_written(tmp_path):
    reader = DigitReader(MODEL)
    image = cv2.imread(str(SAMPLE))
    expected = reader.read(Frame(index=0, image=image, source="failing", time=0.0))
    out_json = tmp_path / "failing.jsonl"
    source = _FailingSource(good=3)
    read = []
    with JsonLinesSink(out_json) as sink, pytest.raises(SourceError, match="died"):
        for frame in read_frames(source, reader, [sink], [], annotate=False):
            read.append(frame.result)
    # Every good frame was read, in order, as reading it alone does, and written before the error.
    assert [result.frame.index for result in read] == [0, 1, 2]
    for result in read:
        assert [(d.box, d.digit) for d in result.detections] == [(d.box, d.digit) for d in expected.detections]
    assert len(out_json.read_text().splitlines()) == 3


def test_no_frame_past_max_frames_is_fetched():
    source = _FailingSource(good=10)
    frames = list(read_frames(source, DigitReader(MODEL), [], [], annotate=False, max_frames=2))
    assert len(frames) == 2 and source.fetched == 2


@pytest.mark.parametrize("args, message", [
    (["--source", "no/such/photo.jpg"], "no such file or folder"),
    (["--source", "9"], "no camera at index 9"),
    (["--source", str(SAMPLE), "--model", "missing.keras"], "no such model file"),
    (["--source", str(SAMPLE), "--pair-model", "missing.keras"], "train.py --pairs"),
    (["--source", str(SAMPLE), "--conf", "1.5"], "--conf must be between 0 and 1"),
    (["--source", str(SAMPLE), "--json", "/no/such/dir/out.jsonl"], "does not exist"),
], ids=["missing-path", "no-camera", "missing-model", "missing-pair-model", "bad-conf", "unwritable-json"])
def test_user_mistakes_exit_2_with_the_fix_and_no_traceback(args, message, capsys):
    assert live_digits.main(["--no-display", "--model", str(MODEL), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["output-is-the-photo", "output-is-the-video", "json-is-csv", "output-is-a-file",
                                  "video-as-png", "one-photo-as-txt", "several-photos-as-one", "unwritable-folder",
                                  "folder-is-a-file"])
def test_outputs_that_would_overwrite_or_mislead_are_refused_before_anything_is_read(case, video_path, tmp_path,
                                                                                   capsys):
    photo = tmp_path / "page.jpg"
    photo.write_bytes(SAMPLE.read_bytes())
    video = tmp_path / "clip.mp4"
    video.write_bytes(video_path.read_bytes())
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(SAMPLE.read_bytes())
    existing = tmp_path / "digits.csv"
    existing.write_text("kept")
    args, message = {
        "output-is-the-photo": (["--source", str(photo), "--output", str(photo)], "is the input it reads"),
        "output-is-the-video": (["--source", str(video), "--output", str(video)], "is the input it reads"),
        "json-is-csv": (["--source", str(photo), "--json", str(tmp_path / "r"), "--csv", str(tmp_path / "r")],
                        "the same file as --json"),
        "output-is-a-file": (["--source", str(folder), "--output", str(existing)], "names a folder"),
        "video-as-png": (["--source", str(video), "--output", str(tmp_path / "read.png")], "not a video name"),
        "one-photo-as-txt": (["--source", str(photo), "--output", str(tmp_path / "read.txt")], "not an image name"),
        "several-photos-as-one": (["--source", str(folder), "--output", str(tmp_path / "read.png")],
                                  "names one image"),
        "unwritable-folder": (["--source", str(photo), "--output", "/proc/read.png"], "cannot be written"),
        "folder-is-a-file": (["--source", str(video), "--output", str(existing / "read.mp4")], "is a file, not a folder"),
    }[case]
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    # Nothing was lost or made.
    assert photo.read_bytes() == SAMPLE.read_bytes() and video.read_bytes() == video_path.read_bytes()
    assert existing.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "digits.csv", "page.jpg", "scans"]


def test_a_refused_output_leaves_the_earlier_results_it_would_have_written_beside(video_path, tmp_path, capsys):
    # --json and --csv name last run's results; --output is refused: those files must not be emptied.
    earlier_json, earlier_csv = tmp_path / "read.jsonl", tmp_path / "read.csv"
    earlier_json.write_text("last run\n")
    earlier_csv.write_text("last run\n")
    assert run("--source", str(video_path), "--json", str(earlier_json), "--csv", str(earlier_csv),
               "--output", str(tmp_path / "read.mkv")) == 2
    assert "not a video name" in capsys.readouterr().err
    assert earlier_json.read_text() == "last run\n" and earlier_csv.read_text() == "last run\n"


def test_an_output_that_is_a_hard_link_to_the_input_is_refused(video_path, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(video_path.read_bytes())
    (tmp_path / "same.mp4").hardlink_to(video)
    assert run("--source", str(video), "--output", str(tmp_path / "same.mp4")) == 2
    assert "is the input it reads" in capsys.readouterr().err
    assert video.read_bytes() == video_path.read_bytes()


def test_annotated_photos_written_into_the_folder_read_never_replace_a_photo_of_it(tmp_path):
    for name in ("a.jpg", "a_read.png"):  # a's annotated copy would be named a_read.png
        cv2.imwrite(str(tmp_path / name), cv2.imread(str(SAMPLE)))
    before = (tmp_path / "a_read.png").read_bytes()
    assert run("--source", str(tmp_path), "--output", str(tmp_path)) == 0
    assert (tmp_path / "a_read.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a_read.png", "a_read_1.png", "a_read_read.png"]


def test_a_file_named_labels_does_not_stop_a_run_without_a_window(tmp_path, monkeypatch):
    # Labelling is the window's: --labels (default labels/) is not looked at headless.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels").write_text("my notes")
    assert run("--source", str(SAMPLE), "--json", str(tmp_path / "a.jsonl")) == 0


def test_a_missing_camera_is_one_line_without_opencvs_backend_warnings(capfd):
    assert live_digits.main(["--no-display", "--model", str(MODEL), "--source", "9"]) == 2
    err = capfd.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "no camera at index 9" in err, err
    import cv2

    assert cv2.utils.logging.getLogLevel() != cv2.utils.logging.LOG_LEVEL_SILENT  # OpenCV's log comes back


def test_pair_model_none_reads_photos_by_cuts_alone(tmp_path, monkeypatch):
    import digitrec.reader as reader_module

    seen = []  # each reader's pair network, as the CLI built it

    real_init = reader_module.DigitReader.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen.append(self.pair_classifier)

    monkeypatch.setattr(reader_module.DigitReader, "__init__", recording_init)
    assert run("--source", str(SAMPLE), "--pair-model", "none", "--json", str(tmp_path / "a.jsonl")) == 0
    assert run("--source", str(SAMPLE), "--json", str(tmp_path / "b.jsonl")) == 0
    shipped = (ROOT / "models" / "pairs.tflite").exists()
    assert seen[0] is None and (seen[1] is not None) == shipped


def test_photo_pair_model_none_reads_photos_by_cuts_alone(tmp_path, monkeypatch):
    import digitrec.reader as reader_module

    seen = []  # each reader's (pair network, photo pair network), as the CLI built them
    real_init = reader_module.DigitReader.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen.append((self.pair_classifier, self.photo_pair_classifier))

    monkeypatch.setattr(reader_module.DigitReader, "__init__", recording_init)
    assert run("--source", str(SAMPLE), "--photo-pair-model", "none", "--json", str(tmp_path / "a.jsonl")) == 0
    assert seen[0][1] is None
    assert (seen[0][0] is not None) == (ROOT / "models" / "pairs.tflite").exists()


def test_a_model_that_is_not_a_digit_model_is_refused(tmp_path, capfd):
    junk = tmp_path / "model.tflite"
    junk.write_bytes(os.urandom(256))
    assert live_digits.main(["--no-display", "--source", str(SAMPLE), "--model", str(junk)]) == 2
    assert "not a readable LiteRT model" in capfd.readouterr().err
    # Garbage beside a .keras model: one line, not the errors of every frontend OpenVINO tries.
    (tmp_path / "model.keras").write_text("garbage")
    (tmp_path / "model.tflite").write_text("garbage")
    assert live_digits.main(["--no-display", "--source", str(SAMPLE), "--model", str(tmp_path / "model.keras")]) == 2
    err = capfd.readouterr().err.strip()
    assert "not a readable LiteRT model" in err and len(err.splitlines()) == 1, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X displays are looked for on Linux only")
def test_a_display_whose_x_server_is_gone_is_not_taken_for_one(monkeypatch):
    # Qt aborts the whole run when it cannot reach DISPLAY; the reader then runs headless instead.
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    number = next(n for n in range(4321, 4400) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    for display, expected in ((f":{number}", False), (f":{number}.0", False), ("", False),
                              ("remote.example:0", True)):
        monkeypatch.setenv("DISPLAY", display)
        assert live_digits.display_available() is expected, display


def test_help_explains_sources_and_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        live_digits.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "camera index, video file, image, folder, glob" in out and "space pause" in out
    # Defaults that mean something are shown once; "no default" is not shown at all.
    flat = " ".join(out.split())
    assert "(default: 0.5)" in flat and "(default: models/digits.keras)" in flat
    assert "chalk on a blackboard" in flat and "(default: dark)" in flat
    assert "(default: None)" not in flat and "(default: False)" not in flat and flat.count("(default: models/") == 1


@pytest.mark.parametrize("source_fps, written_fps", [(0.001, 1.0), (120000.0, 240.0), (25.0, 25.0)])
def test_an_annotated_video_is_written_whatever_frame_rate_the_source_claims(tmp_path, source_fps, written_fps):
    # FFmpeg's MPEG-4 writer refuses a time-lapse's 0.001 fps and a bad header's 120 000 after the first frame.
    from digitrec.sinks import VideoSink
    from digitrec.types import Frame, FrameResult

    path = tmp_path / "read.mp4"
    with VideoSink(path, fps=source_fps) as sink:
        for index in range(5):
            image = np.full((48, 64, 3), 40 * index, np.uint8)
            sink.write(image, FrameResult(Frame(index=index, image=image, source="clip", time=0.0), [], []))
    written = cv2.VideoCapture(str(path))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(written_fps, rel=0.01)


@pytest.mark.parametrize("name", ["read.mp4", "read.avi"])
def test_an_annotated_video_of_odd_size_keeps_its_last_row_and_column(tmp_path, name):
    from digitrec.sinks import VideoSink
    from digitrec.types import Frame, FrameResult

    image = np.full((479, 641, 3), 255, np.uint8)
    image[-4:, :] = 0  # a box drawn along the bottom and right edges
    image[:, -4:] = 0
    with VideoSink(tmp_path / name, fps=10.0) as sink:
        sink.write(image, FrameResult(Frame(index=0, image=image, source="clip", time=0.0), [], []))
    ok, written = cv2.VideoCapture(str(tmp_path / name)).read()
    assert ok and written.shape[:2] == (480, 642)
    assert written[-3, 300].max() < 60 and written[200, -3].max() < 60  # the edges' dark lines are there


def test_csv_rows_run_in_reading_order(tmp_path):
    out_csv, out_json = tmp_path / "digits.csv", tmp_path / "digits.jsonl"
    assert run("--source", str(SAMPLE), "--csv", str(out_csv), "--json", str(out_json)) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(row["number"]) for row in rows] == sorted(int(row["number"]) for row in rows)
    texts = {}  # each number spelled by its rows, in the order they come
    for row in rows:
        texts[int(row["number"])] = texts.get(int(row["number"]), "") + row["digit"]
    numbers = [number["text"] for number in json.loads(out_json.read_text())["numbers"]]  # in reading order
    assert list(texts.values()) == numbers and len(numbers) >= 10


@pytest.mark.parametrize("interval", [0.1, 0.01], ids=["slower-than-the-video", "faster-than-the-video"])
def test_a_live_sources_annotated_video_plays_at_the_speed_it_was_filmed(tmp_path, interval):
    # A stream's frames come when they come (10 or 100 a second here); the video is written at 30 fps.
    from digitrec.sinks import VideoSink
    from digitrec.types import Frame, FrameResult

    path = tmp_path / "live.mp4"
    with VideoSink(path, fps=30.0, live=True) as sink:
        for index in range(21):  # 2 s or 0.2 s of filming
            image = np.full((48, 64, 3), 10 * index, np.uint8)
            sink.write(image, FrameResult(Frame(index=index, image=image, source="cam", time=100 + index * interval),
                                          [], []))
    written = cv2.VideoCapture(str(path))
    seconds = written.get(cv2.CAP_PROP_FRAME_COUNT) / written.get(cv2.CAP_PROP_FPS)
    assert seconds == pytest.approx(20 * interval, abs=2 / 30)


def test_ctrl_c_while_a_stream_is_opened_exits_130_without_a_traceback(monkeypatch, capsys):
    import digitrec.sources

    def interrupted(spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(digitrec.sources, "open_source", interrupted)
    assert run("--source", "http://127.0.0.1:9/video") == 130
    err = capsys.readouterr().err
    assert "Ctrl-C" in err and "Traceback" not in err


def test_a_video_of_varying_frame_rate_is_written_at_the_speed_it_was_filmed_with_every_frame_kept(tmp_path):
    # A phone in low light halves its frame rate: the copy written at the video's 30 fps was a third too short.
    from digitrec.sinks import VideoSink
    from digitrec.types import Frame, FrameResult

    path = tmp_path / "read.avi"  # Motion JPEG: each frame whole, so each can be told by its grey level
    times = [index / 30 for index in range(30)] + [1 + index / 15 for index in range(15)]  # 30 fps, then 15
    times = [at + (0.01 if index % 2 else -0.01) for index, at in enumerate(times)]  # and a little jitter
    with VideoSink(path, fps=30.0) as sink:
        for index, at in enumerate(times):
            image = np.full((48, 64, 3), 5 * index, np.uint8)
            sink.write(image, FrameResult(Frame(index=index, image=image, source="clip", time=at), [], []))
    written = cv2.VideoCapture(str(path))
    assert written.get(cv2.CAP_PROP_FRAME_COUNT) == pytest.approx(30 + 30, abs=1)  # each 15-fps frame held twice
    levels = []
    while (frame := written.read()[1]) is not None:
        levels.append(int(round(frame.mean() / 5)))
    assert sorted(set(levels)) == list(range(45))  # no frame of the file is left out


def test_a_live_videos_stall_is_held_at_most_five_seconds_and_owes_nothing_after(tmp_path):
    from digitrec.sinks import VideoSink
    from digitrec.types import Frame, FrameResult

    path, image = tmp_path / "live.mp4", np.zeros((48, 64, 3), np.uint8)
    times = [0.0, 0.1, 0.2, 20.2, 20.3, 20.4, 20.5]  # 20 s without a frame after the third
    with VideoSink(path, fps=10.0, live=True) as sink:
        for index, at in enumerate(times):
            sink.write(image, FrameResult(Frame(index=index, image=image, source="cam", time=at), [], []))
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == pytest.approx(3 + 50 + 3, abs=2)


def test_a_named_pipe_as_the_json_output_is_not_opened_to_check_it(tmp_path):
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    checked = threading.Thread(target=JsonLinesSink(fifo).check, daemon=True)
    checked.start()
    checked.join(5)  # opening a pipe to write waits for a reader; a second open later may never get one
    assert not checked.is_alive()


def test_an_annotated_photo_never_replaces_a_hard_link_to_a_photo_read(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.imread(str(SAMPLE)))
    (tmp_path / "a_read.png").hardlink_to(tmp_path / "a.jpg")  # a's annotated copy would be named a_read.png
    before = (tmp_path / "a.jpg").read_bytes()
    assert run("--source", str(tmp_path / "a.jpg"), "--output", str(tmp_path)) == 0
    assert (tmp_path / "a.jpg").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a_read.png", "a_read_1.png"]


def test_json_on_stdout_read_by_a_program_that_stops_early_ends_quietly(video_path):
    # `--json - | head -1` ended in a BrokenPipeError traceback.
    import subprocess

    process = subprocess.Popen([sys.executable, "live_digits.py", "--source", str(video_path), "--no-display",
                                "--json", "-"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = json.loads(process.stdout.readline())
    process.stdout.close()  # as head does after one line
    _, errors = process.communicate(timeout=300)
    assert first["frame"] == 0
    assert process.returncode == live_digits.PIPE_CLOSED
    assert b"Traceback" not in errors and b"BrokenPipeError" not in errors


def test_an_output_folder_that_cannot_take_files_is_refused_before_anything_is_read(tmp_path, capsys):
    # Found only at the first annotated image, after its JSON line was written, and blamed on a full disk.
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.full((60, 80, 3), 255, np.uint8))
    out_json = tmp_path / "read.jsonl"
    assert run("--source", str(tmp_path), "--output", "/proc/digitrec_read", "--json", str(out_json)) == 2
    assert "/proc cannot be written to" in capsys.readouterr().err
    assert not out_json.exists()


def test_an_annotated_jpeg_too_wide_for_the_format_names_the_format(tmp_path, capsys):
    strip = tmp_path / "strip.png"
    cv2.imwrite(str(strip), np.full((60, 70_000, 3), 255, np.uint8))
    assert run("--source", str(strip), "--output", str(tmp_path / "strip_read.jpg")) == 2
    error = capsys.readouterr().err
    assert "up to 65535 px a side" in error and "name a .png" in error and "disk full" not in error
    assert not (tmp_path / "strip_read.jpg").exists()
