"""Measure a reader against synthetic pages and videos whose digits and numbers are known exactly."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TextIO

import numpy as np

from digitrec.cli_help import DefaultsHelpFormatter, add_pair_model_options, pair_models, reader_load_error, seed
from digitrec.synth import CONDITIONS, SyntheticPage
from digitrec.types import Box, Detection, FrameResult, NumberReading

IOU_THRESHOLD = 0.5
"""Smallest overlap (intersection over union) for a detection to count as a truth digit or number."""

IGNORE_IOU = 0.3
"""A detection overlapping an ignored truth box (a digit cut by the frame edge) this much is not counted."""

ReadFn = Callable[[np.ndarray], FrameResult]
"""read_fn(image_bgr) -> FrameResult."""


def intersection(a: Box, b: Box) -> int:
    """Area shared by two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = min(ax + aw, bx + bw) - max(ax, bx)
    inter_h = min(ay + ah, by + bh) - max(ay, by)
    return inter_w * inter_h if inter_w > 0 and inter_h > 0 else 0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    inter = intersection(a, b)
    if inter == 0:
        return 0.0
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _greedy_pairs(truth: Sequence[Box], found: Sequence[Box], threshold: float) -> list[tuple[int, int]]:
    """One-to-one (truth index, found index) pairs, best overlaps first, each at least `threshold`."""
    scored = sorted(
        ((iou(t, f), ti, fi) for ti, t in enumerate(truth) for fi, f in enumerate(found)),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    used_truth: set[int] = set()
    used_found: set[int] = set()
    pairs = []
    for overlap, ti, fi in scored:
        if overlap < threshold:
            break
        if ti not in used_truth and fi not in used_found:
            used_truth.add(ti)
            used_found.add(fi)
            pairs.append((ti, fi))
    return pairs


@dataclass
class Counts:
    """Tallies over any number of frames; the metrics are ratios of them."""

    frames: int = 0
    true_digits: int = 0
    detections: int = 0
    found: int = 0
    """Truth digits matched by a detection."""
    right: int = 0
    """Matched and labelled with the true digit."""
    false: int = 0
    """Detections matching no truth digit."""
    false_on_marks: int = 0
    """False detections lying on a non-digit mark."""
    true_numbers: int = 0
    exact_numbers: int = 0
    seconds: float = 0.0
    """Time spent in the reader."""

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in asdict(self)})

    @staticmethod
    def _ratio(top: float, bottom: float) -> float:
        return top / bottom if bottom else float("nan")

    @property
    def recall(self) -> float:
        return self._ratio(self.found, self.true_digits)

    @property
    def precision(self) -> float:
        return self._ratio(self.found, self.detections)

    @property
    def label_accuracy(self) -> float:
        return self._ratio(self.right, self.found)

    @property
    def read_rate(self) -> float:
        return self._ratio(self.right, self.true_digits)

    @property
    def false_rate(self) -> float:
        return self._ratio(self.false, self.detections)

    @property
    def number_accuracy(self) -> float:
        return self._ratio(self.exact_numbers, self.true_numbers)

    @property
    def ms_per_frame(self) -> float:
        return self._ratio(1000.0 * self.seconds, self.frames)

    def metrics(self) -> dict[str, float]:
        """The ratios by name."""
        return {name: getattr(self, name) for name in METRICS}


METRICS = (
    "recall",
    "precision",
    "label_accuracy",
    "read_rate",
    "false_rate",
    "number_accuracy",
    "ms_per_frame",
)


@dataclass
class DigitMatch:
    """How a frame's detections pair with its truth digits."""

    pairs: list[tuple[int, int]]
    """(truth index, detection index)."""
    counts: Counts
    false: list[int] = field(default_factory=list)
    """Indices of the detections that match no truth digit (those on ignored boxes left out)..."""
    false_on_marks: list[int] = field(default_factory=list)
    """...and of those among them that lie on a non-digit mark."""


def match_detections(
    truth_digits: Sequence,
    detections: Sequence[Detection],
    iou_threshold: float = IOU_THRESHOLD,
    marks: Sequence[Box] = (),
    ignored: Sequence[Box] = (),
) -> DigitMatch:
    """Pair detections with truth digits one to one by box overlap (greedy, best first) and count.

    `truth_digits` need `.box` and `.digit`. Detections overlapping an `ignored` box (a digit cut by
    the frame edge) are left out of every count; unmatched ones lying on `marks` are also tallied
    in `false_on_marks`.
    """
    kept = [i for i, d in enumerate(detections) if not any(iou(d.box, box) >= IGNORE_IOU for box in ignored)]
    pairs = [
        (ti, kept[ki])
        for ti, ki in _greedy_pairs(
            [t.box for t in truth_digits], [detections[i].box for i in kept], iou_threshold
        )
    ]
    right = sum(truth_digits[ti].digit == detections[di].digit for ti, di in pairs)
    matched = {di for _, di in pairs}
    false = [i for i in kept if i not in matched]
    on_marks = [i for i in false if any(iou(detections[i].box, box) >= IGNORE_IOU for box in marks)]
    counts = Counts(
        true_digits=len(truth_digits),
        detections=len(kept),
        found=len(pairs),
        right=right,
        false=len(false),
        false_on_marks=len(on_marks),
    )
    return DigitMatch(pairs, counts, false, on_marks)


def exact_numbers(
    truth_numbers: Sequence, readings: Sequence[NumberReading], iou_threshold: float = IOU_THRESHOLD
) -> int:
    """How many truth numbers (`.text`, `.box`) some reading overlaps enough and spells identically."""
    return sum(
        any(r.text == t.text and iou(r.box, t.box) >= iou_threshold for r in readings) for t in truth_numbers
    )


def frame_misses(truth: SyntheticPage, result: FrameResult, iou_threshold: float = IOU_THRESHOLD) -> list[dict]:
    """What one frame got wrong, one record each, matched as `score_frame` counts them.

    "missed": a truth digit no detection overlaps enough; "misread": one read as another digit
    (`read_as`, `confidence`); "false": a detection lying on no digit (`on_mark` when on a mark).
    Truth records carry the digit's `glyph` (the same in every frame of a video), so a hard
    digit misread in every frame shows up as one glyph.
    """
    match = match_detections(truth.digits, result.detections, iou_threshold, truth.marks, truth.ignored)
    found = dict(match.pairs)
    records = []
    for index, digit in enumerate(truth.digits):
        record = {"kind": "missed", "digit": digit.digit, "box": list(digit.box), "glyph": digit.ident}
        if index in found:
            detection = result.detections[found[index]]
            if detection.digit == digit.digit:
                continue
            record.update(kind="misread", read_as=detection.digit, confidence=round(detection.confidence, 3),
                          read_box=list(detection.box))
        records.append(record)
    for index in match.false:
        detection = result.detections[index]
        records.append({"kind": "false", "read_as": detection.digit, "confidence": round(detection.confidence, 3),
                        "box": list(detection.box), "on_mark": index in match.false_on_marks})
    return records


def write_misses(file: TextIO, source: str, frame: int, records: list[dict]) -> None:
    """Records (`frame_misses`'s, or any) as JSON Lines, each with its source and frame, flushed: what was read is on
    disk even if the run is stopped."""
    for record in records:
        file.write(json.dumps({"source": source, "frame": frame, **record}) + "\n")
    file.flush()


def score_frame(truth: SyntheticPage, result: FrameResult, iou_threshold: float = IOU_THRESHOLD) -> Counts:
    """All the tallies of one frame against its truth."""
    counts = match_detections(
        truth.digits, result.detections, iou_threshold, truth.marks, truth.ignored
    ).counts
    counts.frames = 1
    counts.true_numbers = len(truth.numbers)
    counts.exact_numbers = exact_numbers(truth.numbers, result.numbers, iou_threshold)
    return counts


@dataclass
class EvaluationReport:
    """Tallies per condition (videos under "video:<condition>") and overall."""

    by_condition: dict[str, Counts] = field(default_factory=dict)

    def add(self, condition: str, counts: Counts) -> None:
        self.by_condition[condition] = self.by_condition.get(condition, Counts()) + counts

    def merge(self, other: EvaluationReport) -> EvaluationReport:
        merged = EvaluationReport(dict(self.by_condition))
        for condition, counts in other.by_condition.items():
            merged.add(condition, counts)
        return merged

    @property
    def overall(self) -> Counts:
        return sum(self.by_condition.values(), Counts())

    def to_json(self) -> dict:
        """Counts and metrics per condition and overall (NaN metrics become null)."""

        def entry(counts: Counts) -> dict:
            metrics = {k: (None if v != v else round(v, 4)) for k, v in counts.metrics().items()}
            return {**asdict(counts), **metrics}

        return {
            "overall": entry(self.overall),
            "conditions": {k: entry(v) for k, v in self.by_condition.items()},
        }

    def format_table(self) -> str:
        """A printable table: one row per condition and one overall."""
        header = (
            "condition",
            "frames",
            "digits",
            "recall",
            "precis",
            "label",
            "read",
            "false",
            "on_mk",
            "numbers",
            "num_acc",
            "ms/fr",
        )

        def row(name: str, c: Counts) -> tuple[str, ...]:
            def pct(v: float) -> str:
                return "-" if v != v else f"{100 * v:.1f}"

            ms = "-" if c.ms_per_frame != c.ms_per_frame else f"{c.ms_per_frame:.0f}"
            return (
                name,
                str(c.frames),
                str(c.true_digits),
                pct(c.recall),
                pct(c.precision),
                pct(c.label_accuracy),
                pct(c.read_rate),
                pct(c.false_rate),
                str(c.false_on_marks),
                str(c.true_numbers),
                pct(c.number_accuracy),
                ms,
            )

        rows = [header] + [row(k, v) for k, v in self.by_condition.items()] + [row("overall", self.overall)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))
            )
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        legend = (
            "percentages: recall = found/true digits, precis = found/detections, label = right/found,\n"
            "read = right/true, false = false/detections, num_acc = numbers read exactly;\n"
            "on_mk = false detections lying on non-digit marks, ms/fr = reader time per frame"
        )
        return "\n".join(lines) + "\n" + legend


def evaluate_reader(
    read_fn: ReadFn,
    pages: Iterable[SyntheticPage],
    condition: str | None = None,
    progress: Callable[[], object] | None = None,
    misses: Callable[[int, list[dict]], object] | None = None,
) -> EvaluationReport:
    """Run `read_fn(image_bgr) -> FrameResult` on each page (in order) and tally per page condition.

    `condition` files every page under that name instead (used for videos); `progress` is
    called once per page (e.g. a tqdm bar's update); `misses(frame_index, records)` gets each
    frame's `frame_misses`.
    """
    report = EvaluationReport()
    for index, page in enumerate(pages):
        start = time.perf_counter()
        result = read_fn(page.image)
        elapsed = time.perf_counter() - start
        counts = score_frame(page, result)
        counts.seconds = elapsed
        report.add(condition or page.condition, counts)
        if misses is not None:
            misses(index, frame_misses(page, result))
        if progress is not None:
            progress()
    return report


def load_glyphs(data_path: str | None, held_out: int | None):
    """The digits to write pages with: the MNIST test split, or with `held_out` (a training data
    seed) the training digits that run held out (`load_held_out_glyphs`).

    Raises:
        DataFileError: the MNIST file is missing or malformed; the message names the fix.
    """
    return load_test_glyphs(data_path) if held_out is None else load_held_out_glyphs(data_path, held_out)


def load_test_glyphs(data_path: str | None):
    """Digits of the MNIST test split (never trained on) to write synthetic pages with.

    Raises:
        DataFileError: the MNIST file is missing or malformed; the message names the fix.
    """
    from digitrec.data import load_mnist
    from digitrec.synth import MnistGlyphs

    mnist = load_mnist(data_path)
    return MnistGlyphs(mnist.x_test, mnist.y_test)


def load_held_out_glyphs(data_path: str | None, data_seed: int):
    """The MNIST training digits that a training run with this data seed held out (never trained
    on): pages written with them choose between trained models without looking at the test split.

    Raises:
        DataFileError: the MNIST file is missing or malformed; the message names the fix.
    """
    from digitrec.data import load_mnist, training_split_order
    from digitrec.synth import MnistGlyphs
    from digitrec.training import TrainingConfig

    mnist = load_mnist(data_path)
    held_out = training_split_order(len(mnist.x_train), data_seed)[0][: TrainingConfig.validation_size]
    return MnistGlyphs(mnist.x_train[held_out], mnist.y_train[held_out])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digitrec.evaluation",
        formatter_class=DefaultsHelpFormatter,
        description="Measure the digit reader on synthetic photos and videos of handwritten pages "
        "(digits from the MNIST test split, which the model never trains on).",
    )
    parser.add_argument("--data", help="mnist.npz (default: $DIGITREC_MNIST, else Keras's own download)")
    parser.add_argument("--model", default="models/digits.keras", help="trained model (default: %(default)s)")
    add_pair_model_options(parser)
    parser.add_argument("--pages", type=int, default=60, help="synthetic photos, conditions taken in turn")
    parser.add_argument("--videos", type=int, default=3, help="synthetic hand-held videos")
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--mosaics", type=int, default=0,
                        help="large photos of several pages each, 2x2 (2560x1440) and 3x3 (3840x2160) in turn: "
                        "digits 2-7 %% and 1.3-4.7 %% of the photo's height, as in a phone's photo of a whole sheet")
    parser.add_argument("--close-ups", type=int, default=0,
                        help="640x480 photos of one big number (one or two digits, 25-65 %% of the frame's height), "
                        "as on a sheet held up close to a webcam; conditions taken in turn")
    parser.add_argument("--close-up-videos", type=int, default=0,
                        help="hand-held 640x480 videos of one big number, --frames frames each")
    parser.add_argument("--turn", type=float, default=0.0, metavar="DEGREES",
                        help="turn each of the --pages in its plane by up to this many degrees either way, as a "
                        "sheet held at an angle (default: each condition's own, up to 3 degrees; 10 for "
                        "perspective)")
    parser.add_argument("--seed", type=seed, default=7, help="the same seed gives the same pages and videos")
    parser.add_argument("--held-out", type=seed, metavar="DATA_SEED",
                        help="write the pages with the MNIST training digits that training with this --data-seed "
                        "held out, instead of the test split: to choose between models without the test split")
    parser.add_argument("--json", help="also write the report as JSON to this path")
    parser.add_argument("--misses", metavar="PATH",
                        help="also write every missed or misread digit and every false detection to this "
                        "JSON Lines file, with its source, frame, box and reading, to see what the figures lose")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build pages and videos, read them, print the table; returns the exit status."""
    args = _parser().parse_args(argv)
    if min(args.pages, args.videos, args.mosaics, args.close_ups, args.close_up_videos) < 0 or args.frames < 1:
        print("error: --pages, --videos, --mosaics, --close-ups and --close-up-videos must be 0 or more and --frames 1 "
              "or more", file=sys.stderr)
        return 2
    if not 0 <= args.turn <= 45:
        print("error: --turn must be 0-45 degrees", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from digitrec.data import DataFileError
    from digitrec.synth import make_page, make_page_mosaic, make_video
    from digitrec.types import Frame

    try:
        glyphs = load_glyphs(args.data, args.held_out)
    except DataFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        from digitrec.reader import DigitReader

        reader = DigitReader(args.model, **pair_models(args))
    except (OSError, ValueError, ImportError) as error:
        print(reader_load_error(args, error), file=sys.stderr)
        return 2

    def read_with(current: DigitReader, source: str, fps: float = 0.0) -> ReadFn:
        """Read a video's frames (at `fps`), or a photo (no fps) as the reader reads image files."""
        index = iter(range(1 << 62))

        def read(image: np.ndarray) -> FrameResult:
            i = next(index)
            return current.read(Frame(index=i, image=image, source=source, time=i / fps if fps else 0.0,
                                      still=not fps))

        return read

    report = EvaluationReport()
    outputs = contextlib.ExitStack()  # both opened now: a path that cannot be written is told before the run
    try:
        misses_file = outputs.enter_context(open(args.misses, "w", encoding="utf-8")) if args.misses else None
        json_file = outputs.enter_context(open(args.json, "w", encoding="utf-8")) if args.json else None
    except OSError as error:
        outputs.close()
        option = "--misses" if error.filename == args.misses else "--json"
        print(f"error: cannot write {option} {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    frames = args.pages + args.mosaics + args.close_ups + (args.videos + args.close_up_videos) * args.frames
    with outputs, tqdm(total=frames, unit="frame", file=sys.stderr) as bar:

        def misses_of(source: str) -> Callable[[int, list[dict]], object] | None:
            if misses_file is None:
                return None
            return lambda frame, records: write_misses(misses_file, source, frame, records)

        for i in range(args.pages):
            condition = CONDITIONS[i % len(CONDITIONS)]
            page = make_page(args.seed * 100_000 + i, glyphs, condition, turn=args.turn)
            source = f"synthetic/page{i:03d}-{condition}.png"
            report = report.merge(evaluate_reader(read_with(reader, source), [page], progress=bar.update,
                                                  misses=misses_of(source)))
        for i in range(args.mosaics):
            side = 2 + i % 2
            page = make_page_mosaic(args.seed * 100_000 + 70_000 + 9 * i, glyphs, side)
            source = f"synthetic/mosaic{i:03d}-{side}x{side}.png"
            report = report.merge(evaluate_reader(read_with(reader, source), [page], f"mosaic {side}x{side}",
                                                  bar.update, misses=misses_of(source)))
        for i in range(args.close_ups):
            condition = CONDITIONS[i % len(CONDITIONS)]
            page = make_page(args.seed * 100_000 + 80_000 + i, glyphs, condition, (640, 480), close_up=True)
            source = f"synthetic/close{i:03d}-{condition}.png"
            report = report.merge(evaluate_reader(read_with(reader, source), [page], f"close-up:{condition}",
                                                  bar.update, misses=misses_of(source)))
        for i in range(args.close_up_videos):
            condition = CONDITIONS[i % len(CONDITIONS)]
            video = make_video(args.seed * 100_000 + 90_000 + i, glyphs, args.frames, condition=condition,
                               close_up=True)
            source = f"synthetic/close-video{i:02d}-{condition}.mp4"
            report = report.merge(evaluate_reader(read_with(reader, source, video.fps), video.truth,
                                                  f"close-up video:{condition}", bar.update,
                                                  misses=misses_of(source)))
        for i in range(args.videos):
            condition = CONDITIONS[i % len(CONDITIONS)]
            video = make_video(args.seed * 100_000 + 50_000 + i, glyphs, args.frames, condition=condition)
            source = f"synthetic/video{i:02d}-{condition}.mp4"
            report = report.merge(evaluate_reader(read_with(reader, source, video.fps), video.truth,
                                                  f"video:{condition}", bar.update, misses=misses_of(source)))
        bar.close()
        print(report.format_table())
        if json_file is not None:
            json.dump(report.to_json(), json_file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
