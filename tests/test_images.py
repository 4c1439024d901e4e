"""The arrays developers hand the library: converted to what the reader reads, or refused naming the fix.

Before `images.frame_image`, a 16-bit grey image or a (h, w, 1) one crashed Python (a numba pass indexing past
its table), BGRA gave other numbers, and floats in 0..1 read nothing, all without an error.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.annotate import BOX_COLOUR, draw_result
from digitrec.classify import DigitClassifier
from digitrec.normalise import ink_mask
from digitrec.reader import DigitReader
from digitrec.sinks import VideoSink
from digitrec.synth import StrokeGlyphs, make_page
from digitrec.track import DigitTracker
from digitrec.types import Frame

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"


@pytest.fixture(scope="module")
def reader() -> DigitReader:
    return DigitReader(MODEL)


@pytest.fixture(scope="module")
def page():
    return make_page(5, StrokeGlyphs(), "clean", (960, 540))


def _texts(reader, image, still=True) -> list[str]:
    return [number.text for number in reader.read(Frame(0, image, "x", 0.0, still=still)).numbers]


def test_grey_colour_16_bit_float_and_transparent_arrays_read_as_their_8_bit_page(reader, page):
    colour = page.image
    grey = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    as_colour, as_grey = _texts(reader, colour), _texts(reader, grey)
    assert as_colour == [number.text for number in page.numbers]
    assert len(as_grey) >= len(page.numbers) - 1  # grey is luminance, not the darkest channel: nearly the same
    transparent = np.zeros((*grey.shape, 4), np.uint8)  # the ink alone, on nothing, as a canvas exports it
    transparent[..., 3] = 255 - grey
    for image, expected in [
        (grey.astype(np.uint16) * 257, as_grey),  # a 16-bit PNG read with IMREAD_UNCHANGED
        (grey[:, :, None], as_grey),
        (grey.astype(np.float32) / 255, as_grey),
        (grey.astype(np.int64), as_grey),
        (grey.astype(np.uint16), as_grey),  # 16 bits holding 0..255: kept, not shifted to black
        (colour.astype(np.uint16) << 8, as_colour),
        (colour.astype(np.float32) / 255, as_colour),
        (colour.astype(np.float64), as_colour),
        (cv2.cvtColor(colour, cv2.COLOR_BGR2BGRA), as_colour),
        (transparent, as_grey),
    ]:
        assert _texts(reader, image) == expected, (image.dtype, image.shape)


@pytest.mark.parametrize("image, message", [
    (None, "None"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((0, 100), np.float32), "empty"),
    (np.zeros((10, 10, 2), np.uint8), "shape"),
    (np.full((10, 10), 4000, np.int32), "8-bit"),
    (np.full((10, 10), np.nan, np.float32), "NaN"),
    (np.linspace(0, 1020, 100, dtype=np.float32).reshape(10, 10), "0..255"),  # 10-bit data was clipped
    (np.array([[None, None]], dtype=object), "not pixels"),
])  # fmt: skip
def test_arrays_the_reader_cannot_read_are_refused_naming_what_was_given(image, message):
    with pytest.raises(ValueError, match=message):
        Frame(0, image, "x", 0.0)


def test_a_grey_frame_is_annotated_and_written_in_colour_and_a_resized_one_is_kept(reader, page, tmp_path):
    grey = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    result = reader.read(Frame(0, grey, "x", 0.0))
    annotated = draw_result(grey, result)
    assert annotated.shape == (*grey.shape, 3)
    assert (annotated == BOX_COLOUR).all(axis=2).sum() > 100  # the boxes are green, not grey
    path = tmp_path / "out.mp4"
    frames = [page.image, cv2.resize(page.image, (640, 360)), grey, cv2.resize(page.image, (333, 901)), page.image]
    with VideoSink(path, 30.0) as sink:
        for index, image in enumerate(frames):
            sink.write(image, reader.read(Frame(index, image, "x", index / 30)))
    written = cv2.VideoCapture(str(path))
    count = 0
    while written.read()[0]:
        count += 1
    assert sink.frames == count == len(frames)  # the writer dropped frames of another size, or grey, in silence


def test_a_frame_of_another_size_starts_the_tracks_afresh(reader, page):
    tracker = DigitTracker()
    full = tracker.update(reader.read(Frame(0, page.image, "x", 0.0)))
    crop = np.ascontiguousarray(page.image[: page.image.shape[0] // 2, : page.image.shape[1] // 2])
    alone = reader.read(Frame(0, crop, "x", 0.0))
    tracked = tracker.update(reader.read(Frame(1, crop, "x", 1 / 30)))
    # Nothing of the whole page coasts over the crop, and the crop's digits are new tracks, reported at once.
    assert [d.box for d in tracked.detections] == [d.box for d in alone.detections]
    assert [n.text for n in tracked.numbers] == [n.text for n in alone.numbers]
    assert not {d.track_id for d in tracked.detections} & {d.track_id for d in full.detections}


def test_threads_sharing_one_reader_get_the_results_of_one(reader, page):
    expected = _texts(reader, page.image, still=False)
    seen, errors = [], []

    def read_many():
        try:
            for _ in range(6):
                seen.append(_texts(reader, page.image, still=False))
        except Exception as error:  # "Infer Request is busy", LiteRT's "reference to internal data", wrong rows
            errors.append(repr(error))

    threads = [threading.Thread(target=read_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and seen == [expected] * 18


def test_a_batch_of_8_bit_pixels_is_refused_not_misread():
    classifier = DigitClassifier(MODEL)
    batch = np.zeros((2, 28, 28, 1), np.float32)
    batch[:, 8:20, 12:16] = 255.0
    with pytest.raises(ValueError, match="divide 8-bit crops by 255"):
        classifier.probabilities(batch)
    with pytest.raises(ValueError, match="reach nan"):
        classifier.probabilities(np.full((1, 28, 28, 1), np.nan, np.float32))
    assert classifier.probabilities(batch / 255).shape == (2, 11)


def test_ink_mask_takes_one_channel_and_float_colour_crops():
    crop = np.full((40, 30), 230, np.uint8)
    cv2.putText(crop, "7", (5, 32), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 80, 3)
    expected = ink_mask(crop)
    assert expected.sum() > 50
    for image in (crop[:, :, None], cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR).astype(np.float32) / 255,
                  cv2.cvtColor(crop, cv2.COLOR_GRAY2BGRA)):
        np.testing.assert_array_equal(ink_mask(image), expected)
