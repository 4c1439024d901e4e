"""Measure the goals of tracking and robustness: steady labels in video, no false marks, touching digits."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from digitrec.cli_help import DefaultsHelpFormatter, add_pair_model_options, pair_models, reader_load_error, seed
from digitrec.evaluation import IOU_THRESHOLD, Counts, exact_numbers, frame_misses, iou, match_detections, write_misses
from digitrec.group import union_box
from digitrec.synth import SyntheticPage, TouchingPair
from digitrec.types import FrameResult

REJECTIONS = ("class", "threshold", "both")

VIDEO_SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720))
VIDEO_CONDITIONS: tuple[str, ...] = ("clean", "ruled", "shadow", "blue_pen", "perspective", "marker")
"""Frame sizes and page conditions of the generated hand-held videos, each taken in turn."""


@dataclass
class VideoCounts:
    """Tallies of one or more tracked videos."""

    counts: Counts
    steady_pairs: int = 0
    """Truth digits read in two consecutive frames (the digit-frames where a label could change)."""
    label_changes: int = 0
    """Of those, how many were read with a different label than in the frame before."""
    id_changes: int = 0
    """Of those, how many carried a different track id than in the frame before."""
    steady_numbers: int = 0
    """Truth numbers read in two consecutive frames (a number reading overlapping each by `IOU_THRESHOLD`)."""
    number_changes: int = 0
    """Of those, how many were read with another text than in the frame before: a digit of the number lost,
    added, split off or read otherwise."""

    def __add__(self, other: VideoCounts) -> VideoCounts:
        return VideoCounts(self.counts + other.counts, self.steady_pairs + other.steady_pairs,
                           self.label_changes + other.label_changes, self.id_changes + other.id_changes,
                           self.steady_numbers + other.steady_numbers, self.number_changes + other.number_changes)

    @property
    def label_change_rate(self) -> float:
        return self.label_changes / self.steady_pairs if self.steady_pairs else float("nan")

    @property
    def id_change_rate(self) -> float:
        return self.id_changes / self.steady_pairs if self.steady_pairs else float("nan")

    @property
    def number_change_rate(self) -> float:
        return self.number_changes / self.steady_numbers if self.steady_numbers else float("nan")


def score_video(truth: Sequence[SyntheticPage], results: Sequence[FrameResult]) -> VideoCounts:
    """Per-frame read rate and numbers read exactly, label/id changes of a truth digit (by `TruthDigit.ident`)
    between frames, and text changes of a truth number (by its digits' idents) between frames."""
    total = VideoCounts(Counts())
    before: dict[int, tuple[int, int | None]] = {}
    texts_before: dict[tuple[int, ...], str] = {}
    for page, result in zip(truth, results):
        match = match_detections(page.digits, result.detections, marks=page.marks, ignored=page.ignored)
        match.counts.frames = 1
        match.counts.true_numbers = len(page.numbers)
        match.counts.exact_numbers = exact_numbers(page.numbers, result.numbers)
        total.counts = total.counts + match.counts
        texts_now = number_texts(page, result)
        for number, text in texts_now.items():
            if number in texts_before:
                total.steady_numbers += 1
                total.number_changes += texts_before[number] != text
        texts_before = texts_now
        now: dict[int, tuple[int, int | None]] = {}
        for truth_index, detection_index in match.pairs:
            detection = result.detections[detection_index]
            ident = page.digits[truth_index].ident
            now[ident] = (detection.digit, detection.track_id)
            if ident in before:
                total.steady_pairs += 1
                total.label_changes += before[ident][0] != detection.digit
                total.id_changes += before[ident][1] != detection.track_id
        before = now
    return total


def number_texts(page: SyntheticPage, result: FrameResult) -> dict[tuple[int, ...], str]:
    """The text read over each of a frame's truth numbers, keyed by its digits' idents (the same in every frame of
    a video): that of the number reading overlapping its box most, if by `IOU_THRESHOLD`; unread numbers are left
    out."""
    texts = {}
    for index, number in enumerate(page.numbers):
        overlaps = [(iou(reading.box, number.box), reading.text) for reading in result.numbers]
        overlap, text = max(overlaps, default=(0.0, ""))
        if overlap >= IOU_THRESHOLD:
            texts[tuple(digit.ident for digit in page.digits if digit.number == index)] = text
    return texts


def score_marks(marked: Sequence[tuple[SyntheticPage, FrameResult]],
                unmarked: Sequence[tuple[SyntheticPage, FrameResult]]) -> dict[str, float]:
    """False detections as a share of detections on marked pages, and the read rate with and without marks."""
    with_marks = sum((match_detections(p.digits, r.detections, marks=p.marks, ignored=p.ignored).counts
                      for p, r in marked), Counts())
    without = sum((match_detections(p.digits, r.detections, ignored=p.ignored).counts for p, r in unmarked),
                  Counts())
    return {
        "marks": sum(len(p.marks) for p, _ in marked),
        "detections": with_marks.detections,
        "false": with_marks.false,
        "false_on_marks": with_marks.false_on_marks,
        "false_rate": with_marks.false_rate,
        "read_rate_marked": with_marks.read_rate,
        "read_rate_unmarked": without.read_rate,
    }


def pair_reading(pair: TouchingPair, result: FrameResult) -> list[int]:
    """The digits read over a touching pair, left to right: those of the detections whose centre lies inside the
    union of the pair's two boxes."""
    x0, y0, w, h = pair_box(pair)
    inside = [d for d in result.detections
              if x0 <= d.box[0] + d.box[2] / 2 <= x0 + w and y0 <= d.box[1] + d.box[3] / 2 <= y0 + h]
    return [d.digit for d in sorted(inside, key=lambda d: d.box[0])]


def pair_box(pair: TouchingPair) -> tuple[int, int, int, int]:
    """The union of a touching pair's two boxes."""
    return union_box([pair.page.digits[i].box for i in pair.pair])


def pair_read_right(pair: TouchingPair, result: FrameResult) -> bool:
    """Whether the touching pair was read as exactly its two digits, left to right, and nothing else there
    (`pair_reading`)."""
    return pair_reading(pair, result) == [pair.page.digits[i].digit for i in pair.pair]


def pair_miss(pair: TouchingPair, result: FrameResult, read_as: str) -> list[dict]:
    """A `--misses` record of a touching pair read wrong (none when read right); `read_as`: "photo" or "video"."""
    digits = [pair.page.digits[i].digit for i in pair.pair]
    reading = pair_reading(pair, result)
    if reading == digits:
        return []
    return [{"kind": "pair", "read": read_as, "digits": digits, "read_as": reading, "box": list(pair_box(pair)),
             "glyphs": [pair.page.digits[i].ident for i in pair.pair]}]


class DigitsOnly:
    """A classifier with its not-a-digit column taken away: rejection by the confidence floor alone."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        digits = self.classifier.probabilities(batch)[:, :10]
        return digits / np.maximum(digits.sum(axis=1, keepdims=True), 1e-12)


CALIBRATION_FLOORS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _above(read: list[tuple[SyntheticPage, FrameResult]], floor: float) -> list[tuple[SyntheticPage, FrameResult]]:
    """The same results keeping only detections read with at least `floor` confidence."""
    return [(page, replace(result, detections=[d for d in result.detections if d.confidence >= floor]))
            for page, result in read]


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.2f} %"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digitrec.evaluate_tracking",
        formatter_class=DefaultsHelpFormatter,
        description="Measure issue #4's goals on generated data (MNIST test digits, fixed seeds): "
        "tracked hand-held videos, pages with non-digit marks, and touching digit pairs.",
    )
    parser.add_argument("--data", help="mnist.npz (default: $DIGITREC_MNIST, else Keras's own download)")
    parser.add_argument("--model", default="models/digits.keras", help="trained model (default: %(default)s)")
    add_pair_model_options(parser)
    parser.add_argument("--videos", type=int, default=6, help="hand-held videos, sizes and conditions in turn")
    parser.add_argument("--conditions", default=",".join(VIDEO_CONDITIONS),
                        help="page conditions of the videos, comma-separated, taken in turn (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--mark-pages", type=int, default=20, help="pages with 10-16 non-digit marks each")
    parser.add_argument("--pairs", type=int, default=200, help="touching digit pairs")
    parser.add_argument("--rejection", default="both",
                        help="how non-digits are rejected, comma-separated to compare them on the same marked "
                        "pages (the first also reads the videos and pairs): 'class' (the not-a-digit class "
                        "only), 'threshold' (the confidence floor only) or 'both' (default: %(default)s)")
    parser.add_argument("--conf", type=float, default=0.5, help="the confidence floor (default: %(default)s)")
    parser.add_argument("--no-tracking", action="store_true", help="score the videos frame by frame, untracked")
    parser.add_argument("--seed", type=seed, default=11, help="the same seed gives the same data")
    parser.add_argument("--held-out", type=seed, metavar="DATA_SEED",
                        help="write with the MNIST training digits that training with this --data-seed held out, "
                        "instead of the test split: to tune settings without the test split")
    parser.add_argument("--misses", metavar="PATH",
                        help="also write every digit the videos and marked pages miss or misread, every false "
                        "detection, and every touching pair read wrong to this JSON Lines file, with its source, "
                        "frame, box and reading, to see what the figures lose")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate, read and score; prints one section per goal."""
    args = _parser().parse_args(argv)
    from digitrec.synth import CONDITIONS

    modes = args.rejection.split(",")
    if set(modes) - set(REJECTIONS):
        print(f"error: --rejection takes {', '.join(REJECTIONS)} (comma-separated), not {args.rejection}",
              file=sys.stderr)
        return 2
    unknown = set(args.conditions.split(",")) - set(CONDITIONS)
    if unknown:
        print(f"error: unknown --conditions {', '.join(sorted(unknown))}; choose from {', '.join(CONDITIONS)}",
              file=sys.stderr)
        return 2
    if min(args.videos, args.mark_pages, args.pairs) < 0 or args.frames < 2:
        print("error: counts must be 0 or more and --frames 2 or more", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from digitrec.data import DataFileError
    from digitrec.evaluation import load_glyphs
    from digitrec.synth import make_page, make_touching_pair, make_video
    from digitrec.track import DigitTracker
    from digitrec.types import Frame

    try:
        glyphs = load_glyphs(args.data, args.held_out)
    except DataFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        from digitrec.classify import DigitClassifier
        from digitrec.reader import DigitReader

        classifier = DigitClassifier(args.model)
        readers = {
            mode: DigitReader(classifier=DigitsOnly(classifier) if mode == "threshold" else classifier,
                              min_confidence=0.0 if mode == "class" else args.conf,
                              **pair_models(args))
            for mode in modes
        }
    except (OSError, ValueError, ImportError) as error:
        print(reader_load_error(args, error), file=sys.stderr)
        return 2

    def read(image, index: int = 0, source: str = "synthetic", mode: str = modes[0], still: bool = True) -> FrameResult:
        """Read a photo (a marked page, a touching pair), or a video's frame with `still` False."""
        return readers[mode].read(Frame(index=index, image=image, source=source, time=index / 30.0, still=still))

    try:
        misses_to = open(args.misses, "w", encoding="utf-8") if args.misses else contextlib.nullcontext()
    except OSError as error:
        print(f"error: cannot write --misses {args.misses}: {error.strerror}", file=sys.stderr)
        return 2

    with misses_to as misses_file:

        def missed(source: str, frame: int, records: list[dict]) -> None:
            if misses_file is not None and records:
                write_misses(misses_file, source, frame, records)

        total = args.videos * args.frames + 2 * len(modes) * args.mark_pages + args.pairs
        progress = tqdm(total=total, unit="frame", file=sys.stderr)
        bar: Callable = progress.update
        say = tqdm.write  # a line of figures above the progress bar, not through it
        base = args.seed * 1_000_000
        if args.videos:
            say(f"hand-held videos ({'untracked' if args.no_tracking else 'tracked'}), {args.frames} frames each")
            overall = VideoCounts(Counts())
            conditions = args.conditions.split(",")
            for i in range(args.videos):
                size, condition = VIDEO_SIZES[i % len(VIDEO_SIZES)], conditions[i % len(conditions)]
                video = make_video(base + i, glyphs, args.frames, size, condition)
                tracker = DigitTracker()
                results = []
                for index, image in enumerate(video.frames):
                    result = read(image, index, f"video{i}", still=False)
                    results.append(result if args.no_tracking else tracker.update(result))
                    missed(f"video{i}-{condition}", index, frame_misses(video.truth[index], results[-1]))
                    bar()
                scored = score_video(video.truth, results)
                overall = overall + scored
                say(f"  video {i} {size[0]}x{size[1]} {condition:9s} read {_pct(scored.counts.read_rate):>8s}  "
                      f"false {_pct(scored.counts.false_rate):>7s}  label changes {scored.label_changes}"
                      f"/{scored.steady_pairs}  id changes {scored.id_changes}  numbers exact "
                      f"{_pct(scored.counts.number_accuracy):>8s}  number changes {scored.number_changes}"
                      f"/{scored.steady_numbers}")
            say(f"  per-frame read rate {_pct(overall.counts.read_rate)} ({overall.counts.right} of "
                f"{overall.counts.true_digits} digit-frames; goal >= 98 %), false detections "
                  f"{_pct(overall.counts.false_rate)}, label changes {_pct(overall.label_change_rate)} of "
                  f"{overall.steady_pairs} digit-frames (goal <= 0.5 %), id changes {_pct(overall.id_change_rate)}")
            say(f"  numbers read exactly in {_pct(overall.counts.number_accuracy)} of {overall.counts.true_numbers} "
                  f"number-frames; a number's text changes between consecutive frames in "
                  f"{_pct(overall.number_change_rate)} of {overall.steady_numbers}")
        if args.mark_pages:
            marked: dict[str, list] = {mode: [] for mode in modes}
            unmarked: dict[str, list] = {mode: [] for mode in modes}
            for i in range(args.mark_pages):
                page = make_page(base + 100_000 + i, glyphs, "marks")
                for mode in modes:
                    marked[mode].append((page, read(page.image, mode=mode)))
                missed(f"marks{i}", 0, frame_misses(page, marked[modes[0]][-1][1]))
                clean = make_page(base + 100_000 + i, glyphs, "marks", without_marks=True)
                for mode in modes:
                    unmarked[mode].append((clean, read(clean.image, mode=mode)))
                bar(2 * len(modes))
            marks = sum(len(page.marks) for page, _ in marked[modes[0]])
            say(f"pages with non-digit marks ({args.mark_pages} pages, {marks} marks; confidence floor {args.conf})")
            for mode in modes:
                figures = score_marks(marked[mode], unmarked[mode])
                say(f"  rejection {mode:9s}: false detections {figures['false']}/{figures['detections']} = "
                      f"{_pct(figures['false_rate'])} (goal <= 1 %), {figures['false_on_marks']} on marks; read rate "
                      f"{_pct(figures['read_rate_marked'])} with marks, {_pct(figures['read_rate_unmarked'])} "
                      f"without (goal: unchanged)")
            if "class" in modes:  # the class alone reports everything; each floor on top of it, measured at once
                say("  calibrating a confidence floor on top of the class (same pages and splits):")
                for floor in CALIBRATION_FLOORS:
                    figures = score_marks(_above(marked["class"], floor), _above(unmarked["class"], floor))
                    say(f"    floor {floor:.2f}: false detections {_pct(figures['false_rate'])}, read rate "
                          f"{_pct(figures['read_rate_marked'])} with marks, {_pct(figures['read_rate_unmarked'])} without")
        if args.pairs:
            right = in_video = 0
            for i in range(args.pairs):
                pair = make_touching_pair(base + 200_000 + i, glyphs)
                as_photo, as_video = read(pair.page.image), read(pair.page.image, still=False)
                right += pair_read_right(pair, as_photo)
                in_video += pair_read_right(pair, as_video)
                missed(f"pair{i}", 0, pair_miss(pair, as_photo, "photo") + pair_miss(pair, as_video, "video"))
                bar()
            say(f"touching pairs: {right}/{args.pairs} = {_pct(right / args.pairs)} read as the right two digits "
                  f"(goal >= 90 %); as a video frame, where narrower blobs are not cut and the pair network reads only "
                  f"those the classifier reads unsurely: {_pct(in_video / args.pairs)}")
        progress.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
