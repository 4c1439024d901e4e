"""Read a video's frames on several processes at once, results in frame order: for headless runs.

The reader is many small OpenCV and NumPy calls driven from Python, so threads would share one core
(Python's GIL) and gain nothing; processes use every core. Each worker holds its own `DigitReader`
(one LiteRT thread each) and reads whole frames, so a frame's crops still go to the classifier in
one batched call. Frames reach the workers through shared memory (one copy of their ink channel, the
only part of a frame the reader reads; no pickling) and only the small results come back, each
worker on a pipe of its own: frames are dealt to the workers in turn, so each frame's result is read
from the worker it went to, in order. Tracking stays with the caller: it needs the frames in order.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import traceback
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing import shared_memory

import numpy as np

from digitrec.binarise import ink_channel
from digitrec.classify import ModelFileError
from digitrec.group import DEFAULT_GROUPING, GroupingConfig
from digitrec.merge import DEFAULT_MERGE, MergeConfig
from digitrec.reader import DEFAULT_MIN_CONFIDENCE, DEFAULT_MODEL, DEFAULT_PAIR_MODEL, photo_pair_model_for
from digitrec.segment import DEFAULT_SEGMENTATION, SegmentationConfig
from digitrec.split import DEFAULT_SPLIT, SplitConfig
from digitrec.types import Frame, FrameResult

FRAMES_IN_FLIGHT_PER_WORKER = 2
"""Frames handed to each worker ahead of the one being written: one being read, one waiting."""

START_TIMEOUT_S = 120.0
"""How long a worker may take to start and load the model before the run gives up."""

RESULT_POLL_S = 1.0
"""How often the caller, waiting for a result, checks that every worker is still alive."""


class WorkerError(RuntimeError):
    """A worker process failed or died; the message says which frame and why."""


@dataclass(frozen=True)
class _Settings:
    model_path: str
    min_confidence: float
    segmentation: SegmentationConfig
    grouping: GroupingConfig
    splitting: SplitConfig
    merging: MergeConfig
    pair_model: str | None
    photo_pair_model: str | None


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ParallelReader:
    """A `DigitReader` spread over `workers` processes; use `read_stream` for a run of frames.

    Use it as a context manager (or call `close`) so the workers and their shared memory go away. Its processes
    are spawned and import the main script: a script makes it under `if __name__ == "__main__":`.
    """

    last_mask = None
    """No mask view: the masks stay in the workers (a window run uses `DigitReader`)."""

    def __init__(
        self,
        model_path: str | os.PathLike = DEFAULT_MODEL,
        workers: int = 2,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        segmentation: SegmentationConfig = DEFAULT_SEGMENTATION,
        grouping: GroupingConfig = DEFAULT_GROUPING,
        splitting: SplitConfig = DEFAULT_SPLIT,
        merging: MergeConfig = DEFAULT_MERGE,
        pair_model: str | os.PathLike | None = DEFAULT_PAIR_MODEL,
        photo_pair_model: str | os.PathLike | None = None,
    ):
        """`pair_model`, `photo_pair_model`: as `DigitReader`'s (paths, or None)."""
        if workers < 1:
            raise ValueError(f"workers must be 1 or more, not {workers}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"the minimum confidence must be between 0 and 1, not {min_confidence}")
        photo_pair_model = None if pair_model is None else photo_pair_model_for(pair_model, photo_pair_model)
        settings = _Settings(str(model_path), min_confidence, segmentation, grouping, splitting, merging,
                             None if pair_model is None else str(pair_model),
                             None if photo_pair_model is None else str(photo_pair_model))
        # Spawned, not forked: the caller may hold threads (a decoding source) that a fork would copy mid-step.
        context = multiprocessing.get_context("spawn")
        # A pipe each rather than shared queues: no feeder thread and no lock between the processes
        # (a frame's task and result cost ~13 us of CPU through a pipe, ~57 us through two queues).
        pipes = [context.Pipe() for _ in range(workers)]
        self._connections = [ours for ours, _ in pipes]
        self._processes = [
            context.Process(target=_serve, args=(settings, theirs), name=f"digitrec reader {index + 1}", daemon=True)
            for index, (_, theirs) in enumerate(pipes)
        ]
        self._slots: list[shared_memory.SharedMemory | None] = [None] * (FRAMES_IN_FLIGHT_PER_WORKER * workers)
        self._finalizer = weakref.finalize(self, _shut_down, self._processes, self._connections, self._slots)
        for process in self._processes:
            process.start()
        for _, theirs in pipes:
            theirs.close()  # the worker's end lives in the worker now
        ink_channel(np.zeros((2, 2, 3), np.uint8))  # its compiled pass loaded while the workers start, not on frame 0
        for worker in range(workers):
            message = self._receive(worker, START_TIMEOUT_S, "starting")
            if message[0] == "failed":
                self.close()
                raise ModelFileError(message[1])
        self.workers = workers
        self._ink = segmentation.ink

    def read(self, frame: Frame) -> FrameResult:
        """Read one frame (on a worker): the same result `DigitReader.read` gives."""
        return next(iter(self.read_stream([frame], overlap=True)))  # the frame is here: no thread to wait for it

    def read_stream(self, frames: Iterable[Frame], overlap: bool = False) -> Iterator[FrameResult]:
        """Read every frame, several at once, and yield their results in the order of `frames`.

        `overlap`, as `DigitReader.read_stream`'s: True for a file, whose next frame is already waiting, so
        frames are dealt ahead (`FRAMES_IN_FLIGHT_PER_WORKER` each). False for a camera or stream, whose next
        frame may be a frame interval away: one frame per worker, each result given the moment it is read
        (not once the next frame has come), and a worker's next frame taken from the source when it is free, on
        a thread (`_LiveFrames`). The default, as `DigitReader`'s; `pipeline.read_frames` passes True for files.
        """
        if not self._finalizer.alive:
            raise WorkerError("this reader's processes were closed; make a new ParallelReader")
        if not overlap:
            yield from self._read_live(frames)
            return
        free = list(range(len(self._slots)))
        waiting: dict[int, tuple[Frame, int]] = {}  # sent, not yet yielded: key -> (frame, slot)
        frames = iter(frames)
        sent = next_key = 0
        exhausted = False
        try:
            while True:
                while free and not exhausted:
                    frame = next(frames, None)
                    if frame is None:
                        exhausted = True
                        break
                    slot = free.pop()
                    # Frame `sent` goes to worker `sent % workers`, whose results come back in the order sent.
                    # Only the frame's ink channel is read (`segment.segment_digits`), so only it is shared: a
                    # third of the bytes to copy, and to fetch from the other core's cache.
                    self._send(sent % self.workers, (sent, slot, *self._share(slot, ink_channel(frame.image, self._ink)),
                                                     frame.index, frame.source, frame.time, frame.still),
                               f"sending frame {frame.index}")
                    waiting[sent] = (frame, slot)
                    sent += 1
                if next_key == sent:
                    return
                frame, slot = waiting[next_key]
                message = self._receive(next_key % self.workers, None, f"reading frame {frame.index}")
                del waiting[next_key]
                free.append(slot)  # the worker is done with the frame's memory
                next_key += 1
                yield self._result(frame, message)
        finally:
            # Collect what is still being read, so the next run does not receive it (unless the
            # workers are gone, when there is nothing to collect and the error is already raised).
            if self._finalizer.alive:
                for key in sorted(waiting):
                    self._receive(key % self.workers, None, "finishing")

    def _read_live(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """`read_stream` for a live source: a result is never held back waiting for the source's next frame."""
        fetcher = _LiveFrames(frames)
        free = list(range(self.workers))  # one frame per worker: more would only wait, and show older frames
        waiting: dict[int, tuple[Frame, int]] = {}  # sent, not yet yielded: key -> (frame, slot)
        sent = next_key = 0
        try:
            while True:
                if free and not fetcher.asked and not fetcher.ended:
                    fetcher.ask()
                if next_key == sent and fetcher.ended:
                    if fetcher.error is not None:
                        raise fetcher.error  # the source failed (a stream gone): after every result before it
                    return
                watched = [fetcher.arrived] if fetcher.asked else []
                if next_key < sent:
                    watched.append(self._connections[next_key % self.workers])
                ready = multiprocessing.connection.wait(watched, RESULT_POLL_S)
                if not ready:
                    self._raise_if_dead(f"reading frame {waiting[next_key][0].index}" if waiting else "waiting")
                    continue
                if fetcher.arrived in ready:
                    frame = fetcher.take()
                    if frame is not None:
                        slot = free.pop()
                        self._send(sent % self.workers,
                                   (sent, slot, *self._share(slot, ink_channel(frame.image, self._ink)),
                                    frame.index, frame.source, frame.time, frame.still),
                                   f"sending frame {frame.index}")
                        waiting[sent] = (frame, slot)
                        sent += 1
                if next_key < sent and self._connections[next_key % self.workers] in ready:
                    frame, slot = waiting.pop(next_key)
                    message = self._receive(next_key % self.workers, None, f"reading frame {frame.index}")
                    free.append(slot)
                    next_key += 1
                    yield self._result(frame, message)
        finally:
            fetcher.close()
            if self._finalizer.alive:
                for key in sorted(waiting):
                    self._receive(key % self.workers, None, "finishing")

    @staticmethod
    def _result(frame: Frame, message: tuple) -> FrameResult:
        if message[0] == "error":
            raise WorkerError(f"reading frame {frame.index} of {frame.source} failed in a worker:\n{message[2]}")
        _, _, detections, numbers, rejected, timings = message
        return FrameResult(frame=frame, detections=detections, numbers=numbers, rejected=rejected, timings=timings)

    def _share(self, slot: int, image: np.ndarray) -> tuple[str, tuple[int, ...], str]:
        """Copy an image into a slot's shared memory (made anew when it is too small)."""
        memory = self._slots[slot]
        if memory is None or memory.size < image.nbytes:
            if memory is not None:
                memory.close()
                memory.unlink()
            memory = self._slots[slot] = shared_memory.SharedMemory(create=True, size=max(image.nbytes, 1))
        np.ndarray(image.shape, image.dtype, buffer=memory.buf)[...] = image
        return memory.name, image.shape, image.dtype.str

    def _send(self, worker: int, task: tuple, doing: str) -> None:
        """Hand one worker a task; raises WorkerError when it has died."""
        try:
            self._connections[worker].send(task)
        except OSError:  # a broken pipe: the worker is gone
            self._processes[worker].join(timeout=RESULT_POLL_S)
            self._raise_if_dead(doing)
            raise

    def _raise_if_dead(self, doing: str) -> None:
        dead = [p for p in self._processes if not p.is_alive()]
        if dead:
            self.close()
            # A script that makes a ParallelReader at its top level is run again by each spawned worker, which
            # then dies as it starts.
            script = (" (in a script of your own, make the ParallelReader under `if __name__ == \"__main__\":`, as "
                      "its processes are spawned and import the script)") if doing == "starting" else ""
            raise WorkerError(f"a reader process died while {doing} (exit code {dead[0].exitcode}); "
                              f"check memory, or run with --workers 1{script}")

    def _receive(self, worker: int, timeout: float | None, doing: str) -> tuple:
        """The next message of one worker; raises WorkerError when a worker has died or the timeout passes."""
        connection = self._connections[worker]
        waited = 0.0
        while True:
            try:
                if connection.poll(RESULT_POLL_S):
                    return connection.recv()
            except (EOFError, OSError):  # its end closed: the worker is gone, which the check below reports
                self._processes[worker].join(timeout=RESULT_POLL_S)
            waited += RESULT_POLL_S
            self._raise_if_dead(doing)
            if timeout is not None and waited >= timeout:
                self.close()
                raise WorkerError(f"the reader processes took over {timeout:.0f} s {doing}; run with --workers 1")

    def close(self) -> None:
        """Stop the workers and free the shared memory."""
        self._finalizer()

    def __enter__(self) -> ParallelReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _LiveFrames:
    """A live source's frames, each taken on a thread of this class's own when asked for.

    The source's next frame may be a frame interval away; taken here, the caller can wait for it and
    for a worker's result at once (`arrived` is a connection `multiprocessing.connection.wait` watches).
    """

    def __init__(self, frames: Iterable[Frame]):
        self._frames = iter(frames)
        self.arrived, self._signal = multiprocessing.Pipe(duplex=False)
        self._wanted = threading.Semaphore(0)
        self._stopping = False
        self._frame: Frame | None = None
        self.error: BaseException | None = None
        self.asked = False
        """A frame is asked for and not yet taken."""
        self.ended = False
        """The source has no more frames (or failed: `error`)."""
        self._thread = threading.Thread(target=self._fetch, name="digitrec-live-frames", daemon=True)
        self._thread.start()

    def ask(self) -> None:
        self.asked = True
        self._wanted.release()

    def take(self) -> Frame | None:
        """The frame asked for, once `arrived` is ready; None when the source has ended or failed."""
        try:
            self.arrived.recv()
        except EOFError:  # the thread is gone without a word
            self._frame = None
            self.error = self.error or RuntimeError("the thread taking the source's frames stopped")
        self.asked = False
        if self._frame is None:
            self.ended = True
        return self._frame

    def _fetch(self) -> None:
        with self._signal:
            while True:
                self._wanted.acquire()
                if self._stopping:
                    return
                try:
                    self._frame = next(self._frames, None)
                except BaseException as error:  # given to the caller's thread once the results before it are
                    self._frame, self.error = None, error
                try:
                    self._signal.send(True)
                except OSError:  # the caller has closed
                    return
                if self._frame is None:
                    return

    def close(self) -> None:
        """Stop asking the source. A thread waiting inside the source for a frame asked for keeps the source's
        iterator until that frame comes (the frame is dropped) or the source is closed."""
        self._stopping = True
        self._wanted.release()
        self.arrived.close()


def _shut_down(processes, connections, slots) -> None:
    for process, connection in zip(processes, connections):
        if process.is_alive():
            with contextlib.suppress(OSError):
                connection.send(None)
    for process in processes:
        if process.pid is None:
            continue  # never started (the first start failed)
        process.join(timeout=5)
        if process.is_alive():
            process.kill()  # it ignores SIGTERM (`_serve`)
    for connection in connections:
        connection.close()
    for index, memory in enumerate(slots):
        if memory is not None:
            memory.close()
            memory.unlink()
            slots[index] = None


def _serve(settings: _Settings, connection) -> None:
    """A worker: load the reader, then read the frames sent on `connection` from shared memory until told to stop."""
    from digitrec.classify import DigitClassifier
    from digitrec.reader import NO_PAIR_MODEL, DigitReader, names_no_pair_model, open_pair_model

    # A terminal's Ctrl-C reaches every process of its group, as `timeout`'s and systemd's SIGTERM do: the parent
    # stops the run and closes the workers (killing one that does not stop).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The parallelism is across processes: the reader keeps OpenCV on one thread (reader.OPENCV_THREADS)
    # and LiteRT gets one here, so that threads inside do not fight for the cores.
    try:
        # The parent sends each frame's ink channel, already dark on light whatever the ink (`read_stream`).
        segmentation = replace(settings.segmentation, ink="dark")
        reader = DigitReader(min_confidence=settings.min_confidence, segmentation=segmentation,
                             grouping=settings.grouping, splitting=settings.splitting, merging=settings.merging,
                             classifier=DigitClassifier(settings.model_path, num_threads=1),
                             pair_model=open_pair_model(settings.pair_model, num_threads=1),
                             photo_pair_model=(NO_PAIR_MODEL if names_no_pair_model(settings.photo_pair_model)
                                               else open_pair_model(settings.photo_pair_model, num_threads=1)))
        # Every batch size a frame is likely to need, made before the first frame comes (not in the middle of a run).
        reader.classifier.prepare()
    except (ModelFileError, OSError, ValueError) as error:
        connection.send(("failed", str(error)))
        return
    connection.send(("ready",))
    attached: dict[int, shared_memory.SharedMemory] = {}
    for task in _tasks(connection):
        key, slot, name, shape, dtype, index, source, frame_time, still = task
        try:
            memory = attached.get(slot)
            if memory is None or memory.name != name:
                if memory is not None:
                    memory.close()
                memory = attached[slot] = shared_memory.SharedMemory(name=name)
            image = np.ndarray(shape, np.dtype(dtype), buffer=memory.buf)
            result = reader.read(Frame(index=index, image=image, source=source, time=frame_time, still=still))
            del image
            # The 28x28 crops stay here: only the live window's labelling mode uses them.
            detections = [replace(detection, image=None) for detection in result.detections]
            connection.send(("read", key, detections, result.numbers, result.rejected, result.timings))
            del result  # it holds the frame's view of the shared memory
        except (BrokenPipeError, ConnectionResetError):
            break  # the caller is gone (killed, or stopped by a signal): nobody to answer, nothing to report
        except Exception:  # report any failure with its frame rather than die silently
            with contextlib.suppress(OSError):
                connection.send(("error", key, traceback.format_exc()))
    for memory in attached.values():
        memory.close()


def _tasks(connection) -> Iterator[tuple]:
    """The tasks sent on `connection` until None, or until the caller is gone (its end of the pipe closed)."""
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        yield task
