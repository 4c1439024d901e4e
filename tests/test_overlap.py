"""Classifying one frame while the next is prepared: the same results, in order, for files only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitrec.pipeline import read_frames
from digitrec.reader import DigitReader
from digitrec.sources import FrameSource
from digitrec.synth import StrokeGlyphs, make_video
from digitrec.types import Frame

MODEL = Path(__file__).resolve().parent.parent / "models" / "digits.keras"


@pytest.fixture(scope="module")
def frames():
    video = make_video(23, StrokeGlyphs(), frames=8, size=(640, 480))
    return [Frame(index=i, image=image, source="clip", time=i / 30) for i, image in enumerate(video.frames)]


@pytest.fixture(scope="module")
def reader():
    return DigitReader(MODEL)


def _summary(result):
    return (result.frame.index, [(d.box, d.digit, d.confidence, d.probabilities.tobytes(), d.image.tobytes())
                                 for d in result.detections],
            [(n.text, n.box) for n in result.numbers], result.rejected)


def test_overlapped_reading_gives_the_serial_results_in_order_with_their_masks(frames, reader):
    serial, serial_masks = [], []
    for result in reader.read_stream(frames, overlap=False):
        serial.append(_summary(result))
        serial_masks.append(reader.last_mask.copy())
    overlapped, overlapped_masks = [], []
    for result in reader.read_stream(frames, overlap=True):
        overlapped.append(_summary(result))
        overlapped_masks.append(reader.last_mask.copy())  # the window shows the mask of the result shown
    assert overlapped == serial
    assert [index for index, *_ in serial] == list(range(len(frames)))
    assert sum(len(detections) for _, detections, _, _ in serial) > 3 * len(frames)
    for serial_mask, overlapped_mask in zip(serial_masks, overlapped_masks):
        np.testing.assert_array_equal(overlapped_mask, serial_mask)
    assert all({"segment", "normalise", "classify", "group"} <= set(r.timings) for r in reader.read_stream(frames[:2], overlap=True))


class _RecordingSource(FrameSource):
    """Frames from memory, noting in `events` when each is taken."""

    def __init__(self, frames, live: bool, events: list):
        super().__init__()
        self.frames, self.live, self.events, self.name = frames, live, events, "recorded"

    def __iter__(self):
        for frame in self.frames:
            self.events.append(("taken", frame.index))
            yield frame


@pytest.mark.parametrize("live", [False, True])
def test_a_files_results_wait_for_its_next_frame_but_a_cameras_do_not(frames, reader, live):
    events: list = []
    source = _RecordingSource(frames[:4], live, events)
    for read in read_frames(source, reader, [], [], annotate=False):
        events.append(("result", read.result.frame.index))
    if live:  # each frame read as it comes
        assert events == [(kind, i) for i in range(4) for kind in ("taken", "result")]
    else:  # frame i's result once frame i + 1 has been taken (and prepared)
        assert events == [("taken", 0)] + [event for i in range(3) for event in (("taken", i + 1), ("result", i))] + [
            ("result", 3)]


def test_a_failure_while_classifying_reaches_the_caller(frames):
    class Failing:
        num_outputs = 11

        def probabilities(self, batch):
            raise RuntimeError("the classifier failed")

    with pytest.raises(RuntimeError, match="the classifier failed"):
        list(DigitReader(MODEL, classifier=Failing()).read_stream(frames[:3], overlap=True))


def test_the_overlapped_classifier_is_the_same_model_on_one_thread_made_once(reader, frames):
    from digitrec.classify import DigitClassifier

    one = reader.classifier.with_threads(1)
    assert one is not reader.classifier and one is reader.classifier.with_threads(1)
    assert reader.classifier.with_threads(reader.classifier.num_threads) is reader.classifier
    batch = reader._prepare(frames[0]).batch
    assert len(batch) > 5
    np.testing.assert_array_equal(one.probabilities(batch), reader.classifier.probabilities(batch))
    assert isinstance(one, DigitClassifier) and one.runtime == reader.classifier.runtime != "keras-compiled"


def test_the_frame_before_a_failure_is_still_read(frames, reader):
    def failing_after_three():
        yield from frames[:3]
        raise OSError("the video broke off")

    read = []
    with pytest.raises(OSError, match="broke off"):
        for result in reader.read_stream(failing_after_three(), overlap=True):
            read.append(_summary(result))
    assert read == [_summary(result) for result in reader.read_stream(frames[:3], overlap=False)]
