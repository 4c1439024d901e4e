"""Read handwritten digits live from a webcam, or from a video, photos, a folder or a stream.

    python live_digits.py                                  # the first webcam, in a window
    python live_digits.py --source samples/page.jpg --no-display --json -
    python live_digits.py --source clip.mp4 --output clip_read.mp4 --no-display
    python live_digits.py --serve                          # the web page on http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from digitrec.cli_help import DefaultsHelpFormatter, add_pair_model_options, pair_models

WINDOW = "digitrec"
PIPE_CLOSED = 141
"""The exit status when the program reading `--json -` closed it (`| head`): a shell's for a filter stopped so."""
ESCAPE = 27
TAB = 9
HELP_KEYS = ("keys: q/Esc quit, space pause, s snapshot, d threshold mask, c confidence, "
             "l label digits for fine-tuning (Tab/n or a click picks a box, 0-9 saves it as that digit, Esc/l done)")
LABELLING_STATUS = "LABELLING: Tab/n or click = next box, 0-9 = its digit, Esc/l = done"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Box and read every handwritten digit, and multi-digit numbers, in a webcam's "
        "view or in videos, photos, folders and streams. " + HELP_KEYS + ".",
        formatter_class=DefaultsHelpFormatter,
        epilog="environment: DIGITREC_RUNTIME=auto|litert|openvino picks how the .tflite model runs (auto: "
        "OpenVINO on x86-64 CPUs, reading the model's 8-bit .int8.tflite export, 1.5-2.5x faster than LiteRT "
        "there; LiteRT elsewhere).",
    )
    parser.add_argument("--source", default="0",
                        help="camera index, video file, image, folder, glob ('scans/*.jpg') or stream URL")
    parser.add_argument("--model", default=None, help="a .keras or .tflite digit model (default: models/digits.keras)")
    add_pair_model_options(parser)
    parser.add_argument("--conf", type=float, default=0.5, help="minimum confidence of a reported digit, 0-1")
    parser.add_argument("--ink", choices=("dark", "light"), default="dark",  # binarise.INK_COLOURS
                        help="dark: pen, pencil or marker on paper or a whiteboard; light: chalk on a blackboard, "
                        "white digits on black")
    parser.add_argument("--json", metavar="PATH", help="write one JSON object per frame (JSON Lines); '-' for stdout")
    parser.add_argument("--csv", metavar="PATH", help="write one CSV row per digit read")
    parser.add_argument("--output", metavar="PATH",
                        help="annotated output: an image file (one photo), a folder (photos) or a video file")
    parser.add_argument("--no-display", action="store_true", help="run headless: no window")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--workers", type=int, default=1,
                        help="headless only: read frames on this many processes at once, results still in order "
                        "(1.3-1.4x the frames per second with 2 on 2 cores; each starts in about a second)")
    parser.add_argument("--labels", metavar="DIR", default="labels",
                        help="folder where crops labelled in the window (key l) are saved, for train.py --finetune DIR")
    web = parser.add_argument_group("web page", "--serve reads photos, the browser's camera and drawings "
                                    "on a web page instead (--model, --pair-model, --photo-pair-model and --conf "
                                    "apply; the other options do not: its drawing pad writes dark ink)")
    web.add_argument("--serve", action="store_true", help="start the web page and its API (POST /api/read)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 opens it to the network")
    web.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    return parser.parse_args(argv)


def segmentation_for(args: argparse.Namespace):
    """The segmenter's settings for `--ink`."""
    from digitrec.segment import DEFAULT_SEGMENTATION

    return replace(DEFAULT_SEGMENTATION, ink=args.ink)


def fail(message: str, code: int = 2) -> int:
    print(f"live_digits.py: error: {message}", file=sys.stderr)
    return code


def display_available() -> bool:
    """Whether a window can open: elsewhere than Linux always; on Linux a Wayland display, or an X display that is
    remote ('host:0') or whose local socket is there. A DISPLAY left from a closed X server would otherwise end the
    run in Qt's abort, with no word from us."""
    if sys.platform != "linux" or os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY", "")
    host, _, number = display.partition(":")
    if not number:
        return False
    if host and host != "unix":
        return True
    return Path(f"/tmp/.X11-unix/X{number.split('.')[0]}").exists()


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, `docker stop`, systemd), stopping the run as Ctrl-C does: every output closed whole."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def stop_words(stop: KeyboardInterrupt) -> tuple[str, int]:
    """What stopped the run, in the summary's words, and the exit status a shell gives for it."""
    return ("SIGTERM", 143) if isinstance(stop, Terminated) else ("Ctrl-C", 130)


@contextlib.contextmanager
def sigterm_stops_the_run():
    """SIGTERM raises `Terminated` inside the block (in the main thread; the handler before it is put back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # FFmpeg's own log lines ("moov atom not found") would come before the one line that says what is wrong with
    # a video and what to do; set OPENCV_FFMPEG_LOGLEVEL to see them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if not 0.0 <= args.conf <= 1.0:
        return fail(f"--conf must be between 0 and 1, not {args.conf}")
    if args.max_frames is not None and args.max_frames < 1:
        return fail("--max-frames must be at least 1")
    if args.workers < 1:
        return fail("--workers must be at least 1")
    if args.serve:
        return serve_page(args)  # uvicorn stops on SIGTERM itself
    with sigterm_stops_the_run():
        return read_source(args)


def read_source(args: argparse.Namespace) -> int:
    """Read `args.source` into the window and outputs until it ends, Ctrl-C or SIGTERM."""
    show_window = not args.no_display
    if show_window and not display_available():
        print("live_digits.py: no display found; running headless (pass --no-display to silence this)",
              file=sys.stderr)
        show_window = False
    if show_window and args.workers > 1:
        return fail("--workers needs --no-display: the window's mask view and labelling read on one process")

    import cv2

    # OpenCV's warnings (a stream's timeout, a decoder's complaint) likewise come before the reader's own line.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    from digitrec.annotate import draw_result, draw_selection, draw_status, mask_view
    from digitrec.classify import ModelFileError
    from digitrec.labels import LabelFolderError, LabelStore
    from digitrec.parallel import ParallelReader, WorkerError
    from digitrec.pipeline import RunSummary, read_frames
    from digitrec.reader import DEFAULT_MODEL, DigitReader
    from digitrec.sinks import AnnotatedImageSink, CsvSink, JsonLinesSink, SinkError, VideoSink, check_distinct
    from digitrec.sources import ImageSource, SourceError, open_source

    reader = None
    try:
        if args.workers > 1:
            reader = ParallelReader(args.model or DEFAULT_MODEL, workers=args.workers, min_confidence=args.conf,
                                    segmentation=segmentation_for(args), **pair_models(args))
        else:
            reader = DigitReader(args.model or DEFAULT_MODEL, min_confidence=args.conf,
                                 segmentation=segmentation_for(args), **pair_models(args))
        source = open_source(args.source)
        labels = LabelStore(args.labels, ink=args.ink) if show_window else None  # labelling is the window's
    except (ModelFileError, SourceError, LabelFolderError, WorkerError, KeyboardInterrupt) as error:
        if isinstance(reader, ParallelReader):
            reader.close()
        if isinstance(error, KeyboardInterrupt):  # while the model loads or a stream opens: nothing read or written
            words, status = stop_words(error)
            print(f"live_digits.py: stopped by {words} before the first frame", file=sys.stderr)
            return status
        return fail(str(error))

    summary = RunSummary()
    state = {"paused": False, "mask": False, "confidence": False, "labelling": False, "selected": 0, "click": None}
    interrupted: KeyboardInterrupt | None = None
    with source, contextlib.ExitStack() as outputs:
        if isinstance(reader, ParallelReader):
            outputs.callback(reader.close)
        try:
            check_distinct(source.files, {"--json": args.json, "--csv": args.csv, "--output": args.output})
            result_sinks = [JsonLinesSink(args.json)] if args.json else []
            if args.csv:
                result_sinks.append(CsvSink(args.csv))
            image_sinks = []
            if args.output:
                if isinstance(source, ImageSource):
                    image_sinks.append(AnnotatedImageSink(args.output, single_image=source.total == 1,
                                                          inputs=source.files))
                else:
                    image_sinks.append(VideoSink(args.output, fps=source.fps or 30.0, live=source.live))
            for sink in image_sinks + result_sinks:  # every output checked before any file is opened (emptied)
                sink.check()
            for sink in image_sinks + result_sinks:
                outputs.enter_context(sink)
        except SinkError as error:
            return fail(str(error))

        frames = read_frames(source, reader, result_sinks, image_sinks, annotate=show_window,
                             max_frames=args.max_frames, show_confidence=lambda: state["confidence"],
                             summary=summary)
        progress = None
        if not show_window and args.json != "-" and not source.live:
            from tqdm import tqdm

            total = source.total if args.max_frames is None else min(source.total or args.max_frames, args.max_frames)
            progress = tqdm(total=total, unit="frame" if not isinstance(source, ImageSource) else "image",
                            desc="reading", file=sys.stderr)
        if show_window:
            cv2.namedWindow(WINDOW)
            cv2.setMouseCallback(WINDOW, lambda event, x, y, *_: remember_click(state, event, x, y, cv2))
        try:
            for read in frames:
                if progress is not None:
                    progress.update(1)
                if show_window:
                    if read.result.frame.still:
                        state["paused"] = True  # a photo stays in the window until space (next) or q
                    def show(redraw=False, read=read):
                        # The loop already drew this frame; draw again only when a key changed the look.
                        annotated = read.annotated
                        if redraw:
                            annotated = draw_result(read.result.frame.image, read.result, state["confidence"])
                        view = mask_view(reader.last_mask, annotated.shape[1::-1]) if state["mask"] else annotated
                        view = view.copy()
                        if read.result.frame.still:
                            status = "space: next photo, q: quit"
                        else:
                            status = f"{read.fps:.1f} FPS" + ("  paused" if state["paused"] else "")
                        if read.latency is not None:  # cameras and streams: capture to this overlay
                            status += f"  {1000 * read.latency:.0f} ms behind"
                        if state["labelling"]:
                            detections = read.result.detections
                            if detections:
                                draw_selection(view, selected_detection(state, detections).box)
                            status = LABELLING_STATUS if detections else "LABELLING: no digit boxes here (try --conf 0); Esc/l = done"
                        view = draw_status(view, status)
                        cv2.imshow(WINDOW, view)
                        return view

                    if not handle_keys(cv2, state, read, show(), show, args.output, labels):
                        break
        except KeyboardInterrupt as stop:
            interrupted = stop
        except BrokenPipeError as error:
            if args.json != "-":
                return fail(f"a pipe closed while reading ({error})")
            # `--json - | head -1`: the reader of our output has all it wanted. Stop as a filter does, quietly:
            # what is still buffered for stdout goes nowhere rather than to a second traceback at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return PIPE_CLOSED
        except (SinkError, WorkerError) as error:
            return fail(str(error))
        finally:
            if progress is not None:
                progress.close()
            if show_window:
                cv2.destroyAllWindows()

    for problem in summary.problems:
        print(f"live_digits.py: warning: {problem}", file=sys.stderr)
    rate = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    print(f"read {summary.digits} digits in {summary.frames} frames ({rate:.1f} frames/s)"
          + (f"; stopped by {stop_words(interrupted)[0]}, everything read so far is written" if interrupted else ""),
          file=sys.stderr)
    if interrupted:
        return stop_words(interrupted)[1]
    return 1 if summary.problems else 0


def serve_page(args: argparse.Namespace) -> int:
    """Run the web page until Ctrl-C."""
    from digitrec.classify import ModelFileError
    from digitrec.reader import DEFAULT_MODEL, DigitReader
    from digitrec.web.app import create_app
    from digitrec.web.server import ServerError, WebServer, is_loopback

    try:
        reader = DigitReader(args.model or DEFAULT_MODEL, min_confidence=args.conf, **pair_models(args))
        server = WebServer(create_app(reader), args.host, args.port)
    except (ModelFileError, ServerError) as error:
        return fail(str(error))
    if not is_loopback(args.host):
        print(f"live_digits.py: warning: listening on {args.host}: other machines can use this page", file=sys.stderr)
    print(f"digitrec page on {server.url} (API docs: {server.url}docs); Ctrl-C stops", file=sys.stderr)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


def remember_click(state: dict, event: int, x: int, y: int, cv2) -> None:
    """Mouse callback: keep the last left click for the key loop to pick a box with."""
    if event == cv2.EVENT_LBUTTONDOWN:
        state["click"] = (x, y)


def selected_detection(state: dict, detections: list):
    """The box labelling has framed: state["selected"] counts through the detections in reading order."""
    from digitrec.labels import reading_order

    return detections[reading_order(detections)[state["selected"] % len(detections)]]


def handle_label_keys(state: dict, key: int, read, labels) -> bool:
    """Keys of labelling mode; True when the key was one of them (the view needs redrawing)."""
    from digitrec.labels import box_at, reading_order

    detections = read.result.detections
    if key in (ord("l"), ESCAPE):
        state["labelling"] = False
        print(f"labelling done: {labels.added} crops saved in {labels.folder}/ this session; "
              f"fine-tune with: python3 train.py --finetune {labels.folder}", file=sys.stderr)
        return True
    if key in (TAB, ord("n")) and detections:
        state["selected"] = (state["selected"] + 1) % len(detections)
        return True
    if ord("0") <= key <= ord("9") and detections:
        from digitrec.labels import LabelFolderError

        detection = selected_detection(state, detections)
        earlier = labels.earlier_label(read.result.frame, detection.box)
        try:
            saved = labels.add_detection(read.result.frame, detection, key - ord("0"))
        except LabelFolderError as error:  # the window stays: the user can quit and pass another --labels
            print(f"live_digits.py: error: {error}", file=sys.stderr)
            return False
        print(f"labelled box {list(detection.box)} (read as {detection.digit}) as {saved.digit}: {saved.image_path}"
              + (f" (replaces its label {earlier})" if earlier is not None else ""), file=sys.stderr)
        state["selected"] = (state["selected"] + 1) % len(detections)
        return True
    if state["click"] is not None:
        picked = box_at([detection.box for detection in detections], state["click"])
        state["click"] = None
        if picked is not None:
            state["selected"] = reading_order(detections).index(picked)
            return True
    return False


def window_closed(cv2) -> bool:
    """Whether the user closed the window (its close button): OpenCV then reports it invisible, or, once it is
    destroyed, raises for it."""
    try:
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True


def handle_keys(cv2, state: dict, read, view, show, output: str | None, labels) -> bool:
    """React to the window's keys; False when the user asked to quit or closed the window. Blocks while paused,
    redrawing (with `show`) when a key changes what the paused frame should look like."""
    while True:
        key = cv2.waitKey(1 if not state["paused"] else 50) & 0xFF
        if window_closed(cv2):
            return False
        if state["labelling"]:
            if key == ord("q"):
                return False
            if handle_label_keys(state, key, read, labels):
                view = show(redraw=True)
            continue
        if key in (ord("q"), ESCAPE):
            return False
        if key == ord("l"):
            # Labelling works on a still frame: pause, and start at the first box.
            state.update(paused=True, labelling=True, selected=0, click=None)
            view = show(redraw=True)
            continue
        if key == ord(" "):
            state["paused"] = not state["paused"]
            view = show(redraw=True)
        elif key == ord("d"):
            state["mask"] = not state["mask"]
            view = show(redraw=True)
        elif key == ord("c"):
            state["confidence"] = not state["confidence"]
            view = show(redraw=True)
        elif key == ord("s"):
            folder = Path(output).parent if output and Path(output).suffix else Path(output or ".")
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{read.result.frame.index}"
            path, copy = folder / f"{stem}.png", 1
            while path.exists():  # two snapshots in one second (a view, then its mask) both kept
                path, copy = folder / f"{stem}_{copy}.png", copy + 1
            cv2.imwrite(str(path), view)
            print(f"saved {path}", file=sys.stderr)
        if not state["paused"]:
            return True


if __name__ == "__main__":
    sys.exit(main())
