"""Reading on several processes: the same results as one process, in order, and clear failures."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

import live_digits
from digitrec.classify import ModelFileError
from digitrec.parallel import ParallelReader, WorkerError
from digitrec.reader import DigitReader
from digitrec.segment import DEFAULT_SEGMENTATION
from digitrec.synth import StrokeGlyphs, make_page, make_page_mosaic, make_touching_pair, make_video, write_video
from digitrec.types import Frame

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"


@pytest.fixture(scope="module")
def video():
    return make_video(11, StrokeGlyphs(), frames=8, size=(640, 480))


@pytest.fixture(scope="module")
def parallel_reader():
    with ParallelReader(MODEL, workers=2) as reader:
        yield reader


def _frames(video) -> list[Frame]:
    return [Frame(index=i, image=image, source="clip", time=i / 30) for i, image in enumerate(video.frames)]


def _summary(result):
    return ([(d.box, d.digit, round(d.confidence, 6)) for d in result.detections],
            [(n.text, n.box) for n in result.numbers], result.rejected)


@pytest.mark.parametrize("overlap", [True, False], ids=["file", "live"])
def test_results_are_those_of_one_reader_in_frame_order(video, parallel_reader, overlap):
    frames = _frames(video)
    expected = [DigitReader(MODEL).read(frame) for frame in frames]
    results = list(parallel_reader.read_stream(frames, overlap=overlap))
    assert [r.frame.index for r in results] == list(range(len(frames)))
    assert all(r.frame is f for r, f in zip(results, frames))  # the caller's frame, not a copy
    assert [_summary(r) for r in results] == [_summary(e) for e in expected]
    assert sum(len(r.detections) for r in results) > 8 * 5
    assert all(np.allclose(r.probabilities, e.probabilities) for res, exp in zip(results, expected)
               for r, e in zip(res.detections, exp.detections))


def test_frames_of_other_sizes_and_a_stream_left_early_do_not_disturb_the_next(video, parallel_reader):
    frames = _frames(video)
    stream = parallel_reader.read_stream(frames)
    next(stream)
    stream.close()  # frames already handed out are collected, not delivered to the next run
    small = Frame(index=0, image=np.ascontiguousarray(video.frames[0][:240, :320]), source="crop", time=0.0)
    large = Frame(index=1, image=np.concatenate([video.frames[1]] * 2), source="tall", time=0.0)
    results = list(parallel_reader.read_stream([small, large, frames[2]]))
    assert [r.frame.source for r in results] == ["crop", "tall", "clip"]
    one_process = DigitReader(MODEL)
    assert [_summary(r) for r in results] == [_summary(one_process.read(f)) for f in (small, large, frames[2])]


def test_a_live_sources_result_is_given_before_its_next_frame_comes(video, parallel_reader):
    # A camera's next frame is a frame interval away. The workers were dealt two frames each, so each result
    # waited for the next three frames to come: 100 ms late at 30 fps (here 0.4 s apart, to be clear of load).
    import time

    came = {}

    def camera():
        for frame in _frames(video)[:5]:
            came[frame.index] = time.monotonic()
            yield frame
            time.sleep(0.4)

    given = {}
    for result in parallel_reader.read_stream(camera(), overlap=False):
        given[result.frame.index] = time.monotonic()
    assert sorted(given) == list(range(5))
    assert all(given[index] < came[index + 1] for index in range(4)), (came, given)


def test_a_live_source_that_fails_gives_every_result_before_its_error(video, parallel_reader):
    def stream():
        yield from _frames(video)[:3]
        raise OSError("the stream dropped")

    results = []
    with pytest.raises(OSError, match="dropped"):
        for result in parallel_reader.read_stream(stream(), overlap=False):
            results.append(result)
    assert [r.frame.index for r in results] == [0, 1, 2]
    assert len(parallel_reader.read(_frames(video)[3]).detections) > 5  # nothing left in flight


def test_a_still_photo_is_read_as_one_by_the_workers(parallel_reader):
    pairs = [make_touching_pair(seed, StrokeGlyphs()) for seed in range(12)]
    photos = [Frame(index=0, image=pair.page.image, source=f"pair{i}.png", time=0.0, still=True)
              for i, pair in enumerate(pairs)]
    one_process = DigitReader(MODEL)
    expected = [_summary(one_process.read(photo)) for photo in photos]
    assert [_summary(r) for r in parallel_reader.read_stream(photos)] == expected
    as_video = [_summary(one_process.read(dataclasses.replace(photo, still=False))) for photo in photos]
    assert as_video != expected  # narrow blobs were cut on the photos only


def test_large_and_cropped_photos_are_segmented_by_the_workers_as_by_one_reader(parallel_reader):
    photo = Frame(index=0, image=make_page_mosaic(60, StrokeGlyphs(), 2).image, source="four pages.jpg", time=0.0,
                  still=True)
    expected = _summary(DigitReader(MODEL).read(photo))
    assert [_summary(r) for r in parallel_reader.read_stream([photo])] == [expected]
    assert len(expected[0]) > 40
    # a photo cropped round one digit, looked at again inside a margin of its paper (the workers get its ink channel)
    page = make_page(61, StrokeGlyphs(), "clean")
    x, y, w, h = page.digits[0].box
    crop = Frame(index=0, image=page.image[y - 2 : y + h + 2, x - 2 : x + w + 2].copy(), source="one digit.png",
                 time=0.0, still=True)
    expected = _summary(DigitReader(MODEL).read(crop))
    assert [_summary(r) for r in parallel_reader.read_stream([crop])] == [expected]
    assert [digit for _, digit, _ in expected[0]] == [page.digits[0].digit]


def test_a_frame_the_reader_cannot_read_names_its_frame(parallel_reader):
    broken = Frame(index=7, image=np.zeros((2, 2, 3), np.uint8), source="broken.mp4", time=0.0)
    broken.image = np.zeros((0, 0, 3), np.uint8)  # past the check a Frame makes of its image, as a bug might
    with pytest.raises(WorkerError, match="frame 7 of broken.mp4"):
        list(parallel_reader.read_stream([broken]))
    good = Frame(index=0, image=np.full((120, 160, 3), 255, np.uint8), source="blank", time=0.0)
    assert parallel_reader.read(good).detections == []  # the workers live on after a bad frame


def test_a_closed_reader_says_so(video):
    reader = ParallelReader(MODEL, workers=1)
    assert len(reader.read(_frames(video)[0]).detections) > 5
    reader.close()
    with pytest.raises(WorkerError, match="closed"):
        reader.read(_frames(video)[0])


def test_ctrl_c_is_the_parents_to_handle_not_the_workers(video, capfd):
    # A terminal's Ctrl-C reaches every process of the group; each worker printed its KeyboardInterrupt traceback.
    import os
    import signal
    import time

    with ParallelReader(MODEL, workers=2) as reader:
        for process in reader._processes:
            os.kill(process.pid, signal.SIGINT)
        time.sleep(0.5)
        assert all(process.is_alive() for process in reader._processes)
        assert len(reader.read(_frames(video)[0]).detections) > 5
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_workers_that_died_are_reported_not_waited_for(video):
    reader = ParallelReader(MODEL, workers=2)
    for process in reader._processes:  # as the OS would, out of memory
        process.kill()
        process.join()
    with pytest.raises(WorkerError, match="died"):
        reader.read(_frames(video)[0])


@pytest.mark.skipif(not (ROOT / "models" / "pairs.tflite").exists(), reason="no pair network shipped in models/")
def test_the_workers_read_touching_pairs_with_the_pair_network_or_without_it(mnist_path, parallel_reader):
    from digitrec.evaluation import load_glyphs

    glyphs = load_glyphs(mnist_path, 2)
    photos = [Frame(index=i, image=make_touching_pair(11_200_000 + i, glyphs).page.image, source="p", time=0.0,
                    still=True) for i in range(12)]
    with_pairs = [_summary(DigitReader(MODEL).read(f)) for f in photos]
    cuts_alone = [_summary(DigitReader(MODEL, pair_model=None).read(f)) for f in photos]
    assert with_pairs != cuts_alone  # these photos are read differently by the pair network
    assert [_summary(r) for r in parallel_reader.read_stream(photos)] == with_pairs
    with ParallelReader(MODEL, workers=2, pair_model=None) as reader:
        assert [_summary(r) for r in reader.read_stream(photos)] == cuts_alone


def test_a_script_without_a_main_guard_is_told_what_to_add(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(f"from digitrec.parallel import ParallelReader\nParallelReader({str(MODEL)!r}, workers=1)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr.splitlines()[-1]
    assert "can only join a started process" not in done.stderr


def test_a_wrong_model_file_is_reported_from_the_workers(tmp_path):
    junk = tmp_path / "model.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a readable LiteRT model"):
        ParallelReader(junk, workers=2)


def test_the_cli_writes_the_same_json_with_two_workers(video, tmp_path, capsys):
    path = write_video(video, tmp_path / "clip.mp4", fps=30.0)
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.jsonl"
        assert live_digits.main(["--no-display", "--model", str(MODEL), "--source", str(path),
                                 "--json", str(out), "--workers", workers]) == 0
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])
    assert len(outputs[0]) == 8 and outputs[0] == outputs[1]
    assert live_digits.main(["--no-display", "--source", str(path), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_light_ink_on_two_workers_reads_as_the_same_page_written_dark(video, tmp_path):
    frames = _frames(video)[:3]
    expected = [DigitReader(MODEL).read(frame) for frame in frames]
    inverted = [dataclasses.replace(frame, image=255 - frame.image) for frame in frames]
    light = dataclasses.replace(DEFAULT_SEGMENTATION, ink="light")
    with ParallelReader(MODEL, workers=2, segmentation=light) as reader:
        results = list(reader.read_stream(inverted))
    assert [_summary(r) for r in results] == [_summary(e) for e in expected]
    assert sum(len(r.detections) for r in results) > 3 * 5


def test_a_reader_keeps_opencv_on_one_thread_and_reads_the_same_as_on_several(video):
    import cv2

    frames = _frames(video)
    try:
        cv2.setNumThreads(2)
        several = DigitReader(MODEL, opencv_threads=None)  # OpenCV left as the caller set it
        assert cv2.getNumThreads() == 2
        on_several = [_summary(several.read(frame)) for frame in frames]
        one = DigitReader(MODEL, classifier=several.classifier)
        assert cv2.getNumThreads() == 1
        assert [_summary(one.read(frame)) for frame in frames] == on_several
        assert sum(len(detections) for detections, _, _ in on_several) > 0
    finally:
        cv2.setNumThreads(1)


def test_sigterm_stops_a_run_on_two_workers_as_ctrl_c_does(video, tmp_path):
    # `timeout`, `docker stop`, systemd: the parent died at once, leaving its shared memory, and each worker printed
    # two BrokenPipeError tracebacks; sent to the workers too, they died and the run ended "a reader process died".
    import signal
    import subprocess
    import sys

    from digitrec.synth import SyntheticVideo

    long = SyntheticVideo(list(video.frames) * 40, list(video.truth) * 40, video.condition, video.fps)
    path = write_video(long, tmp_path / "long.mp4", fps=30.0)
    process = subprocess.Popen([sys.executable, "live_digits.py", "--no-display", "--model", str(MODEL), "--source",
                                str(path), "--json", "-", "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = process.stdout.readline()
    os.killpg(process.pid, signal.SIGTERM)  # as `timeout` and systemd do: to every process of the group
    rest, errors = process.communicate(timeout=120)
    records = [json.loads(line) for line in (first + rest).splitlines()]
    assert process.returncode == live_digits.stop_words(live_digits.Terminated())[1] == 143
    assert 1 <= len(records) < 320 and [r["frame"] for r in records] == list(range(len(records)))
    assert "Traceback" not in errors and "leaked shared_memory" not in errors
    assert "stopped by SIGTERM, everything read so far is written" in errors


class _EndlessCamera:
    """A network camera as OpenCV opens it: no frame count, a frame every 20 ms, for ever."""

    def __init__(self, frames):
        self.frames, self.count = frames, 0

    def isOpened(self):
        return True

    def get(self, prop):
        return 0.0

    def read(self):
        import time

        time.sleep(0.02)
        self.count += 1
        return True, self.frames[self.count % len(self.frames)].copy()

    def release(self):
        pass


def test_the_cli_reads_a_live_stream_on_two_workers_through_the_live_path(video, tmp_path, monkeypatch):
    from digitrec import sources

    monkeypatch.setattr(sources, "open_network_capture", lambda url: _EndlessCamera(video.frames))
    live_runs = []
    read_live = ParallelReader._read_live
    monkeypatch.setattr(ParallelReader, "_read_live",
                        lambda self, frames: live_runs.append(1) or read_live(self, frames))
    out = tmp_path / "live.jsonl"
    assert live_digits.main(["--no-display", "--model", str(MODEL), "--source", "rtsp://camera.test/live",
                             "--json", str(out), "--workers", "2", "--max-frames", "6"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert live_runs == [1]
    assert [r["frame"] for r in records] == list(range(6))
    assert all(r["source"] == "rtsp://camera.test/live" and len(r["detections"]) > 5 for r in records)
