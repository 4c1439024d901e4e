"""Train the pair network (`model.build_pair_cnn`) on blobs the segmenter cuts from synthetic photos.

The photos are written with the MNIST training digits that the digit model's recipe trains on (its
`--data-seed` decides which 1 000 are held out); the held-out digits write the photos the network is
measured on, so its figures are on digits it never saw. Outputs: `pairs.keras`, its 8-bit LiteRT
export `pairs.tflite` and `pairs_metrics.json` (the digit model's `metrics.json` is left alone).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from digitrec.classify import export_tflite, tflite_path_for
from digitrec.data import load_mnist, training_split_order
from digitrec.model import PAIR_BLOCKS, build_pair_cnn
from digitrec.pair_crops import DEFAULT_PAIR_CROPS, PairCropConfig, pair_training_crops
from digitrec.pairs import NOT_A_PAIR, PAIR_SURE, read_pairs


@dataclass(frozen=True)
class CropDistortion:
    """Each epoch every crop is moved by a fresh random affine about its centre: shifted by a whole number of
    pixels up to `shift_px` each way, turned by up to `rotation` degrees, sheared by up to `shear` and scaled
    on each axis by a factor drawn from `scale`. All but the shift at zero: a shift only, as shipped."""

    shift_px: int = 2
    rotation: float = 0.0
    shear: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)


SHIFT_ONLY = CropDistortion()


@dataclass(frozen=True)
class PairTrainingConfig:
    epochs: int = 12
    batch_size: int = 128
    peak_learning_rate: float = 1e-3
    distortion: CropDistortion = SHIFT_ONLY
    pair_weight: float = 1.0
    """How much a pair counts in the loss against another region (a fifth of the crops are pairs)."""
    seed: int = 1
    """Initial weights, shuffling and each epoch's distortions."""
    data_seed: int = 2
    """Which MNIST training digits are held out (as the digit model's `--data-seed`) and the photos drawn."""
    validation_size: int = 1000
    crops: PairCropConfig = DEFAULT_PAIR_CROPS
    blocks: tuple[tuple[int, bool], ...] = PAIR_BLOCKS
    """The network's blocks (`model.build_pair_cnn`): `PAIR_BLOCKS`, or `PHOTO_PAIR_BLOCKS` for the photo network."""
    held_out_crops: PairCropConfig = field(default_factory=lambda: replace(DEFAULT_PAIR_CROPS, touching_pairs=500,
                                                                        marked_pages=50, seed_offset=8_000_009))
    """Photos written with the held-out digits, for the figures."""


QUICK_PAIR_CONFIG = PairTrainingConfig(
    epochs=1,
    crops=replace(DEFAULT_PAIR_CROPS, touching_pairs=60, marked_pages=6),
    held_out_crops=replace(DEFAULT_PAIR_CROPS, touching_pairs=20, marked_pages=2, seed_offset=8_000_009),
)


def distort_crops(crops: np.ndarray, rng: np.random.Generator, distortion: CropDistortion = SHIFT_ONLY) -> np.ndarray:
    """Each (H, W) crop moved by its own random affine (`CropDistortion`), zeros brought in at the edges.
    A shift alone moves the pixels exactly (whole pixels, bilinear sampling at whole offsets)."""
    count = len(crops)
    height, width = crops.shape[1:3]
    shifts = rng.integers(-distortion.shift_px, distortion.shift_px + 1, (count, 2))
    angles = np.deg2rad(rng.uniform(-distortion.rotation, distortion.rotation, count))
    shears = rng.uniform(-distortion.shear, distortion.shear, count)
    scales = rng.uniform(distortion.scale[0], distortion.scale[1], (count, 2))
    cos, sin = np.cos(angles), np.sin(angles)
    # linear part = rotation @ shear @ scale, written out per crop; then about the centre, plus the shift
    linear = np.empty((count, 2, 2))
    linear[:, 0, 0] = cos * scales[:, 0]
    linear[:, 0, 1] = (cos * shears - sin) * scales[:, 1]
    linear[:, 1, 0] = sin * scales[:, 0]
    linear[:, 1, 1] = (sin * shears + cos) * scales[:, 1]
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offsets = centre - linear @ centre + shifts
    matrices = np.concatenate([linear, offsets[:, :, None]], axis=2).astype(np.float32)
    out = np.empty_like(crops)
    for index, crop in enumerate(crops):
        out[index] = cv2.warpAffine(crop, matrices[index], (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    return out


def pair_figures(first: np.ndarray, second: np.ndarray, true_first: np.ndarray, true_second: np.ndarray) -> dict:
    """How well blobs are read: pairs read right (at all, and at least `PAIR_SURE` surely), and the share
    of other regions read as a pair at least `PAIR_SURE` surely."""
    readings = read_pairs(first, second)
    pairs = true_first != NOT_A_PAIR
    right_both = (readings.left == true_first) & (readings.right == true_second)
    sure = readings.confidence >= PAIR_SURE
    return {
        "pairs": int(pairs.sum()),
        "not_pairs": int((~pairs).sum()),
        "pairs_read_right": float(right_both[pairs].mean()) if pairs.any() else float("nan"),
        "pairs_read_right_sure": float((right_both & sure)[pairs].mean()) if pairs.any() else float("nan"),
        "not_pairs_read_as_pairs_sure": float(sure[~pairs].mean()) if (~pairs).any() else float("nan"),
    }


def sample_weights(second: np.ndarray, pair_weight: float) -> dict[str, np.ndarray]:
    """Each crop's weight in each head's loss: a pair `pair_weight` in both, another region 1 in the first
    head (it is "not a pair") and 0 in the second (it has no right digit)."""
    pairs = (second >= 0).astype(np.float32)
    return {"first": 1.0 + (pair_weight - 1.0) * pairs, "second": pair_weight * pairs}


def train_pair_model(x: np.ndarray, first: np.ndarray, second: np.ndarray, config: PairTrainingConfig):
    """Fit the pair network with Adam and a cosine learning rate; the second head learns from pairs only."""
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_pair_cnn(config.blocks)
    steps = config.epochs * int(np.ceil(len(x) / config.batch_size))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.peak_learning_rate, steps)),
                  loss={"first": "sparse_categorical_crossentropy", "second": "sparse_categorical_crossentropy"},
                  metrics={"first": ["accuracy"]})
    targets = {"first": first, "second": np.maximum(second, 0)}
    weights = sample_weights(second, config.pair_weight)
    history: dict[str, list[float]] = {}
    for epoch in range(config.epochs):
        distorted = distort_crops(x, np.random.default_rng([config.seed, epoch]), config.distortion)
        epoch_history = model.fit(distorted[..., None], targets, sample_weight=weights, batch_size=config.batch_size,
                                  epochs=epoch + 1, initial_epoch=epoch, shuffle=True, verbose="auto")
        for key, values in epoch_history.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return model, history


def run_pair_training(data_path: str | None, out_dir: str | Path, config: PairTrainingConfig,
                      model_name: str = "pairs") -> dict:
    """Draw the crops, train, export, measure on held-out digits and write `<model_name>_metrics.json`."""
    started = time.perf_counter()
    mnist = load_mnist(data_path)
    order, _ = training_split_order(len(mnist.x_train), config.data_seed)
    held, trained = order[: config.validation_size], order[config.validation_size :]
    sets = {}
    for name, digits, crops in (("train", trained, config.crops), ("held_out", held, config.held_out_crops)):
        photos = crops.touching_pairs + crops.marked_pages
        with tqdm(total=photos, unit="photo", desc=f"pair crops ({name.replace('_', '-')})") as bar:
            sets[name] = pair_training_crops(mnist.x_train[digits], mnist.y_train[digits], config.data_seed, crops,
                                             progress=bar.update)
    x, first, second = sets["train"]
    if not (first != NOT_A_PAIR).any():
        raise ValueError("no touching pairs were found in the training photos; draw more (crops.touching_pairs)")
    model, history = train_pair_model(x, first, second, config)
    train_seconds = time.perf_counter() - started

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = out_dir / f"{model_name}.keras"
    # Saved without the optimizer's state (a third of the file), as a model only read from here on.
    saved = build_pair_cnn(config.blocks)
    saved.set_weights(model.get_weights())
    saved.save(keras_path)
    tflite_path = export_tflite(model, tflite_path_for(keras_path))
    held_x, held_first, held_second = sets["held_out"]
    outputs = model.predict(held_x[..., None], batch_size=512, verbose=0)  # once, off any hot path
    metrics = {
        "model": keras_path.name,
        "tflite": tflite_path.name,
        "held_out": pair_figures(outputs["first"], outputs["second"], held_first, held_second),
        "pair_sure": PAIR_SURE,
        "training_crops": {"pairs": int((first != NOT_A_PAIR).sum()), "not_pairs": int((first == NOT_A_PAIR).sum())},
        "parameters": int(model.count_params()),
        "training_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "history": history,
        "config": asdict(config),
        "data": {"mnist": mnist.source},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    (out_dir / f"{model_name}_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
