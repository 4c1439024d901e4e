"""Follow digits across video frames: stable track ids, labels voted over recent frames, numbers regrouped."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from digitrec.group import DEFAULT_GROUPING, GroupingConfig, group_numbers
from digitrec.types import Box, Detection, FrameResult


@dataclass(frozen=True)
class TrackingConfig:
    """Every number of the tracker; distances are in units of the digits' own heights."""

    vote_window: int = 10
    """A track's label is the argmax of its digit probabilities averaged over this many recent frames."""
    switch_margin: float = 0.1
    """A track changes label only when the new label's averaged probability beats the current one's by this."""
    max_jump: float = 3.0
    """Largest whole-page shift between two frames that the motion estimate considers."""
    shift_neighbours: int = 3
    max_shift_candidates: int = 64
    """Candidate page shifts: the moves of each digit to its `shift_neighbours` nearest, at most this many."""
    inlier_distance: float = 0.35
    """A track agrees with a candidate page shift when a detection lies this close to where it moved."""
    match_distance: float = 0.5
    """Largest distance between a track's predicted centre and a detection's centre to be the same digit."""
    size_ratio: float = 1.6
    """Largest ratio of heights (either way) between a track and a detection it is matched to."""
    min_hits: int = 2
    """A new digit is reported once seen in this many frames, except in the first frames of a stream."""
    confirm_confidence: float = 0.95
    """...or at once when read with at least this confidence (a clear digit need not wait a frame)."""
    max_missed: int = 5
    """A track not seen for more than this many frames is dropped."""
    coast: int = 2
    """A track missing from up to this many frames is still reported, at its predicted box..."""
    coast_after: int = 5
    """...if it was seen in at least this many frames (a short-lived false track is not carried on)."""


DEFAULT_TRACKING = TrackingConfig()


@dataclass
class Track:
    """One digit followed across frames."""

    track_id: int
    box: Box
    """Where it was last seen, or predicted while missing."""
    evidence: np.ndarray
    """The (10,) digit probabilities of its recent frames, oldest first, in the first `frames` rows of a
    (vote_window, 10) array (one array a track rather than one a frame: the vote is a single sum)."""
    frames: int = 0
    label: int = -1
    hits: int = 0
    missed: int = 0
    confirmed: bool = False
    """Seen in `min_hits` frames (or in the stream's first frame): reported from now on."""
    image: np.ndarray | None = None
    """The 28x28 crop the classifier read of it this frame (`Detection.image`); None while it is missing."""

    def add_evidence(self, probabilities: np.ndarray) -> None:
        """Keep a frame's (10,) probabilities, dropping the oldest once the window is full."""
        if self.frames < len(self.evidence):
            self.frames += 1
        else:
            self.evidence[:-1] = self.evidence[1:]
        self.evidence[self.frames - 1] = probabilities

    def vote(self, config: TrackingConfig) -> tuple[int, float, np.ndarray]:
        """The label of the averaged evidence, kept unless another label beats it by `switch_margin`;
        its averaged probability, and the averaged evidence itself."""
        mean = np.add.reduce(self.evidence[: self.frames], axis=0) / self.frames
        best = int(mean.argmax())
        if self.label < 0 or mean[best] > mean[self.label] + config.switch_margin:
            self.label = best
        return self.label, float(mean[self.label]), mean


def box_centres(boxes: list[Box]) -> np.ndarray:
    """(n, 2) centres of (x, y, w, h) boxes."""
    if not boxes:
        return np.zeros((0, 2))
    array = np.asarray(boxes, float)
    return array[:, :2] + array[:, 2:] / 2


def estimate_shift(previous: np.ndarray, current: np.ndarray, scale: float, config: TrackingConfig,
                   guess: np.ndarray | None = None) -> np.ndarray:
    """The (dx, dy) that moves most of the `previous` centres onto some `current` centre.

    The moves of each previous centre to its nearest current ones (within `max_jump` digit heights)
    are the candidates; the one that the most previous centres agree with (a current centre within
    `inlier_distance` of where it sends them) wins, refined as the median of its agreeing displacements.
    A page moves as one, so this holds even when the shift is larger than the gap between digits.
    """
    guess = np.zeros(2) if guess is None else guess
    if len(previous) == 0 or len(current) == 0:
        return guess
    offsets = current[None, :, :] - previous[:, None, :]  # (p, c, 2)
    lengths = _lengths(offsets)
    # Candidates: each previous centre's moves to its few nearest current centres, at most a bounded
    # number of them, so a page of many digits costs no more than a page of a few dozen.
    nearest = np.argsort(lengths, axis=1)[:, : config.shift_neighbours]
    rows = np.arange(len(previous))[:, None]
    near = offsets[rows, nearest][lengths[rows, nearest] <= config.max_jump * scale]
    if len(near) > config.max_shift_candidates:
        near = near[np.linspace(0, len(near) - 1, config.max_shift_candidates).astype(int)]
    candidates = np.vstack([guess[None], near])
    tolerance = config.inlier_distance * scale
    # For each candidate shift: how far each previous centre lands from its nearest current centre.
    # (The same figures as np.linalg.norm over the last axis, without its (k, p, c, 2) temporary.)
    dx = offsets[None, :, :, 0] - candidates[:, None, None, 0]
    dy = offsets[None, :, :, 1] - candidates[:, None, None, 1]
    landed = np.sqrt((dx * dx + dy * dy).min(axis=2))  # (k, p)
    agreeing = landed <= tolerance
    best = int(agreeing.sum(axis=1).argmax())
    if not agreeing[best].any():
        return guess
    moved = previous + candidates[best]
    nearest = _lengths(current[None] - moved[:, None]).argmin(axis=1)
    chosen = agreeing[best]
    return _column_medians(current[nearest[chosen]] - previous[chosen])


def _lengths(offsets: np.ndarray) -> np.ndarray:
    """np.linalg.norm(offsets, axis=-1) of (..., 2) offsets, as it computes them, without its checks
    (the tracker's small arrays cost more in NumPy's wrappers than in the arithmetic)."""
    return np.sqrt(np.add.reduce(offsets * offsets, axis=-1))


def _median(values: list[float]) -> float:
    """np.median of a short list (the middle value, or the mean of the middle two), without NumPy's overhead."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def _column_medians(rows: np.ndarray) -> np.ndarray:
    """np.median(rows, axis=0) of an (n, 2) array, n >= 1."""
    return np.array([_median(rows[:, 0].tolist()), _median(rows[:, 1].tolist())])


def greedy_match(predicted: np.ndarray, heights: np.ndarray, boxes: list[Box],
                 config: TrackingConfig) -> list[tuple[int, int]]:
    """(track index, detection index) pairs, nearest first, each within `match_distance` and `size_ratio`.

    Greedy suffices: after the page's shift is taken out, digits are far apart compared with the
    remaining error, so the nearest pairs are the right ones (and scipy's Hungarian solver is not needed).
    """
    if len(predicted) == 0 or not boxes:
        return []
    centres = box_centres(boxes)
    detection_heights = np.asarray([b[3] for b in boxes], float)
    scale = np.maximum(heights[:, None], detection_heights[None, :])
    distance = _lengths(predicted[:, None] - centres[None]) / scale
    ratio = np.maximum(heights[:, None], detection_heights[None]) / np.maximum(
        np.minimum(heights[:, None], detection_heights[None]), 1.0)
    distance[(distance > config.match_distance) | (ratio > config.size_ratio)] = np.inf
    pairs = []
    used_tracks: set[int] = set()
    used_detections: set[int] = set()
    for flat in np.argsort(distance, axis=None):
        track, detection = divmod(int(flat), distance.shape[1])
        if not np.isfinite(distance[track, detection]):
            break
        if track not in used_tracks and detection not in used_detections:
            used_tracks.add(track)
            used_detections.add(detection)
            pairs.append((track, detection))
    return pairs


def _shifted(box: Box, shift: np.ndarray) -> Box:
    return (int(round(box[0] + shift[0])), int(round(box[1] + shift[1])), box[2], box[3])


class DigitTracker:
    """Gives the detections of consecutive frames stable ids and labels voted over their recent frames.

    Feed it every frame of one video or camera in order (`update`); still images are read without it.
    """

    def __init__(self, config: TrackingConfig = DEFAULT_TRACKING, grouping: GroupingConfig = DEFAULT_GROUPING):
        self.config = config
        self.grouping = grouping
        self.tracks: list[Track] = []
        self.frames_seen = 0
        self.shift = np.zeros(2)
        """The page's last estimated motion between frames, the guess for the next."""
        self._next_id = 0
        self._frame_size: tuple[int, ...] | None = None

    def update(self, result: FrameResult) -> FrameResult:
        """The frame's result with track ids, voted labels, coasting digits and numbers regrouped.

        A frame of another size than the last (a stream that changed its resolution) starts the tracks afresh, with
        new ids: the old boxes are not where the new frame's digits are."""
        started = time.perf_counter()
        config = self.config
        size = result.frame.image.shape[:2]
        if size != self._frame_size:
            self.tracks, self.frames_seen, self.shift = [], 0, np.zeros(2)
            self._frame_size = size
        detections = result.detections
        boxes = [d.box for d in detections]
        track_centres = box_centres([t.box for t in self.tracks])
        heights = np.asarray([t.box[3] for t in self.tracks], float)
        scale = _median([b[3] for b in boxes]) if boxes else 1.0
        self.shift = estimate_shift(track_centres, box_centres(boxes), scale, config, self.shift)
        pairs = greedy_match(track_centres + self.shift, heights, boxes, config)

        matched_tracks = {t for t, _ in pairs}
        track_of = {d: t for t, d in pairs}
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.missed += 1
                track.box, track.image = _shifted(track.box, self.shift), None
        for index, detection in enumerate(detections):
            if index in track_of:
                track = self.tracks[track_of[index]]
            else:
                # What the first frame shows is reported at once: a still scene must not lose it.
                track = Track(self._next_id, detection.box, np.zeros((config.vote_window, 10), np.float32),
                              confirmed=self.frames_seen == 0)
                self._next_id += 1
                self.tracks.append(track)
            track.box, track.missed, track.hits, track.image = detection.box, 0, track.hits + 1, detection.image
            track.confirmed = track.confirmed or detection.confidence >= config.confirm_confidence
            if detection.probabilities is not None:
                track.add_evidence(detection.probabilities)
            else:  # a reader without probabilities: its label is the only evidence
                track.add_evidence(np.eye(10)[detection.digit] * detection.confidence)

        self.frames_seen += 1
        height, width = result.frame.image.shape[:2]
        reported: list[Detection] = []
        for track in self.tracks:
            if track.hits >= config.min_hits:
                track.confirmed = True
            if not track.confirmed or not _inside(track.box, width, height):
                continue
            if track.missed and (track.missed > config.coast or track.hits < config.coast_after):
                continue
            label, confidence, mean = track.vote(config)
            reported.append(Detection(box=track.box, digit=label, confidence=confidence, track_id=track.track_id,
                                      probabilities=mean, image=track.image))
        self.tracks = [t for t in self.tracks if t.missed <= config.max_missed]
        numbers = group_numbers(reported, self.grouping)
        timings = {**result.timings, "track": (time.perf_counter() - started) * 1000.0}
        return replace(result, detections=reported, numbers=numbers, timings=timings)


def _inside(box: Box, width: int, height: int) -> bool:
    x, y, w, h = box
    return x > 0 and y > 0 and x + w < width and y + h < height
