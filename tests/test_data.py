from __future__ import annotations

import numpy as np
import pytest

from digitrec.data import KERAS_MNIST, DataFileError, load_mnist, load_usps


def _write_mnist_like(path, n=8, dtype=np.uint8, side=28, **overrides):
    arrays = {
        "x_train": np.random.default_rng(0).integers(0, 256, (n, side, side)).astype(dtype),
        "y_train": np.arange(n) % 10,
        "x_test": np.zeros((n // 2, side, side), dtype),
        "y_test": np.arange(n // 2) % 10,
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_loads_a_small_mnist_file_as_floats_in_unit_range(tmp_path):
    data = load_mnist(_write_mnist_like(tmp_path / "m.npz"))
    assert data.x_train.shape == (8, 28, 28) and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.y_test.tolist() == [0, 1, 2, 3]


def test_real_mnist_has_the_documented_counts(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_missing_file_names_the_path_and_the_flag(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.npz: no such file.*--data"):
        load_mnist(tmp_path / "nope.npz")


def test_a_folder_instead_of_a_file_is_refused(tmp_path):
    with pytest.raises(DataFileError, match="is a folder"):
        load_mnist(tmp_path)


def test_corrupt_archive_is_reported_not_crashed_on(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 this is not a real zip")
    with pytest.raises(DataFileError, match="not a readable .npz"):
        load_mnist(path)
    text = tmp_path / "README.md"
    text.write_text("# not data")  # NumPy would take it for a pickle and say it holds pickled data
    with pytest.raises(DataFileError, match="not an .npz archive"):
        load_mnist(text)


def test_archive_without_the_mnist_keys_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((2, 28, 28)))
    with pytest.raises(DataFileError, match="lacks the arrays x_train, y_train, x_test, y_test"):
        load_mnist(path)


def test_wrong_image_shape_is_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"shape \(8, 16, 16\), expected \(N, 28, 28\)"):
        load_mnist(_write_mnist_like(tmp_path / "m.npz", side=16))


def test_mismatched_label_count_is_refused(tmp_path):
    with pytest.raises(DataFileError, match="y_train has shape"):
        load_mnist(_write_mnist_like(tmp_path / "m.npz", y_train=np.zeros(3, np.int64)))


def test_labels_outside_0_to_9_are_refused(tmp_path):
    with pytest.raises(DataFileError, match="labels outside 0-9"):
        load_mnist(_write_mnist_like(tmp_path / "m.npz", y_train=np.full(8, 12)))


def test_float_images_are_not_mistaken_for_mnist(tmp_path):
    with pytest.raises(DataFileError, match="float32, MNIST is uint8"):
        load_mnist(_write_mnist_like(tmp_path / "m.npz", dtype=np.float32))


def test_mnist_path_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_MNIST", str(_write_mnist_like(tmp_path / "env.npz")))
    assert load_mnist().source.endswith("env.npz")


def test_without_a_file_mnist_comes_from_keras_own_download(monkeypatch):
    import keras

    images = np.random.default_rng(1).integers(0, 256, (6, 28, 28)).astype(np.uint8)
    labels = np.arange(6, dtype=np.uint8)
    asked = []

    def load_data():  # keras.datasets.mnist.load_data's return shape; no network in tests
        asked.append(True)
        return (images, labels), (images[:3], labels[:3])

    monkeypatch.delenv("DIGITREC_MNIST", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", load_data)
    data = load_mnist(None)
    assert asked and data.source == KERAS_MNIST
    assert data.x_train.dtype == np.float32 and np.allclose(data.x_train * 255.0, images)
    assert data.y_test.tolist() == [0, 1, 2]


def test_a_failed_download_is_refused_with_the_file_to_give_instead(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2] Name or "
                        "service not known")

    monkeypatch.delenv("DIGITREC_MNIST", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataFileError, match=r"Keras could not download it \(URL fetch failure.*Point --data"):
        load_mnist(None)
    with pytest.raises(DataFileError, match="Point --mnist"):
        load_mnist(None, flag="--mnist")


def test_a_given_file_is_read_and_nothing_downloaded(tmp_path, monkeypatch):
    import keras

    def no_download():
        raise AssertionError("a given file must not be downloaded instead")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_download)
    monkeypatch.setenv("DIGITREC_MNIST", str(tmp_path / "missing.npz"))
    with pytest.raises(DataFileError, match="no such file"):
        load_mnist(None)


def test_usps_is_optional_and_resized_the_mnist_way(usps_path, monkeypatch):
    monkeypatch.delenv("DIGITREC_USPS", raising=False)
    assert load_usps(None) is None
    usps = load_usps(usps_path)
    assert usps.x_train.shape == (7291, 28, 28) and usps.x_test.shape == (2007, 28, 28)
    # The MNIST recipe leaves a 4-pixel frame empty for almost every digit.
    border = np.concatenate([usps.x_test[:, :3].ravel(), usps.x_test[:, -3:].ravel()])
    assert border.mean() < 0.01
    assert 0.08 < usps.x_test.mean() < 0.2


def test_usps_with_values_outside_unit_range_is_refused(tmp_path):
    path = tmp_path / "u.npz"
    np.savez(path, x_train=np.full((2, 16, 16), 255.0), y_train=np.zeros(2), x_test=np.zeros((1, 16, 16)), y_test=np.zeros(1))
    with pytest.raises(DataFileError, match=r"outside \[0, 1\].*--usps"):
        load_usps(path)
