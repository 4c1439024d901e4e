"""The label store: crops saved from the window come back as the very images the classifier read."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.labels import (
    INDEX_NAME,
    RAW_FOLDER,
    LabelFolderError,
    LabelStore,
    box_at,
    load_labelled_crops,
    model_input_from_frame,
    read_index,
    reading_order,
)
from digitrec.reader import DigitReader
from digitrec.synth import StrokeGlyphs, make_page
from digitrec.types import Detection, Frame

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"


@pytest.fixture(scope="module")
def read_page():
    """A clean synthetic page read by the shipped model: (frame, result, classifier)."""
    page = make_page(21, StrokeGlyphs(), "clean", (960, 540))
    frame = Frame(index=17, image=page.image, source="clips/desk page.mp4", time=0.0)
    reader = DigitReader(MODEL)
    result = reader.read(frame)
    assert len(result.detections) >= 8, "the page should hold enough digits to label"
    return frame, result, reader.classifier


def test_labelled_crops_round_trip_as_the_images_the_classifier_read(read_page, tmp_path):
    frame, result, classifier = read_page
    store = LabelStore(tmp_path / "labels")
    # Label every box with a digit of our choosing (not the model's), as a user correcting it would.
    chosen = [(index * 3) % 10 for index in range(len(result.detections))]
    saved = [store.add_detection(frame, detection, digit) for detection, digit in zip(result.detections, chosen)]

    crops = load_labelled_crops(tmp_path / "labels")
    assert len(crops.labels) == len(chosen) and store.added == len(chosen)
    by_path = {path: row for row, path in enumerate(crops.paths)}
    for detection, digit, crop in zip(result.detections, chosen, saved):
        assert crop.image_path.parent.name == str(digit) and crop.image_path.name.startswith("desk-page_17_")
        row = by_path[crop.image_path]
        assert crops.labels[row] == digit
        if detection.image is None:
            # One of two touching digits that the pair network read whole, with no cut between them that the
            # classifier read: its half is cut again from the frame, as the label store does for any box.
            assert np.array_equal(np.round(crops.images[row] * 255),
                                  np.round(model_input_from_frame(frame.image, detection.box) * 255))
        else:
            # The stored crop is the classifier's own input, quantised to 8 bits like MNIST...
            assert np.array_equal(np.round(crops.images[row] * 255), np.round(detection.image * 255))
            # ... so the classifier reads it as it read the frame.
            reread = classifier.probabilities(crops.images[row][None, ..., None])[0, :10]
            assert reread.argmax() == detection.digit
            assert np.abs(reread - detection.probabilities).max() < 0.05
        # The raw crop is the frame's pixels round the box, with paper to spare on every side inside the frame.
        raw = cv2.imread(str(crop.raw_path))
        x, y, w, h = detection.box
        assert raw.shape[0] > h and raw.shape[1] > w
        assert crop.raw_path.parent.name == RAW_FOLDER

    index = read_index(tmp_path / "labels")
    assert [entry.digit for entry in index] == chosen
    assert [entry.box for entry in index] == [tuple(d.box) for d in result.detections]
    record = json.loads((tmp_path / "labels" / INDEX_NAME).read_text().splitlines()[0])
    rx, ry, rw, rh = record["raw_box"]
    assert np.array_equal(cv2.imread(str(tmp_path / "labels" / record["raw"])), frame.image[ry : ry + rh, rx : rx + rw])
    assert record["source"] == frame.source and record["frame"] == 17


def test_labelling_the_same_box_again_replaces_its_label_and_another_frame_adds_a_crop(read_page, tmp_path):
    frame, result, _ = read_page
    store = LabelStore(tmp_path)
    first = store.add_detection(frame, result.detections[0], 4)
    assert store.earlier_label(frame, result.detections[0].box) == 4
    second = store.add_detection(frame, result.detections[0], 1)  # a slip corrected: fine-tuning never sees both
    assert first.image_path != second.image_path and not first.image_path.exists() and not first.raw_path.exists()
    assert load_labelled_crops(tmp_path).labels.tolist() == [1] and store.added == 1
    later = Frame(index=frame.index + 1, image=frame.image, source=frame.source, time=0.0)
    third = store.add_detection(later, result.detections[0], 1)  # the same place in the next frame: a new crop
    assert second.image_path.exists() and third.image_path.exists() and store.added == 2
    assert len(load_labelled_crops(tmp_path).labels) == 2


def test_a_label_folder_that_cannot_be_written_is_told_with_the_fix(read_page, tmp_path):
    frame, result, _ = read_page
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(LabelFolderError, match="cannot be saved there.*--labels DIR"):
        LabelStore(blocker / "labels").add_detection(frame, result.detections[0], 4)


def test_moving_a_crop_to_another_digit_folder_relabels_it(read_page, tmp_path):
    frame, result, _ = read_page
    crop = LabelStore(tmp_path).add_detection(frame, result.detections[0], 1)
    (tmp_path / "7").mkdir()
    crop.image_path.rename(tmp_path / "7" / crop.image_path.name)
    assert load_labelled_crops(tmp_path).labels.tolist() == [7]


def test_a_crop_cut_from_the_frame_alone_reads_like_the_readers_own(read_page):
    frame, result, classifier = read_page
    recut = np.stack([model_input_from_frame(frame.image, d.box) for d in result.detections])
    digits = classifier.probabilities(recut[..., None])[:, :10].argmax(axis=1)
    agree = np.mean(digits == [d.digit for d in result.detections])
    assert agree >= 0.9, agree


def test_a_crop_cut_again_from_a_page_of_light_ink_is_the_one_cut_from_the_same_page_dark(read_page, tmp_path):
    frame, result, _ = read_page
    inverted = Frame(index=frame.index, image=255 - frame.image, source=frame.source, time=frame.time)
    box = result.detections[0].box
    saved = LabelStore(tmp_path / "labels", ink="light").add(inverted, box, 3)
    assert np.array_equal(cv2.imread(str(saved.image_path), cv2.IMREAD_GRAYSCALE),
                          np.round(model_input_from_frame(frame.image, box) * 255).astype(np.uint8))


def test_labels_outside_0_to_9_are_refused(read_page, tmp_path):
    frame, result, _ = read_page
    with pytest.raises(ValueError, match="0-9"):
        LabelStore(tmp_path).add_detection(frame, result.detections[0], 10)


def test_bad_label_folders_are_refused_with_the_fix(tmp_path):
    with pytest.raises(LabelFolderError, match="no such folder.*live_digits.py --labels"):
        load_labelled_crops(tmp_path / "missing")
    a_file = tmp_path / "labels.txt"
    a_file.write_text("3")
    with pytest.raises(LabelFolderError, match="is a file"):
        load_labelled_crops(a_file)
    with pytest.raises(LabelFolderError, match="is a file"):
        LabelStore(a_file)
    empty = tmp_path / "empty"
    (empty / "3").mkdir(parents=True)
    with pytest.raises(LabelFolderError, match="holds no labelled crops"):
        load_labelled_crops(empty)
    wrong = tmp_path / "wrong"
    (wrong / "5").mkdir(parents=True)
    cv2.imwrite(str(wrong / "5" / "photo.png"), np.zeros((40, 30, 3), np.uint8))
    with pytest.raises(LabelFolderError, match=r"photo.png: of shape \(40, 30, 3\), not a 28x28 grey crop"):
        load_labelled_crops(wrong)
    (wrong / "5" / "photo.png").write_bytes(b"not a png")
    with pytest.raises(LabelFolderError, match="photo.png: unreadable"):
        load_labelled_crops(wrong)
    (wrong / INDEX_NAME).write_text('{"digit": 5, "image": "5/a.png"\n')
    with pytest.raises(LabelFolderError, match=r"index.jsonl, line 1: not a crop record"):
        read_index(wrong)


def test_a_click_picks_the_box_under_it_or_the_nearest_close_one():
    boxes = [(10, 10, 40, 60), (100, 10, 40, 60), (110, 20, 10, 10)]
    assert box_at(boxes, (30, 40)) == 0
    assert box_at(boxes, (115, 25)) == 2  # nested: the smaller box
    assert box_at(boxes, (60, 40)) == 0  # just beside the first box
    assert box_at(boxes, (400, 400)) is None
    assert box_at([], (1, 1)) is None


def test_labelling_steps_through_numbers_in_reading_order_not_across_lines():
    # Sorted by x alone, Tab jumped between the lines: 9 -> 5 -> 1 -> 4.
    detections = [Detection((10, 100, 8, 12), 5, 0.9, number=1), Detection((40, 10, 8, 12), 1, 0.9, number=0),
                  Detection((5, 10, 8, 12), 9, 0.9, number=0), Detection((200, 50, 8, 12), 7, 0.9),
                  Detection((30, 100, 8, 12), 4, 0.9, number=1)]
    assert [detections[index].digit for index in reading_order(detections)] == [9, 1, 5, 4, 7]
    assert reading_order([]) == []
