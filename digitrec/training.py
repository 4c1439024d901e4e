"""Train, evaluate and export the digit CNN: data, model, train, evaluate, with every number named here."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import keras
import numpy as np
from tqdm import tqdm

from digitrec.augment import (
    NOT_A_DIGIT,
    camera_digits,
    flag_ones,
    not_a_digit_marks,
    printed_digits,
    printed_non_digits,
)
from digitrec.classify import (
    DigitClassifier,
    ModelFileError,
    check_digit_model,
    export_int8_tflite,
    export_tflite,
    int8_path_for,
    load_trainable_model,
    tflite_path_for,
)
from digitrec.data import DigitDataset, load_mnist, load_usps, training_split_order
from digitrec.model import BLOCKS, NUM_CLASSES, build_digit_cnn
from digitrec.normalise import MNIST_SIZE
from digitrec.page_crops import DEFAULT_PAGE_CROPS, segmenter_crops
from digitrec.prune import PRUNE_SAMPLE, load_model_to_prune, model_blocks, prune_digit_cnn


@dataclass(frozen=True)
class TrainingConfig:
    """Every number of a training run, in one place."""

    epochs: int = 16
    conv_blocks: tuple[tuple[int, int], ...] = BLOCKS
    """(filters, stride) of each convolution block of the CNN (`digitrec.model`)."""
    batch_size: int = 128
    peak_learning_rate: float = 3e-3
    warmup_fraction: float = 0.05
    validation_size: int = 1000
    """MNIST training digits held out to watch training; the test split is never looked at."""
    camera_copies: int = 16000
    """Camera-style renderings of training digits added to the clean ones."""
    segmenter_pages: int = 500
    """Synthetic photos of training digits whose crops, cut by the reader's own segmenter, are
    added (digits and "not a digit" regions alike; see `digitrec.page_crops`)..."""
    segmenter_marked_pages: int = 400
    """...with this many more pages of 10-16 non-digit marks each..."""
    segmenter_touching_pairs: int = 3000
    """...and this many photos of two touching digits, whose merged blobs are "not a digit"..."""
    segmenter_still_cuts: bool = True
    """...all cut as a still photo is read (narrow cuts offered too; `PageCropConfig.still_cuts`)."""
    not_a_digit_count: int = 8000
    rotation_degrees: float = 12.0
    """Largest random rotation of a training digit, drawn afresh every epoch..."""
    zoom: float = 0.12
    """...with a zoom of up to this fraction in or out..."""
    shift: float = 0.1
    """...and a shift of up to this fraction of the image in x and y."""
    train_subset: int | None = None
    """Use only this many MNIST training digits (quick runs)."""
    seed: int = 1
    """Seed of the network's initial weights, shuffling and jitter..."""
    data_seed: int | None = None
    """...and of the assembled training set (which digits are held out, renderings, pages); None: `seed`."""
    flag_ones: float = 0.0
    """Fraction of the near-upright training '1's (MNIST's and USPS's) given the flag many hands write
    (`augment.flag_ones`) before anything is rendered from them; 0 leaves them as written."""
    teacher: str | None = None
    """A trained model to learn from besides the labels (knowledge distillation): each jittered training
    digit's target mixes its one-hot label with the teacher's probabilities for it..."""
    teacher_weight: float = 0.5
    """...this much of the target being the teacher's..."""
    teacher_temperature: float = 2.0
    """...softened at this temperature, so the student also learns what else a digit looks like."""
    prune_from: str | None = None
    """A trained model to start from, cut down to `conv_blocks`' filters (`digitrec.prune`), instead of
    fresh weights..."""
    prune_learning_rate: float = 1e-3
    """...and then trained at this peak learning rate, not `peak_learning_rate`: its weights are adapted,
    not learned anew."""
    continue_from: str | None = None
    """A trained model of the same network to train on from its weights, instead of fresh ones (a few more
    epochs on a wider training set)..."""
    continue_learning_rate: float = 3e-4
    """...at this peak learning rate."""
    printed_digits: int = 0
    """Printed digits drawn in OpenCV's fonts (`augment.printed_digits`: a '1' with a flag and a foot, a narrow
    '0'), added to the training set..."""
    printed_camera_share: float = 0.3
    """...camera-style renderings of this share of them..."""
    printed_non_digit_share: float = 0.5
    """...and printed letters and signs, this share of their number, as "not a digit" (`augment.PRINTED_NON_DIGITS`)."""

    @property
    def training_set_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed


QUICK_CONFIG = TrainingConfig(
    epochs=2, validation_size=300, camera_copies=600, segmenter_pages=12, segmenter_marked_pages=2,
    segmenter_touching_pairs=20, not_a_digit_count=300, train_subset=3000,
)
"""A tiny run that exercises every step in a minute or two, for tests."""

CAMERA_TEST_SEED = 12345
"""Seed of the camera-style rendering of the MNIST test split (measured on, never trained on)."""


@dataclass
class TrainingSet:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    composition: dict[str, int]


def assemble_training_set(mnist: DigitDataset, usps: DigitDataset | None, config: TrainingConfig) -> TrainingSet:
    """Clean MNIST (and USPS) digits, their camera-style renderings, and non-digit marks."""
    data_seed = config.training_set_seed
    order, rng = training_split_order(len(mnist.x_train), data_seed)
    if config.train_subset:
        order = order[: config.train_subset + config.validation_size]
    val_index, train_index = order[: config.validation_size], order[config.validation_size :]
    clean_x, clean_y = mnist.x_train[train_index], mnist.y_train[train_index]
    composition = {"mnist": len(clean_x)}
    if config.flag_ones:
        clean_x, flagged = flag_ones(clean_x, clean_y, config.flag_ones, seed=data_seed + 3)
        composition["flagged_ones"] = flagged
    parts_x, parts_y = [clean_x], [clean_y]
    if usps is not None:
        usps_x = usps.x_train
        if config.flag_ones:
            usps_x, flagged = flag_ones(usps_x, usps.y_train, config.flag_ones, seed=data_seed + 4)
            composition["flagged_ones"] += flagged
        parts_x.append(usps_x)
        parts_y.append(usps.y_train)
        composition["usps"] = len(usps.x_train)
    pool_x, pool_y = np.concatenate(parts_x), np.concatenate(parts_y)
    pick = rng.choice(len(pool_x), size=min(config.camera_copies, len(pool_x)), replace=False)
    print(f"rendering {len(pick)} camera-style digits and {config.not_a_digit_count} non-digit marks ...")
    parts_x.append(camera_digits(pool_x[pick], seed=data_seed + 1))
    parts_y.append(pool_y[pick])
    composition["camera_style"] = len(pick)
    parts_x.append(not_a_digit_marks(config.not_a_digit_count, clean_x, seed=data_seed + 2))
    parts_y.append(np.full(config.not_a_digit_count, NOT_A_DIGIT, np.int64))
    composition["not_a_digit"] = config.not_a_digit_count
    if config.segmenter_pages:
        # Pages written with the training digits only: the validation and test digits stay unseen.
        crop_config = replace(DEFAULT_PAGE_CROPS, pages=config.segmenter_pages,
                              marked_pages=config.segmenter_marked_pages,
                              touching_pairs=config.segmenter_touching_pairs,
                              still_cuts=config.segmenter_still_cuts)
        photos = crop_config.pages + crop_config.marked_pages + crop_config.touching_pairs
        with tqdm(total=photos, unit="photo", desc="segmenter crops") as bar:
            page_x, page_y = segmenter_crops(clean_x, clean_y, data_seed, crop_config, progress=bar.update)
        parts_x.append(page_x)
        parts_y.append(page_y)
        composition["segmenter_crops"] = int(np.sum(page_y != NOT_A_DIGIT))
        composition["segmenter_not_a_digit"] = int(np.sum(page_y == NOT_A_DIGIT))
    if config.printed_digits:
        printed_x, printed_y = printed_digits(config.printed_digits, seed=data_seed + 5)
        styled = int(round(config.printed_camera_share * config.printed_digits))
        others = int(round(config.printed_non_digit_share * config.printed_digits))
        parts_x.extend([printed_x, camera_digits(printed_x[:styled], seed=data_seed + 6),
                        printed_non_digits(others, seed=data_seed + 7)])
        parts_y.extend([printed_y, printed_y[:styled], np.full(others, NOT_A_DIGIT, np.int64)])
        composition["printed"] = config.printed_digits
        composition["printed_camera_style"] = styled
        composition["printed_not_a_digit"] = others
    return TrainingSet(
        x_train=np.concatenate(parts_x)[..., None],
        y_train=np.concatenate(parts_y),
        x_val=mnist.x_train[val_index][..., None],
        y_val=mnist.y_train[val_index],
        composition=composition,
    )


@dataclass(frozen=True)
class CalibrationConfig:
    """The crops on which `classify.export_int8_tflite` measures the activations' ranges: a small sample of
    each kind the model is trained on, so that none of them (a dark smudge, a cut of two digits) is clipped."""

    digits: int = 600
    """MNIST training digits..."""
    camera_style: int = 300
    """...camera-style renderings of some of them..."""
    marks: int = 300
    """...non-digit marks..."""
    pages: int = 8
    marked_pages: int = 4
    touching_pairs: int = 8
    """...and the segmenter's crops (digits, cuts, blobs, marks) of this many synthetic photos of each kind."""
    seed: int = 77


DEFAULT_CALIBRATION = CalibrationConfig()


def calibration_images(mnist: DigitDataset, config: CalibrationConfig = DEFAULT_CALIBRATION) -> np.ndarray:
    """(N, 28, 28, 1) float32 crops like those the reader classifies, from MNIST's training split only."""
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(mnist.x_train), size=min(config.digits, len(mnist.x_train)), replace=False)
    digits, labels = mnist.x_train[pick], mnist.y_train[pick]
    parts = [digits, camera_digits(digits[: config.camera_style], seed=config.seed + 1),
             not_a_digit_marks(config.marks, digits, seed=config.seed + 2)]
    if config.pages + config.marked_pages + config.touching_pairs:
        crop_config = replace(DEFAULT_PAGE_CROPS, pages=config.pages, marked_pages=config.marked_pages,
                              touching_pairs=config.touching_pairs)
        parts.append(segmenter_crops(digits, labels, config.seed + 3, crop_config, workers=1)[0])
    return np.concatenate([part.astype(np.float32) for part in parts])[..., None]


def export_int8(model, keras_path: str | os.PathLike, mnist: DigitDataset, keras_probabilities: np.ndarray,
                calibration: CalibrationConfig = DEFAULT_CALIBRATION) -> dict:
    """Write the .int8.tflite export beside a saved .keras model (OpenVINO's; `classify.export_int8_tflite`) and
    measure it on MNIST test: accuracy, and how often it reads as the Keras model (`keras_probabilities`)."""
    crops = calibration_images(mnist, calibration)
    path = export_int8_tflite(model, int8_path_for(keras_path), crops)
    classifier = DigitClassifier(path)
    probabilities = classifier.probabilities(mnist.x_test[..., None])
    return {
        "int8_tflite": path.name,
        "int8_mnist_test_accuracy": _digit_accuracy(probabilities, mnist.y_test),
        "int8_same_reading": float(np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1))),
        "int8_mean_probability_difference": float(np.abs(probabilities - keras_probabilities).mean()),
        "int8_measured_on": classifier.runtime,
        "int8_calibration_crops": len(crops),
    }


def keras_test_probabilities(model, mnist: DigitDataset) -> np.ndarray:
    """The Keras model's own probabilities for MNIST test, in chunks (never `model.predict`)."""
    return np.concatenate([
        model(mnist.x_test[start : start + 1000, ..., None], training=False).numpy()
        for start in range(0, len(mnist.x_test), 1000)
    ])


def export_int8_of_saved_model(model_path: str | os.PathLike, data_path: str | None) -> dict:
    """`train.py --export-int8`: write a saved .keras model's .int8.tflite export beside it (OpenVINO's; its
    .tflite is left as it is), measure it on MNIST test, and add the figures to the metrics.json beside it
    when that file describes this model."""
    model_path = Path(model_path)
    model = load_trainable_model(model_path, task="exporting", flag="--export-int8")
    check_digit_model(model_path, model)  # before anything is written beside it
    mnist = load_mnist(data_path)
    figures = export_int8(model, model_path, mnist, keras_test_probabilities(model, mnist))
    card = model_path.parent / "metrics.json"
    if card.is_file():
        metrics = json.loads(card.read_text())
        if metrics.get("model") == model_path.name:
            metrics.update(figures)
            card.write_text(json.dumps(metrics, indent=2) + "\n")
            figures["updated"] = str(card)
    return figures


def jitter_digits(images: np.ndarray, rng: np.random.Generator, config: TrainingConfig) -> np.ndarray:
    """Random rotation, zoom and shift of (N, 28, 28, 1) digits, one composed affine warp each."""
    out = np.empty_like(images)
    centre = (MNIST_SIZE - 1) / 2.0
    angles = rng.uniform(-config.rotation_degrees, config.rotation_degrees, len(images))
    zooms = rng.uniform(1.0 - config.zoom, 1.0 + config.zoom, len(images))
    shifts = rng.uniform(-config.shift, config.shift, (len(images), 2)) * MNIST_SIZE
    for index, image in enumerate(images):
        matrix = cv2.getRotationMatrix2D((centre, centre), float(angles[index]), float(zooms[index]))
        matrix[:, 2] += shifts[index]
        out[index, :, :, 0] = cv2.warpAffine(image[:, :, 0], matrix, (MNIST_SIZE, MNIST_SIZE),
                                             flags=cv2.INTER_LINEAR, borderValue=0)
    return out


def load_teacher(path: str | os.PathLike) -> DigitClassifier:
    """The teacher model of a taught run; refused (with the fix) unless it has the not-a-digit output."""
    teacher = DigitClassifier(path)
    if teacher.num_outputs != NUM_CLASSES:
        raise ValueError(f"teacher {path}: gives {teacher.num_outputs} outputs; a teacher needs the not-a-digit "
                         f"output too ({NUM_CLASSES}), as models/digits.keras has")
    return teacher


def load_model_to_continue(path: str | os.PathLike):
    """The trained .keras digit CNN a run goes on training (`TrainingConfig.continue_from`); refused with the fix
    unless it is one with the not-a-digit output."""
    model = load_trainable_model(path, "training on", "--continue-from")
    try:
        model_blocks(model)
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    if not (isinstance(model.output_shape, tuple) and model.output_shape[-1] == NUM_CLASSES):
        raise ModelFileError(f"{path}: not the digit CNN with its not-a-digit output ({NUM_CLASSES} classes) that "
                             "training on needs; pass models/digits.keras or a model train.py wrote")
    return model


def teacher_targets(teacher: DigitClassifier, images: np.ndarray, labels: np.ndarray,
                    weight: float, temperature: float) -> np.ndarray:
    """(N, classes) training targets: (1 - weight) x one-hot label + weight x the teacher's probabilities
    softened at `temperature` (p ** (1 / T), renormalised; T = 1 leaves them as they are)."""
    probabilities = teacher.probabilities(images).astype(np.float64)
    softened = np.exp(np.log(np.maximum(probabilities, 1e-12)) / temperature)
    softened /= softened.sum(axis=1, keepdims=True)
    one_hot = np.eye(NUM_CLASSES)[labels]
    return ((1.0 - weight) * one_hot + weight * softened).astype(np.float32)


def train_model(training_set: TrainingSet, config: TrainingConfig):
    """Fit the CNN with Adam and a warmed-up cosine learning rate; returns (model, history).

    With `config.teacher` the targets mix the labels with that model's probabilities (`teacher_targets`);
    with `config.prune_from` the network starts as that model cut down to `config.conv_blocks`."""
    # A model to go on from is loaded before the seed is set: building its layers draws their initial weights.
    model = load_model_to_continue(config.continue_from) if config.continue_from else None
    keras.utils.set_random_seed(config.seed)
    history: dict[str, list[float]] = {}
    if config.prune_from:
        sample = np.random.default_rng(config.seed).choice(len(training_set.x_train), PRUNE_SAMPLE, replace=False)
        model, report = prune_digit_cnn(load_model_to_prune(config.prune_from), config.conv_blocks,
                                        training_set.x_train[np.sort(sample)])
        for key in ("error_as_cut", "error_refitted"):
            history[f"pruning_{key}"] = [value for block in report.values()
                                         for name, value in block.items() if name.endswith(key)]
    elif model is None:
        model = build_digit_cnn(NUM_CLASSES, config.conv_blocks)
    steps = config.epochs * int(np.ceil(len(training_set.x_train) / config.batch_size))
    peak = (config.continue_learning_rate if config.continue_from
            else config.prune_learning_rate if config.prune_from else config.peak_learning_rate)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=peak, warmup_steps=int(steps * config.warmup_fraction)
    )
    teacher = load_teacher(config.teacher) if config.teacher else None
    if teacher is None:
        model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
        validation = (training_set.x_val, training_set.y_val)
    else:
        model.compile(keras.optimizers.Adam(schedule), "categorical_crossentropy",
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        validation = (training_set.x_val, np.eye(NUM_CLASSES, dtype=np.float32)[training_set.y_val])
    for epoch in range(config.epochs):
        # Fresh jitter every epoch, made with OpenCV up front: Keras's random-transform layers
        # cost as much CPU as the training step itself.
        jittered = jitter_digits(training_set.x_train, np.random.default_rng([config.seed, epoch]), config)
        targets = training_set.y_train if teacher is None else teacher_targets(
            teacher, jittered, training_set.y_train, config.teacher_weight, config.teacher_temperature)
        epoch_history = model.fit(
            jittered,
            targets,
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=True,
            validation_data=validation,
            verbose="auto",
        )
        for key, values in epoch_history.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    if teacher is not None:
        sample = np.random.default_rng(config.seed).permutation(len(training_set.x_train))[:CALIBRATION_CROPS]
        history["teacher_confidence_factor"] = [match_teacher_confidence(model, teacher, training_set.x_train[sample])]
    return model, history


CALIBRATION_CROPS = 20000
"""Training crops on which a taught model's confidence is matched to its teacher's..."""

SHARPENING_FACTORS = tuple(round(1.0 + 0.05 * step, 2) for step in range(41))
"""...by the factor among these (1.0 to 3.0) that matches it best."""


def match_teacher_confidence(model, teacher: DigitClassifier, images: np.ndarray,
                             factors: tuple[float, ...] = SHARPENING_FACTORS) -> float:
    """Sharpen a taught model's output until its mean top probability on `images` is its teacher's.

    Trained towards part-soft targets, a student reads a sure digit at about 0.9, not 0.99, and the
    reader's floors (0.5 to report, 0.9 and 0.97 to cut a blob) were set for sure readings. The final
    dense layer's weights and bias are multiplied by the factor found (its logits scaled: which class
    wins never changes). Returns the factor."""
    logits = np.concatenate([np.log(np.maximum(model(images[i : i + 1000], training=False).numpy(), 1e-12))
                             for i in range(0, len(images), 1000)]).astype(np.float64)
    target = float(teacher.probabilities(images).max(axis=1).mean())

    def mean_top(factor: float) -> float:
        scaled = factor * logits
        scaled -= scaled.max(axis=1, keepdims=True)
        probabilities = np.exp(scaled)
        return float((probabilities.max(axis=1) / probabilities.sum(axis=1)).mean())

    factor = min(factors, key=lambda f: abs(mean_top(f) - target))
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * factor, bias * factor])
    return factor


def _digit_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy over the ten digits: the not-a-digit score does not count as an answer."""
    return float(np.mean(probabilities[:, :10].argmax(axis=1) == labels))


_camera_test_sets: dict[tuple[str, int], np.ndarray] = {}
"""Camera-style renderings of test splits already drawn in this process, by the split's digest and seed."""


def camera_style_test_digits(x_test: np.ndarray, seed: int = CAMERA_TEST_SEED) -> np.ndarray:
    """`camera_digits` of a test split, drawn once a process: the same seed gives the same rendering, so a
    second model measured in the same process (a test session, a script comparing models) need not spend
    another 14 s (a 2-core Xeon) drawing MNIST test's 10 000 digits again. Read-only: it is shared."""
    key = (hashlib.blake2b(np.ascontiguousarray(x_test).tobytes(), digest_size=16).hexdigest(), seed)
    if key not in _camera_test_sets:
        rendered = camera_digits(x_test, seed=seed)
        rendered.flags.writeable = False
        _camera_test_sets.clear()  # one split at a time: 31 MB for MNIST test
        _camera_test_sets[key] = rendered
    return _camera_test_sets[key]


def evaluate_classifier(classifier: DigitClassifier, mnist: DigitDataset, usps: DigitDataset | None) -> dict:
    """Measure a model on the test splits (never trained or tuned on) and on camera-style test digits."""
    x_test, y_test = mnist.x_test, mnist.y_test
    probabilities = classifier.probabilities(x_test[..., None])
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((10, probabilities.shape[1]), np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    per_class = {str(d): float(np.mean(predicted[y_test == d] == d)) for d in range(10)}
    camera_test = camera_style_test_digits(x_test)
    camera_probabilities = classifier.probabilities(camera_test[..., None])
    marks = not_a_digit_marks(2000, x_test, seed=CAMERA_TEST_SEED + 1)
    marks_predicted = classifier.probabilities(marks[..., None]).argmax(axis=1)
    metrics = {
        "mnist_test_accuracy": _digit_accuracy(probabilities, y_test),
        "mnist_test_accuracy_all_classes": float(np.mean(predicted == y_test)),
        "mnist_test_errors": int(np.sum(probabilities[:, :10].argmax(axis=1) != y_test)),
        "mnist_test_per_class_accuracy": per_class,
        "mnist_test_confusion": confusion.tolist(),
        "camera_style_mnist_test_accuracy": _digit_accuracy(camera_probabilities, y_test),
        "camera_style_mnist_test_read_rate": float(np.mean(camera_probabilities.argmax(axis=1) == y_test)),
        "not_a_digit_marks_rejected": float(np.mean(marks_predicted == NOT_A_DIGIT)),
    }
    if usps is not None:
        usps_probabilities = classifier.probabilities(usps.x_test[..., None])
        metrics["usps_test_accuracy"] = _digit_accuracy(usps_probabilities, usps.y_test)
    return metrics


def save_plots(history: dict, confusion: list, out_dir: Path) -> list[str]:
    """Training curves and the MNIST test confusion matrix as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss_axis.plot(epochs, history["loss"], label="train")
    loss_axis.plot(epochs, history["val_loss"], label="validation")
    loss_axis.set(title="loss", xlabel="epoch")
    loss_axis.legend()
    accuracy_axis.plot(epochs, history["accuracy"], label="train")
    accuracy_axis.plot(epochs, history["val_accuracy"], label="validation")
    accuracy_axis.set(title="accuracy", xlabel="epoch")
    accuracy_axis.legend()
    figure.tight_layout()
    curves = out_dir / "training_curves.png"
    figure.savefig(curves, dpi=100)
    plt.close(figure)

    matrix = np.array(confusion)
    figure, axis = plt.subplots(figsize=(7, 6))
    axis.imshow(np.log1p(matrix), cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7)
    axis.set(
        title="MNIST test confusion (columns: predicted, 10 = not a digit)",
        xlabel="predicted",
        ylabel="true",
        xticks=range(matrix.shape[1]),
        yticks=range(10),
    )
    figure.tight_layout()
    confusion_path = out_dir / "confusion_matrix.png"
    figure.savefig(confusion_path, dpi=100)
    plt.close(figure)
    return [curves.name, confusion_path.name]


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


def run_training(
    data_path: str | None,
    usps_path: str | None,
    out_dir: str | Path,
    config: TrainingConfig,
    model_name: str = "digits",
) -> dict:
    """The whole run: load, assemble, train, then export, evaluate and write the model card."""
    started = time.perf_counter()
    mnist = load_mnist(data_path)
    usps = load_usps(usps_path)
    # The model gone on from is named by its bytes too: it may be overwritten by the one trained from it.
    provenance = {} if not config.continue_from else {
        "continued_from_sha256": hashlib.sha256(Path(config.continue_from).read_bytes()).hexdigest()}
    training_set = assemble_training_set(mnist, usps, config)
    model, history = train_model(training_set, config)
    provenance["training_seconds"] = round(time.perf_counter() - started, 1)
    return record_model(model, history, out_dir, config, mnist, usps, training_set.composition, model_name,
                        provenance, started)


def record_model(
    model,
    history: dict,
    out_dir: str | Path,
    config: TrainingConfig,
    mnist: DigitDataset,
    usps: DigitDataset | None,
    composition: dict[str, int],
    model_name: str = "digits",
    provenance: dict | None = None,
    started: float | None = None,
    calibration: CalibrationConfig = DEFAULT_CALIBRATION,
) -> dict:
    """Save a trained model and its two exports (`export_tflite`, `export_int8`), measure them, and write
    metrics.json and plots.

    `provenance` adds keys saying how and where it was trained (time, machine) to metrics.json.
    """
    started = time.perf_counter() if started is None else started
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = out_dir / f"{model_name}.keras"
    # An 8-bit export of a model this one replaces must never be read beside it, even if writing stops half-way.
    int8_path_for(keras_path).unlink(missing_ok=True)
    model.save(keras_path)
    tflite_path = export_tflite(model, tflite_path_for(keras_path))
    # The export's weights are quantised to 8 bits: say how far its readings are from the Keras model's.
    keras_probabilities = keras_test_probabilities(model, mnist)
    tflite_probabilities = DigitClassifier(tflite_path, runtime="litert").probabilities(mnist.x_test[..., None])
    tflite_difference = np.abs(tflite_probabilities - keras_probabilities)
    int8_figures = export_int8(model, keras_path, mnist, keras_probabilities, calibration)
    # The figures through the export the reader runs on this machine (`DigitClassifier` of the .keras file).
    classifier = DigitClassifier(keras_path)

    metrics = evaluate_classifier(classifier, mnist, usps)
    metrics.update(
        {
            "model": keras_path.name,
            "tflite": tflite_path.name,
            "tflite_max_probability_difference": float(tflite_difference.max()),
            "tflite_mean_probability_difference": float(tflite_difference.mean()),
            "tflite_same_reading": float(np.mean(tflite_probabilities.argmax(1) == keras_probabilities.argmax(1))),
            "keras_mnist_test_accuracy": float(np.mean(keras_probabilities[:, :10].argmax(1) == mnist.y_test)),
            "measured_through": f"{out_dir / classifier.runtime_path.name} on {classifier.runtime}, as the reader "
                                "runs it on this machine",
            **int8_figures,
            "parameters": int(model.count_params()),
            **(provenance or {}),
            "total_seconds": round(time.perf_counter() - started, 1),
            "epochs": config.epochs,
            "history": {key: [float(v) for v in values] for key, values in history.items()},
            "data": {"mnist": mnist.source, "usps": usps.source if usps else None, **composition},
            "config": asdict(config),
            "seed": config.seed,
            "data_seed": config.training_set_seed,
            "versions": _versions(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        }
    )
    metrics["plots"] = save_plots(history, metrics["mnist_test_confusion"], out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def evaluate_saved_model(model_path: str | Path, data_path: str | None, usps_path: str | None) -> dict:
    """Re-measure any saved .keras or .tflite model on the test splits."""
    classifier = DigitClassifier(model_path)
    return evaluate_classifier(classifier, load_mnist(data_path), load_usps(usps_path))


__all__ = [
    "DEFAULT_CALIBRATION",
    "QUICK_CONFIG",
    "CalibrationConfig",
    "TrainingConfig",
    "assemble_training_set",
    "camera_style_test_digits",
    "calibration_images",
    "evaluate_classifier",
    "evaluate_saved_model",
    "export_int8",
    "export_int8_of_saved_model",
    "record_model",
    "run_training",
    "train_model",
]
