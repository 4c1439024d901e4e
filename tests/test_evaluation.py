"""Scoring a reader against known truth: matching, metrics, report and the command line."""

from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from digitrec.evaluation import (
    Counts,
    EvaluationReport,
    evaluate_reader,
    frame_misses,
    iou,
    main,
    match_detections,
    score_frame,
)
from digitrec.synth import SyntheticPage, TruthDigit, TruthNumber
from digitrec.types import Detection, Frame, FrameResult, NumberReading

MNIST_BESIDE_PROJECT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def _page(condition: str = "clean") -> SyntheticPage:
    """Two numbers, "305" and "27", on a blank image, and one mark."""
    digits = [
        TruthDigit((100, 50, 20, 30), 3, 0),
        TruthDigit((125, 50, 20, 30), 0, 0),
        TruthDigit((150, 52, 18, 30), 5, 0),
        TruthDigit((100, 150, 20, 30), 2, 1),
        TruthDigit((126, 149, 20, 31), 7, 1),
    ]
    numbers = [TruthNumber("305", (100, 50, 68, 32)), TruthNumber("27", (100, 149, 46, 31))]
    image = np.full((240, 320, 3), 230, np.uint8)
    return SyntheticPage(image, digits, numbers, [(250, 60, 10, 4)], condition)


def _perfect(page: SyntheticPage, image: np.ndarray) -> FrameResult:
    """What an ideal reader returns: exactly the truth."""
    detections = [Detection(d.box, d.digit, 0.99, d.number) for d in page.digits]
    numbers = [NumberReading(n.text, n.box, 0.99) for n in page.numbers]
    return FrameResult(Frame(0, image, "test", 0.0), detections, numbers)


def test_iou_of_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0


def test_a_perfect_reader_scores_one_everywhere():
    page = _page()
    report = evaluate_reader(lambda image: _perfect(page, image), [page, page])
    overall = report.overall
    assert overall.frames == 2 and overall.true_digits == 10 and overall.true_numbers == 4
    for name in ("recall", "precision", "label_accuracy", "read_rate", "number_accuracy"):
        assert getattr(overall, name) == 1.0
    assert overall.false_rate == 0.0 and overall.false_on_marks == 0


def test_one_wrong_label_costs_exactly_its_share():
    page = _page()
    result = _perfect(page, page.image)
    result.detections[1].digit = 8  # "305" read as "385"
    result.numbers[0].text = "385"
    counts = score_frame(page, result)
    assert counts.recall == 1.0 and counts.precision == 1.0
    assert counts.label_accuracy == pytest.approx(4 / 5) and counts.read_rate == pytest.approx(4 / 5)
    assert counts.number_accuracy == pytest.approx(1 / 2)


def test_misses_list_each_missed_misread_and_false_digit_once():
    page = _page()
    result = _perfect(page, page.image)
    result.detections[1].digit = 8  # the '0' of "305" read as 8
    del result.detections[4]  # the '7' of "27" not found
    result.detections.append(Detection((250, 58, 12, 8), 1, 0.7, -1))  # a '1' on the mark
    result.detections.append(Detection((200, 100, 10, 20), 4, 0.9, -1))  # a '4' on blank paper
    misses = frame_misses(page, result)
    assert sorted(m["kind"] for m in misses) == ["false", "false", "misread", "missed"]
    misread = next(m for m in misses if m["kind"] == "misread")
    assert (misread["digit"], misread["read_as"], misread["box"]) == (0, 8, [125, 50, 20, 30])
    missed = next(m for m in misses if m["kind"] == "missed")
    assert (missed["digit"], missed["box"]) == (7, [126, 149, 20, 31])
    false = sorted((m["read_as"], m["on_mark"]) for m in misses if m["kind"] == "false")
    assert false == [(1, True), (4, False)]
    counts = score_frame(page, result)
    assert counts.true_digits - counts.right == 2 and counts.false == 2  # the same errors the figures count
    assert frame_misses(page, _perfect(page, page.image)) == []


def test_an_extra_detection_lowers_precision_by_exactly_its_share():
    page = _page()
    result = _perfect(page, page.image)
    result.detections.append(Detection((20, 200, 15, 25), 1, 0.9))
    counts = score_frame(page, result)
    assert counts.recall == 1.0 and counts.label_accuracy == 1.0
    assert counts.precision == pytest.approx(5 / 6) and counts.false_rate == pytest.approx(1 / 6)
    assert counts.false_on_marks == 0


def test_a_detection_on_a_mark_is_false_and_tallied_as_such():
    page = _page()
    result = _perfect(page, page.image)
    result.detections.append(Detection((249, 59, 12, 6), 1, 0.9))
    counts = score_frame(page, result)
    assert counts.false == 1 and counts.false_on_marks == 1 and counts.precision == pytest.approx(5 / 6)


def test_matching_is_one_to_one_and_needs_enough_overlap():
    truth = [TruthDigit((0, 0, 20, 30), 4, 0)]
    twice = [Detection((0, 0, 20, 30), 4, 0.9), Detection((1, 0, 20, 30), 4, 0.8)]
    match = match_detections(truth, twice)
    assert match.pairs == [(0, 0)] and match.counts.found == 1 and match.counts.false == 1
    shifted = [Detection((12, 0, 20, 30), 4, 0.9)]  # IoU 8/32 = 0.25
    assert match_detections(truth, shifted).counts.found == 0
    assert match_detections(truth, shifted, iou_threshold=0.2).counts.found == 1


def test_matching_prefers_the_best_overlap_over_list_order():
    truth = [TruthDigit((0, 0, 20, 30), 1, 0), TruthDigit((22, 0, 20, 30), 2, 0)]
    found = [Detection((16, 0, 20, 30), 2, 0.9), Detection((24, 0, 20, 30), 2, 0.9)]  # IoU 0.54 vs 0.82
    match = match_detections(truth, found)
    assert match.pairs == [(1, 1)] and match.counts.right == 1 and match.counts.false == 1


def test_detections_of_digits_cut_by_the_frame_edge_count_neither_way():
    page = _page()
    page.ignored.append((0, 100, 8, 30))
    result = _perfect(page, page.image)
    result.detections.append(Detection((0, 100, 9, 30), 1, 0.9))
    counts = score_frame(page, result)
    assert counts.detections == 5 and counts.false == 0 and counts.precision == 1.0


def test_a_number_needs_the_same_text_and_overlapping_box():
    page = _page()
    result = _perfect(page, page.image)
    result.numbers[1] = NumberReading("27", (200, 149, 46, 31), 0.9)  # right text, wrong place
    assert score_frame(page, result).exact_numbers == 1


def test_report_keeps_conditions_apart_and_sums_them_overall():
    clean, noisy = _page("clean"), _page("noisy")

    def reader(image):
        result = _perfect(clean, image)
        if image is noisy.image:
            result.detections = result.detections[:4]
        return result

    report = evaluate_reader(reader, [clean, noisy])
    assert set(report.by_condition) == {"clean", "noisy"}
    assert report.by_condition["clean"].recall == 1.0
    assert report.by_condition["noisy"].recall == pytest.approx(4 / 5)
    assert report.overall.recall == pytest.approx(9 / 10)
    renamed = evaluate_reader(reader, [clean], condition="video:clean")
    assert set(report.merge(renamed).by_condition) == {"clean", "noisy", "video:clean"}
    table = report.format_table()
    assert "clean" in table and "noisy" in table and "overall" in table and "90.0" in table


def test_empty_tallies_give_undefined_metrics_and_null_json():
    counts = Counts()
    assert math.isnan(counts.recall) and math.isnan(counts.precision)
    report = EvaluationReport({"clean": counts})
    data = report.to_json()
    assert data["overall"]["recall"] is None and data["conditions"]["clean"]["frames"] == 0
    json.dumps(data)
    assert "-" in report.format_table()


def test_command_line_refuses_a_missing_data_file(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nope.npz"), "--pages", "1", "--videos", "0"]) == 2
    assert "nope.npz" in capsys.readouterr().err


def test_command_line_reads_pages_and_videos_in_order(tmp_path, capsys, monkeypatch):
    path = Path(os.environ.get("DIGITREC_MNIST") or MNIST_BESIDE_PROJECT)
    if not path.exists():
        pytest.skip(f"MNIST not found at {path}; set DIGITREC_MNIST")
    seen: list[tuple[str, int, float]] = []
    readers: list[str] = []

    class FakeReader:
        def __init__(self, model_path, pair_model=None, photo_pair_model=None):
            readers.append((str(model_path), pair_model, photo_pair_model))

        def read(self, frame: Frame) -> FrameResult:
            seen.append((frame.source, frame.index, frame.time))
            return FrameResult(frame, [], [])

    monkeypatch.setitem(sys.modules, "digitrec.reader",
                        types.SimpleNamespace(DigitReader=FakeReader, DEFAULT_PAIR_MODEL="models/pairs.keras"))
    out = tmp_path / "report.json"
    argv = [
        "--data",
        str(path),
        "--pages",
        "2",
        "--videos",
        "1",
        "--frames",
        "3",
        "--model",
        "m.keras",
        "--json",
        str(out),
        "--misses",
        str(tmp_path / "misses.jsonl"),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "clean" in table and "ruled" in table and "video:clean" in table and "overall" in table
    # One reader for pages and videos (it keeps nothing from frame to frame), with the shipped pair network (and,
    # none given, the reader's own choice of photo pair network).
    assert readers == [("m.keras", "models/pairs.keras", None)]
    assert [s[1] for s in seen] == [0, 0, 0, 1, 2]
    assert seen[2][0] == seen[4][0] != seen[0][0] and seen[4][2] > seen[3][2]
    data = json.loads(out.read_text())
    assert data["overall"]["frames"] == 5 and data["overall"]["recall"] == 0.0
    # The fake reader finds nothing, so every digit of every frame is listed as missed, once.
    misses = [json.loads(line) for line in (tmp_path / "misses.jsonl").read_text().splitlines()]
    assert len(misses) == data["overall"]["true_digits"] > 0
    assert {m["kind"] for m in misses} == {"missed"}
    assert {(m["source"], m["frame"]) for m in misses} == {(s[0], s[1]) for s in seen}


@pytest.mark.parametrize("option", ["--misses", "--json"])
def test_command_line_says_before_the_run_when_it_cannot_write_its_files(option, tmp_path, capsys, monkeypatch):
    path = Path(os.environ.get("DIGITREC_MNIST") or MNIST_BESIDE_PROJECT)
    if not path.exists():
        pytest.skip(f"MNIST not found at {path}; set DIGITREC_MNIST")
    import digitrec.synth

    def drawn(*args, **kwargs):
        raise AssertionError("a page was drawn before the output was checked")

    monkeypatch.setattr(digitrec.synth, "make_page", drawn)
    argv = ["--data", str(path), "--pages", "1", "--videos", "0", option, str(tmp_path / "no" / "m.jsonl")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot write {option}" in err and "Traceback" not in err


def test_command_line_writes_held_out_training_digits_when_asked(mnist_path, capsys):
    from digitrec.evaluate_tracking import main as tracking_main

    assert main(["--data", str(mnist_path), "--held-out", "2", "--pages", "2", "--videos", "0"]) == 0
    overall = [line for line in capsys.readouterr().out.splitlines() if line.startswith("overall")][0]
    assert int(overall.split()[2]) > 10  # digits written and scored
    assert tracking_main(["--data", str(mnist_path), "--held-out", "2", "--videos", "0", "--mark-pages", "0",
                          "--pairs", "3"]) == 0
    assert "touching pairs:" in capsys.readouterr().out


def test_command_line_reads_large_photos_of_several_pages(mnist_path, tmp_path):
    out = tmp_path / "mosaics.json"
    assert main(["--data", str(mnist_path), "--held-out", "2", "--pages", "0", "--videos", "0", "--mosaics", "2",
                 "--json", str(out)]) == 0
    conditions = json.loads(out.read_text())["conditions"]
    assert set(conditions) == {"mosaic 2x2", "mosaic 3x3"}
    assert conditions["mosaic 3x3"]["true_digits"] > 2 * conditions["mosaic 2x2"]["true_digits"] > 100
    assert all(figures["read_rate"] >= 0.85 for figures in conditions.values()), conditions


def test_command_line_reads_close_ups(mnist_path, tmp_path):
    out = tmp_path / "close.json"
    assert main(["--data", str(mnist_path), "--held-out", "2", "--pages", "0", "--videos", "0", "--close-ups", "10",
                 "--close-up-videos", "1", "--frames", "4", "--json", str(out)]) == 0
    conditions = json.loads(out.read_text())["conditions"]
    photos = [figures for name, figures in conditions.items() if name.startswith("close-up:")]
    assert len(photos) == 10 and "close-up video:clean" in conditions
    assert sum(figures["right"] for figures in photos) >= 0.8 * sum(figures["true_digits"] for figures in photos)


def test_command_line_reads_pages_turned_as_a_sheet_held_at_an_angle(mnist_path, tmp_path, capsys):
    out = tmp_path / "turned.json"
    assert main(["--data", str(mnist_path), "--held-out", "2", "--seed", "8", "--pages", "10", "--videos", "0",
                 "--turn", "30", "--json", str(out)]) == 0
    overall = json.loads(out.read_text())["overall"]
    # 55 of these 64 numbers are read whole, 51 with the writing's angle left unfound (before session 37)
    assert overall["true_numbers"] == 64 and overall["exact_numbers"] >= 0.82 * 64, overall
    assert main(["--data", str(mnist_path), "--pages", "1", "--videos", "0", "--turn", "60"]) == 2
    assert "--turn must be 0-45 degrees" in capsys.readouterr().err


@pytest.mark.parametrize("command, option", [("evaluation", "--seed"), ("evaluation", "--held-out"),
                                             ("evaluate_tracking", "--held-out"), ("train", "--data-seed")])
def test_a_negative_seed_is_refused_naming_its_option(command, option, capsys):
    # NumPy takes no negative seed: it ended in a traceback once the run had started.
    import importlib

    main_of = importlib.import_module("train" if command == "train" else f"digitrec.{command}").main
    with pytest.raises(SystemExit) as exit_info:
        main_of([option, "-3"])
    assert exit_info.value.code == 2
    assert f"argument {option}: a seed is a whole number 0 or more, not -3" in capsys.readouterr().err
