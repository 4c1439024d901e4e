"""Load MNIST and USPS from .npz files, with clear errors; MNIST from Keras's own download when no file is given."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.normalise import normalise_mask_to_mnist

MNIST_ENV = "DIGITREC_MNIST"
"""Environment variable naming mnist.npz when --data is not given."""

USPS_ENV = "DIGITREC_USPS"
"""Environment variable naming usps.npz when --usps is not given."""

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")

KERAS_MNIST = "keras.datasets.mnist"
"""The `source` of MNIST taken from Keras's own download (cached in ~/.keras/datasets/mnist.npz)."""


class DataFileError(ValueError):
    """A data file is missing or not what it claims to be; the message names the fix."""


@dataclass(frozen=True)
class DigitDataset:
    """Images as (N, 28, 28) float32 in [0, 1], white ink on black, and labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def _read_npz(path: Path, flag: str) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataFileError(f"{path}: no such file. Point {flag} at the .npz file.")
    if path.is_dir():
        raise DataFileError(f"{path}: is a folder. Point {flag} at the .npz file inside it.")
    with open(path, "rb") as file:
        if file.read(2) != b"PK":  # an .npz is a zip archive of .npy arrays
            raise DataFileError(f"{path}: not an .npz archive. Point {flag} at the .npz file.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as error:  # numpy raises several types for a broken archive
        raise DataFileError(
            f"{path}: not a readable .npz archive ({type(error).__name__}: {error}). "
            f"Point {flag} at an intact copy."
        ) from None
    missing = [key for key in SPLIT_KEYS if key not in arrays]
    if missing:
        raise DataFileError(
            f"{path}: lacks the arrays {', '.join(missing)} (it has {', '.join(arrays) or 'none'}). "
            f"Point {flag} at a file with x_train, y_train, x_test, y_test."
        )
    return arrays


def _check_split(path: Path, flag: str, images: np.ndarray, labels: np.ndarray, side: int, name: str):
    if images.ndim != 3 or images.shape[1:] != (side, side):
        raise DataFileError(
            f"{path}: x_{name} has shape {images.shape}, expected (N, {side}, {side}). "
            f"Point {flag} at the right file."
        )
    if labels.shape != (images.shape[0],):
        raise DataFileError(
            f"{path}: y_{name} has shape {labels.shape} for {images.shape[0]} images. "
            f"Point {flag} at an intact copy."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"{path}: y_{name} holds labels outside 0-9. Point {flag} at the right file.")


def resolve_data_path(path: str | os.PathLike | None, env: str) -> Path | None:
    """The explicit path if given, else the environment variable's, else None."""
    if path:
        return Path(path)
    if os.environ.get(env):
        return Path(os.environ[env])
    return None


def _download_mnist(flag: str) -> dict[str, np.ndarray]:
    """MNIST as Keras fetches it for users who are online (checked against its hash, cached in
    ~/.keras/datasets), for when no file is given; offline, the error names the file to give instead."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras wraps every network and hash failure in a bare Exception
        raise DataFileError(
            f"no MNIST file given, and Keras could not download it ({error}). Point {flag} (or ${MNIST_ENV}) at "
            "mnist.npz, the arrays x_train, y_train, x_test and y_test as keras.datasets.mnist stores them "
            "(this project's is ../shared/data/mnist.npz)."
        ) from None
    return dict(zip(SPLIT_KEYS, (x_train, y_train, x_test, y_test), strict=True))


def load_mnist(path: str | os.PathLike | None = None, flag: str = "--data") -> DigitDataset:
    """Load MNIST from an .npz with Keras's keys (x_train, y_train, x_test, y_test; uint8 0-255).

    Args:
        path: mnist.npz; if None, $DIGITREC_MNIST; if that is unset too, Keras's own download of MNIST
            (`keras.datasets.mnist.load_data`, fetched once and cached; an error offline).
        flag: the command-line flag named in error messages.
    """
    resolved = resolve_data_path(path, MNIST_ENV)
    arrays = _download_mnist(flag) if resolved is None else _read_npz(resolved, flag)
    x_train, y_train, x_test, y_test = (arrays[key] for key in SPLIT_KEYS)
    source = KERAS_MNIST if resolved is None else str(resolved)
    for images, labels, name in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        _check_split(Path(source), flag, images, labels, 28, name)
        if images.dtype != np.uint8:
            raise DataFileError(
                f"{source}: x_{name} is {images.dtype}, MNIST is uint8 0-255. Point {flag} at mnist.npz."
            )
    return DigitDataset(
        x_train=x_train.astype(np.float32) / 255.0,
        y_train=y_train.astype(np.int64),
        x_test=x_test.astype(np.float32) / 255.0,
        y_test=y_test.astype(np.int64),
        source=source,
    )


def training_split_order(count: int, data_seed: int) -> tuple[np.ndarray, np.random.Generator]:
    """The order in which a training run with this data seed takes MNIST's training digits (the
    first `validation_size` are held out to watch training and to choose between models; the rest
    are trained on), and the random generator that goes on to draw the rest of its training set."""
    rng = np.random.default_rng(data_seed)
    return rng.permutation(count), rng


def usps_to_mnist(images: np.ndarray) -> np.ndarray:
    """Resize USPS digits (stretched to fill 16x16) the MNIST way with the shared normaliser."""
    out = np.zeros((len(images), 28, 28), np.float32)
    for index, image in enumerate(images):
        out[index] = normalise_mask_to_mnist(image >= 0.5)
    return out


def load_usps(path: str | os.PathLike | None, flag: str = "--usps") -> DigitDataset | None:
    """Load USPS from an .npz of 16x16 float images in [0, 1] (1 = ink), MNIST-normalised.

    Returns None when no path is given and $DIGITREC_USPS is unset: USPS is optional.
    """
    resolved = resolve_data_path(path, USPS_ENV)
    if resolved is None:
        return None
    arrays = _read_npz(resolved, flag)
    for name in ("train", "test"):
        _check_split(resolved, flag, arrays[f"x_{name}"], arrays[f"y_{name}"], 16, name)
        values = arrays[f"x_{name}"]
        if values.size and (values.min() < -1e-6 or values.max() > 1 + 1e-6):
            raise DataFileError(
                f"{resolved}: x_{name} holds values outside [0, 1]; USPS is stored as floats with "
                f"1 = ink. Point {flag} at usps.npz."
            )
    return DigitDataset(
        x_train=usps_to_mnist(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=usps_to_mnist(arrays["x_test"]),
        y_test=arrays["y_test"].astype(np.int64),
        source=str(resolved),
    )
