"""Tracking digits across frames: stable ids through shake, voted labels, coasting, leaving and re-entering."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.track import DEFAULT_TRACKING, DigitTracker, estimate_shift
from digitrec.types import Detection, Frame, FrameResult

WIDTH, HEIGHT = 640, 480
DIGIT_H = 40
LAYOUT = [(100, 100, 3), (130, 100, 1), (160, 102, 4), (300, 200, 5), (330, 198, 9), (120, 320, 2)]
"""(x, y, digit) of the hand-made page: "314", "59" and "2"."""


def _probabilities(digit: int, confidence: float = 0.97) -> np.ndarray:
    spread = np.full(10, (1 - confidence) / 9)
    spread[digit] = confidence
    return spread


def _frame(index: int, shift=(0, 0), labels: dict[int, int] | None = None, missing=()) -> FrameResult:
    """The page moved by `shift`, with some digits read as other `labels` and some `missing`."""
    labels = labels or {}
    detections = []
    for which, (x, y, digit) in enumerate(LAYOUT):
        if which in missing:
            continue
        read = labels.get(which, digit)
        box = (int(x + shift[0]), int(y + shift[1]), 24, DIGIT_H)
        detections.append(Detection(box, read, 0.97, probabilities=_probabilities(read)))
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    return FrameResult(Frame(index, image, "test", index / 30), detections, [])


def _by_truth(result: FrameResult, shift) -> dict[int, Detection]:
    """Reported detections keyed by which LAYOUT digit they sit on."""
    found = {}
    for detection in result.detections:
        for which, (x, y, _) in enumerate(LAYOUT):
            if abs(detection.box[0] - x - shift[0]) <= 3 and abs(detection.box[1] - y - shift[1]) <= 3:
                found[which] = detection
    return found


def _shake(frames: int, step: float, seed: int = 0) -> np.ndarray:
    """A hand-held path: a random walk with steps of up to `step` pixels."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.uniform(-step, step, (frames, 2)), axis=0)


def test_the_first_frame_is_reported_whole_with_an_id_per_digit():
    result = DigitTracker().update(_frame(0))
    assert sorted(d.digit for d in result.detections) == sorted(d for _, _, d in LAYOUT)
    assert len({d.track_id for d in result.detections}) == len(LAYOUT)
    assert [n.text for n in result.numbers] == ["314", "59", "2"]


@pytest.mark.parametrize("step", [4.0, 30.0])
def test_ids_stay_the_same_through_a_shaken_sequence(step):
    # 30 px a frame is most of a digit-to-digit gap: only the page-shift estimate keeps ids apart.
    tracker = DigitTracker()
    path = _shake(40, step)
    first = _by_truth(tracker.update(_frame(0, path[0])), path[0])
    for index in range(1, len(path)):
        found = _by_truth(tracker.update(_frame(index, path[index])), path[index])
        assert {k: d.track_id for k, d in found.items()} == {k: d.track_id for k, d in first.items()}


def test_page_shift_larger_than_the_gap_between_digits_is_found():
    previous = np.array([[100.0, 100.0], [130.0, 100.0], [160.0, 100.0], [300.0, 200.0]])
    moved = previous + [45.0, -12.0]
    shift = estimate_shift(previous, moved[::-1], DIGIT_H, DEFAULT_TRACKING)
    assert shift == pytest.approx([45.0, -12.0])


def test_a_label_flicker_in_one_frame_is_voted_away():
    tracker = DigitTracker()
    for index in range(6):
        tracker.update(_frame(index))
    flickered = tracker.update(_frame(6, labels={0: 8, 4: 4}))
    assert _by_truth(flickered, (0, 0))[0].digit == 3 and _by_truth(flickered, (0, 0))[4].digit == 9
    assert [n.text for n in flickered.numbers] == ["314", "59", "2"]


def test_a_lasting_change_of_reading_does_change_the_label():
    tracker = DigitTracker()
    for index in range(6):
        tracker.update(_frame(index))
    labels = [_by_truth(tracker.update(_frame(6 + k, labels={0: 8})), (0, 0))[0].digit for k in range(12)]
    assert labels[0] == 3 and labels[-1] == 8
    assert labels == sorted(labels, key=lambda digit: digit == 8)  # it changes once and stays changed


def test_a_digit_missing_for_a_frame_keeps_its_id_and_is_still_reported():
    tracker = DigitTracker()
    path = _shake(12, 3.0, seed=1)
    for index in range(8):
        before = _by_truth(tracker.update(_frame(index, path[index])), path[index])
    gone = _by_truth(tracker.update(_frame(8, path[8], missing={3})), path[8])
    assert gone[3].track_id == before[3].track_id and gone[3].digit == 5
    back = _by_truth(tracker.update(_frame(9, path[9])), path[9])
    assert back[3].track_id == before[3].track_id


def test_a_tracked_digit_carries_the_crop_the_classifier_read_this_frame_for_labelling():
    # The window saves a labelled digit's crop from the tracked detection: without the classifier's own crop it
    # was cut again from the frame with another threshold, so fine-tuning learnt from what the reader never saw.
    tracker = DigitTracker()
    path = _shake(10, 3.0, seed=2)
    for index in range(9):
        result = _frame(index, path[index], missing={3} if index == 8 else ())
        for which, detection in enumerate(d for d in result.detections):
            detection.image = np.full((28, 28), index * 10 + which, np.float32)
        tracked = _by_truth(tracker.update(result), path[index])
    read = {which: float(detection.image[0, 0]) for which, detection in tracked.items() if detection.image is not None}
    present = [which for which in range(len(LAYOUT)) if which != 3]
    assert read == {which: 80 + position for position, which in enumerate(present)}
    assert 3 in tracked and tracked[3].image is None  # coasting at its predicted box: no crop of this frame


def test_a_digit_leaving_for_long_is_dropped_and_comes_back_under_a_new_id():
    tracker = DigitTracker()
    for index in range(8):
        before = _by_truth(tracker.update(_frame(index)), (0, 0))
    away = range(8, 8 + DEFAULT_TRACKING.max_missed + 2)
    for index in away:
        result = _by_truth(tracker.update(_frame(index, missing={5})), (0, 0))
        assert (5 in result) == (index - 8 < DEFAULT_TRACKING.coast)
    returned = [_by_truth(tracker.update(_frame(away[-1] + k)), (0, 0)) for k in (1, 2)]
    assert returned[-1][5].digit == 2 and returned[-1][5].track_id != before[5].track_id
    assert returned[-1][0].track_id == before[0].track_id


def test_a_new_unsure_detection_waits_for_a_second_frame():
    tracker = DigitTracker()
    tracker.update(_frame(0))
    unsure = _frame(1)
    unsure.detections.append(Detection((500, 400, 24, 40), 7, 0.6, probabilities=_probabilities(7, 0.6)))
    assert all(d.box != (500, 400, 24, 40) for d in tracker.update(unsure).detections)
    again = _frame(2)
    again.detections.append(Detection((501, 400, 24, 40), 7, 0.6, probabilities=_probabilities(7, 0.6)))
    assert any(d.box == (501, 400, 24, 40) and d.digit == 7 for d in tracker.update(again).detections)


def test_track_ids_are_in_the_json_of_a_generated_video(tmp_path):
    import json

    import live_digits
    from digitrec.synth import StrokeGlyphs, make_video, write_video

    video = write_video(make_video(5, StrokeGlyphs(), frames=10, size=(640, 480)), tmp_path / "clip.mp4", fps=10.0)
    out = tmp_path / "clip.jsonl"
    assert live_digits.main(["--no-display", "--source", str(video), "--json", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 10
    tracks_per_frame = [{d["track"] for d in record["detections"]} for record in records]
    assert all(len(tracks) == len(record["detections"]) > 0 for tracks, record in zip(tracks_per_frame, records))
    # The same page throughout: most digits keep their id from the first frame to the last.
    assert len(tracks_per_frame[0] & tracks_per_frame[-1]) >= 0.8 * len(tracks_per_frame[0])


def test_a_still_image_is_read_without_track_ids(tmp_path):
    import json

    import live_digits

    sample = live_digits.__file__.rsplit("/", 1)[0] + "/samples/page.jpg"
    out = tmp_path / "page.jsonl"
    assert live_digits.main(["--no-display", "--source", sample, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["detections"] and all("track" not in d for d in record["detections"])
