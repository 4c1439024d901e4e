"""Adapt the shipped digit model to one user's handwriting from a few labelled crops, without forgetting MNIST."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from digitrec.augment import NOT_A_DIGIT, not_a_digit_marks
from digitrec.classify import (
    DigitClassifier,
    check_trainable_model_path,
    export_int8_tflite,
    export_tflite,
    int8_path_for,
    load_trainable_model,
    tflite_path_for,
)
from digitrec.data import DigitDataset, load_mnist
from digitrec.labels import load_labelled_crops
from digitrec.training import TrainingConfig, calibration_images, jitter_digits


@dataclass(frozen=True)
class FinetuneConfig:
    """Every number of a fine-tuning run, in one place."""

    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-4
    """Adam's starting rate, a tenth of the full training's peak, decayed to zero by cosine: the
    shipped weights are moved, not rebuilt."""
    user_copies: int = 8
    """Each of the user's training crops appears this many times per epoch, freshly jittered."""
    replay_per_user_crop: float = 4.0
    """MNIST training digits mixed in per user crop shown, drawn afresh each epoch, so the model
    keeps what it knew (without them MNIST accuracy drops). Chosen by what fine-tuning on the
    test's boxy hand cost the shipped model on MNIST's 60 000 *training* digits: 0.23 points with
    2, 0.18 with 3, 0.155 with 4, 0.153 with 6."""
    not_a_digit_fraction: float = 0.1
    """Share of every epoch given to non-digit marks, so the eleventh class is not forgotten."""
    freeze_batch_norm: bool = True
    """Keep BatchNormalization's statistics and scales as shipped, so a few hundred user crops do not
    drag the statistics all of MNIST set. Measured (docs/history.md, *Fine-tuning recipe*): MNIST 99.51 %
    frozen vs 99.49 % trained, and a third faster."""
    trained_layers: str = "all"
    """Which weights move: "all", "last_conv" (the last convolution block and the output layer)
    or "head" (the output layer only). Measured: fewer trained layers kept less of MNIST
    (99.40 %, 98.95 %) for no gain on the user's hand."""
    finetuned_share: float = 0.8
    """The weights written are this share of the fine-tuned ones plus the rest of the ones it started
    from (weight-space ensembling, as in WiSE-FT): most of what was learnt of the user's hand stays and
    most of what fine-tuning cost elsewhere comes back. Measured on the test's boxy hand, against the
    shipped model's accuracy on MNIST's 60 000 *training* digits: 1.0 cost 0.18 points and read
    100 % of the held-out boxy digits, 0.8 cost 0.10 points and read 98.4 %, 0.6 cost 0.07 and 88 %."""
    held_out_fraction: float = 0.25
    """Share of each digit's labelled crops kept aside to measure before and after."""
    min_train_per_digit: int = 3
    min_held_out_per_digit: int = 1
    seed: int = 1


DEFAULT_FINETUNE = FinetuneConfig()

JITTER = TrainingConfig()
"""The shipped training's rotation, zoom and shift ranges, reused for the user's crops."""

FINETUNED_SUFFIX = "-finetuned"
"""The fine-tuned model is written beside its input as <name>-finetuned.keras unless told otherwise."""


@dataclass
class UserSplit:
    """The user's crops split per digit into crops to learn from and crops to measure on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_held_out: np.ndarray
    y_held_out: np.ndarray


def split_user_crops(images: np.ndarray, labels: np.ndarray, config: FinetuneConfig = DEFAULT_FINETUNE) -> UserSplit:
    """Stratified, seeded split of (N, 28, 28) crops; every digit present needs enough for both sides.

    Raises:
        ValueError: a labelled digit has too few crops to both learn from and measure on.
    """
    rng = np.random.default_rng(config.seed)
    needed = config.min_train_per_digit + config.min_held_out_per_digit
    train_rows, held_rows, short = [], [], []
    for digit in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        if len(rows) < needed:
            short.append(f"{digit} ({len(rows)})")
            continue
        held = max(config.min_held_out_per_digit, int(round(config.held_out_fraction * len(rows))))
        held = min(held, len(rows) - config.min_train_per_digit)
        held_rows.extend(rows[:held])
        train_rows.extend(rows[held:])
    if short:
        raise ValueError(
            f"too few labelled crops of digit {', '.join(short)}: each labelled digit needs at least {needed} "
            f"({config.min_train_per_digit} to learn from, {config.min_held_out_per_digit} to measure on). "
            "Label more in the window (key l)."
        )
    train_rows, held_rows = np.array(train_rows, int), np.array(held_rows, int)
    return UserSplit(images[train_rows], labels[train_rows], images[held_rows], labels[held_rows])


def _freeze(model: keras.Model, config: FinetuneConfig) -> None:
    """Mark the layers that stay as shipped (found by kind and position, not by name)."""
    if config.trained_layers not in ("all", "last_conv", "head"):
        raise ValueError(f"trained_layers must be 'all', 'last_conv' or 'head', not {config.trained_layers!r}")
    convolutions = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Conv2D)]
    denses = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Dense)]
    first_trained = {"all": 0, "last_conv": convolutions[-1] if convolutions else 0,
                     "head": denses[-1] if denses else 0}[config.trained_layers]
    for index, layer in enumerate(model.layers):
        # In Keras 3 a frozen BatchNormalization also runs in inference mode, keeping its statistics.
        frozen = index < first_trained or (config.freeze_batch_norm and isinstance(layer, keras.layers.BatchNormalization))
        layer.trainable = not frozen


def finetune_model(
    model: keras.Model,
    x_user: np.ndarray,
    y_user: np.ndarray,
    mnist: DigitDataset,
    config: FinetuneConfig = DEFAULT_FINETUNE,
    verbose: str | int = "auto",
) -> dict[str, list[float]]:
    """Fine-tune `model` in place on the user's (N, 28, 28) crops mixed with replayed MNIST digits,
    then blend the result with the weights it started from (`FinetuneConfig.finetuned_share`).

    Returns:
        Keras's history (loss and accuracy per epoch).
    """
    if not 0.0 < config.finetuned_share <= 1.0:
        raise ValueError(f"finetuned_share must be in (0, 1], not {config.finetuned_share}")
    keras.utils.set_random_seed(config.seed)
    starting_weights = [weights.copy() for weights in model.get_weights()]
    _freeze(model, config)
    user_count = len(x_user) * config.user_copies
    replay_count = int(round(user_count * config.replay_per_user_crop))
    # A 10-output model (the contract allows one) has no not-a-digit class to keep.
    keeps_marks = model.output_shape[-1] > NOT_A_DIGIT
    share = config.not_a_digit_fraction if keeps_marks else 0.0
    marks_count = int(round((user_count + replay_count) * share / (1 - share)))
    rng = np.random.default_rng(config.seed)
    marks = not_a_digit_marks(marks_count, mnist.x_train[:2000], seed=config.seed) if marks_count else None
    steps = config.epochs * int(np.ceil((user_count + replay_count + marks_count) / config.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history: dict[str, list[float]] = {}
    for epoch in range(config.epochs):
        replay = rng.choice(len(mnist.x_train), size=replay_count, replace=False)
        parts_x = [np.repeat(x_user, config.user_copies, axis=0), mnist.x_train[replay]]
        parts_y = [np.repeat(y_user, config.user_copies), mnist.y_train[replay]]
        if marks is not None:
            parts_x.append(marks)
            parts_y.append(np.full(len(marks), NOT_A_DIGIT, np.int64))
        x = jitter_digits(np.concatenate(parts_x)[..., None], rng, JITTER)
        fitted = model.fit(x, np.concatenate(parts_y), batch_size=config.batch_size, epochs=epoch + 1,
                           initial_epoch=epoch, shuffle=True, verbose=verbose)
        for key, values in fitted.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    share = config.finetuned_share
    model.set_weights([share * tuned + (1.0 - share) * start
                       for tuned, start in zip(model.get_weights(), starting_weights)])
    return history


def digit_accuracy(classifier: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of (N, 28, 28) images whose likeliest digit (not-a-digit aside) is the label, in batched calls."""
    probabilities = classifier.probabilities(images[..., None])
    return float(np.mean(probabilities[:, :10].argmax(axis=1) == labels))


def finetuned_path_for(model_path: str | os.PathLike) -> Path:
    """models/digits.keras -> models/digits-finetuned.keras."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}{FINETUNED_SUFFIX}.keras")


def check_output_path(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """The output .keras path, refused when it (or one of its exports) would overwrite the input model, or when it
    cannot be written (its folder is made here)."""
    model_path, out_path = Path(model_path), Path(out_path)
    if out_path.suffix != ".keras":
        raise ValueError(f"{out_path}: the fine-tuned model is a .keras file (its .tflite and .int8.tflite exports are written beside it). "
                         "Pass --out PATH.keras.")
    inputs = {path.resolve() for path in (model_path, tflite_path_for(model_path), int8_path_for(model_path))}
    if {path.resolve() for path in (out_path, tflite_path_for(out_path), int8_path_for(out_path))} & inputs:
        raise ValueError(f"{out_path}: would overwrite the model being fine-tuned ({model_path}). "
                         f"The fine-tuned model goes beside it: pass --out {finetuned_path_for(model_path)} "
                         "or leave --out out.")
    # Found out now, not after minutes of training.
    existed = out_path.exists()
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "ab"):
            pass
    except OSError as error:
        raise ValueError(f"{out_path}: cannot be written ({error.strerror}). Pass --out in a folder you can write to."
                         ) from None
    if not existed:
        out_path.unlink()
    return out_path


def run_finetune(
    labels_dir: str | os.PathLike,
    model_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
    config: FinetuneConfig = DEFAULT_FINETUNE,
) -> dict:
    """Split the user's labelled crops, fine-tune, write the model and its two exports, and measure before/after.

    Returns:
        The report: held-out accuracy before and after, MNIST test accuracy before and after,
        crop counts, the paths written and the seconds taken.
    """
    started = time.perf_counter()
    out_path = check_output_path(model_path, out_path or finetuned_path_for(model_path))
    check_trainable_model_path(model_path)
    crops = load_labelled_crops(labels_dir)
    split = split_user_crops(crops.images, crops.labels, config)
    model = load_trainable_model(model_path)
    mnist = load_mnist(data_path)
    print(f"{len(crops.labels)} labelled crops {crops.counts()}: {len(split.y_train)} to learn from, "
          f"{len(split.y_held_out)} held out; measuring {model_path} before ...")
    before = DigitClassifier(model_path)
    report: dict = {
        "labels": str(labels_dir),
        "user_crops": int(len(crops.labels)),
        "user_train_crops": int(len(split.y_train)),
        "user_held_out_crops": int(len(split.y_held_out)),
        "held_out_accuracy_before": digit_accuracy(before, split.x_held_out, split.y_held_out),
        "mnist_test_accuracy_before": digit_accuracy(before, mnist.x_test, mnist.y_test),
    }
    print(f"fine-tuning on {len(split.y_train)} of your crops, {config.epochs} epochs with replayed MNIST digits ...")
    history = finetune_model(model, split.x_train, split.y_train, mnist, config)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    int8_path_for(out_path).unlink(missing_ok=True)  # an earlier fine-tuned model's, never to be read beside this one
    model.save(out_path)
    export_tflite(model, tflite_path_for(out_path))
    # OpenVINO's export too, so that the reader runs the fine-tuned model as it runs the shipped one.
    export_int8_tflite(model, int8_path_for(out_path), calibration_images(mnist))
    after = DigitClassifier(out_path)
    print(f"wrote {out_path} and its exports; measuring after ...")
    report.update(
        {
            "held_out_accuracy_after": digit_accuracy(after, split.x_held_out, split.y_held_out),
            "mnist_test_accuracy_after": digit_accuracy(after, mnist.x_test, mnist.y_test),
            "final_training_loss": history["loss"][-1],
            "model": str(out_path),
            "tflite": str(tflite_path_for(out_path)),
            "int8_tflite": str(int8_path_for(out_path)),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return report


__all__ = [
    "DEFAULT_FINETUNE",
    "FinetuneConfig",
    "UserSplit",
    "check_output_path",
    "digit_accuracy",
    "finetune_model",
    "finetuned_path_for",
    "run_finetune",
    "split_user_crops",
]
