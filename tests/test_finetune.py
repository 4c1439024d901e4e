"""Fine-tuning on the user's hand: it learns a hand the shipped model misreads, keeps MNIST, never overwrites."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import train
from digitrec.classify import EXPORT_RUNTIMES, DigitClassifier, export_tflite, load_trainable_model
from digitrec.finetune import (
    DEFAULT_FINETUNE,
    FinetuneConfig,
    check_output_path,
    digit_accuracy,
    finetune_model,
    split_user_crops,
)
from digitrec.labels import LabelStore
from digitrec.normalise import normalise_mask_to_mnist
from digitrec.synth import BOXY_TEMPLATES, StrokeGlyphs, StrokeStyle
from digitrec.types import Frame

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "models" / "digits.keras"

BOXY_HAND = StrokeGlyphs(StrokeStyle(slant=(0.15, 0.45)), templates=BOXY_TEMPLATES)
"""A user who writes like a seven-segment display, slanted: a hand the shipped model reads poorly."""


def boxy_digits(per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) boxy-hand digits through the reader's normaliser, and their labels."""
    rng = np.random.default_rng(seed)
    images = [normalise_mask_to_mnist(BOXY_HAND.sample(digit, rng) >= 0.5) for digit in range(10) for _ in range(per_digit)]
    return np.stack(images), np.repeat(np.arange(10), per_digit)


def boxy_label_folder(folder: Path, per_digit: int, seed: int) -> Path:
    """A label folder as the window writes it: boxy digits on white frames, labelled box by box."""
    rng = np.random.default_rng(seed)
    store = LabelStore(folder)
    for digit in range(10):
        for index in range(per_digit):
            ink = BOXY_HAND.sample(digit, rng)
            image = np.full((ink.shape[0] + 60, ink.shape[1] + 60, 3), 235, np.uint8)
            image[30:-30, 30:-30] -= (ink[..., None] * 200).astype(np.uint8)
            rows, columns = np.nonzero(ink >= 0.5)
            box = (int(columns.min()) + 30, int(rows.min()) + 30, int(np.ptp(columns)) + 1, int(np.ptp(rows)) + 1)
            store.add(Frame(index=index, image=image, source=f"boxy{digit}.mp4", time=0.0), box, digit)
    return folder


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """The shipped model and its exports, copied so that outputs written beside it stay in tmp_path."""
    folder = tmp_path / "model"
    folder.mkdir()
    for suffix in (".keras", ".tflite", ".int8.tflite"):
        shutil.copy(SHIPPED_MODEL.with_name(f"digits{suffix}"), folder / f"digits{suffix}")
    return folder / "digits.keras"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_twenty_labelled_crops_per_digit_teach_a_misread_hand_without_losing_mnist(mnist, tmp_path):
    x_user, y_user = boxy_digits(20, seed=11)
    x_held_out, y_held_out = boxy_digits(50, seed=12)
    shipped = DigitClassifier(SHIPPED_MODEL)
    held_out_before = digit_accuracy(shipped, x_held_out, y_held_out)
    mnist_before = digit_accuracy(shipped, mnist.x_test, mnist.y_test)
    assert held_out_before < 0.85, f"the shipped model reads the boxy hand well ({held_out_before:.1%}): pick a harder one"

    model = load_trainable_model(SHIPPED_MODEL)
    finetune_model(model, x_user, y_user, mnist, DEFAULT_FINETUNE, verbose=0)
    tuned = DigitClassifier(export_tflite(model, tmp_path / "tuned.tflite"))
    assert tuned.runtime in EXPORT_RUNTIMES
    held_out_after = digit_accuracy(tuned, x_held_out, y_held_out)
    mnist_after = digit_accuracy(tuned, mnist.x_test, mnist.y_test)
    print(f"boxy hand held out: {held_out_before:.1%} -> {held_out_after:.1%}; "
          f"MNIST test: {mnist_before:.2%} -> {mnist_after:.2%}")
    assert held_out_after >= held_out_before + 0.25, (held_out_before, held_out_after)
    assert mnist_after >= mnist_before - 0.002, (mnist_before, mnist_after)


def test_a_blend_without_the_finetuned_weights_is_refused(mnist):
    from dataclasses import replace

    model = load_trainable_model(SHIPPED_MODEL)
    x_user, y_user = boxy_digits(3, seed=1)
    with pytest.raises(ValueError, match="finetuned_share"):
        finetune_model(model, x_user, y_user, mnist, replace(DEFAULT_FINETUNE, finetuned_share=0.0), verbose=0)


def test_the_user_split_is_stratified_seeded_and_disjoint():
    images = np.arange(60 * 28 * 28, dtype=np.float32).reshape(60, 28, 28)
    labels = np.repeat([0, 3, 8], 20)
    split = split_user_crops(images, labels, FinetuneConfig(held_out_fraction=0.25, seed=4))
    assert sorted(split.y_held_out.tolist()) == [0] * 5 + [3] * 5 + [8] * 5
    assert sorted(split.y_train.tolist()) == [0] * 15 + [3] * 15 + [8] * 15
    train_ids = {float(image[0, 0]) for image in split.x_train}
    held_ids = {float(image[0, 0]) for image in split.x_held_out}
    assert not train_ids & held_ids and len(train_ids | held_ids) == 60
    again = split_user_crops(images, labels, FinetuneConfig(held_out_fraction=0.25, seed=4))
    assert np.array_equal(again.x_held_out, split.x_held_out)
    other = split_user_crops(images, labels, FinetuneConfig(held_out_fraction=0.25, seed=5))
    assert not np.array_equal(other.x_held_out, split.x_held_out)


def test_too_few_crops_of_a_digit_are_refused_with_the_fix():
    labels = np.array([1] * 10 + [2] * 3)
    with pytest.raises(ValueError, match=r"too few labelled crops of digit 2 \(3\).*at least 4.*Label more"):
        split_user_crops(np.zeros((13, 28, 28), np.float32), labels)


def test_finetune_cli_writes_the_model_beside_the_input_and_reports_before_and_after(
    model_copy, mnist_path, tmp_path, capsys
):
    labels = boxy_label_folder(tmp_path / "labels", per_digit=6, seed=3)
    shipped_digest = _digest(model_copy)
    code = train.main(["--finetune", str(labels), "--model", str(model_copy), "--data", str(mnist_path), "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    report = json.loads("\n".join(lines[lines.index("{") : lines.index("}") + 1]))
    assert report["user_crops"] == 60 and report["user_held_out_crops"] == 20 and report["user_train_crops"] == 40
    for key in ("held_out_accuracy_before", "held_out_accuracy_after", "mnist_test_accuracy_before", "mnist_test_accuracy_after"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["mnist_test_accuracy_before"] > 0.99
    assert "your held-out crops:" in out and "MNIST test:" in out
    tuned = model_copy.with_name("digits-finetuned.keras")
    assert report["model"] == str(tuned) and tuned.is_file() and tuned.with_suffix(".tflite").is_file()
    # OpenVINO's export too, so that no stale one of another model is ever read beside it.
    assert report["int8_tflite"] == str(tuned.with_suffix(".int8.tflite")) and Path(report["int8_tflite"]).is_file()
    assert _digest(model_copy) == shipped_digest
    assert DigitClassifier(tuned).runtime in EXPORT_RUNTIMES


def test_finetune_refuses_to_overwrite_the_model_it_starts_from(model_copy, mnist_path, tmp_path, capsys):
    labels = boxy_label_folder(tmp_path / "labels", per_digit=4, seed=5)
    before = {path: _digest(path) for path in (model_copy, model_copy.with_suffix(".tflite"),
                                                model_copy.with_suffix(".int8.tflite"))}
    # digits.int8.keras's .tflite export would be the model's own .int8.tflite.
    for out in (model_copy, model_copy.parent / "." / "digits.keras", model_copy.with_suffix(".int8.keras")):
        assert train.main(["--finetune", str(labels), "--model", str(model_copy), "--out", str(out), "--data", str(mnist_path)]) == 2
        assert "would overwrite the model being fine-tuned" in capsys.readouterr().err
    assert {path: _digest(path) for path in before} == before
    with pytest.raises(ValueError, match=r"\.keras file"):
        check_output_path(model_copy, model_copy.with_suffix(".tflite"))


def test_finetune_refuses_an_output_it_cannot_write_before_it_trains(model_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker / "mine.keras", Path("/proc/digitrec/mine.keras")):
        with pytest.raises(ValueError, match="cannot be written"):
            check_output_path(model_copy, out)
    # A folder that is not there yet is made; nothing is left in it.
    made = check_output_path(model_copy, tmp_path / "new" / "mine.keras")
    assert made.parent.is_dir() and not made.exists()


def test_finetune_cli_names_a_bad_label_folder_or_model(model_copy, mnist_path, tmp_path, capsys):
    assert train.main(["--finetune", str(tmp_path / "nothing"), "--model", str(model_copy), "--data", str(mnist_path)]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err
    labels = boxy_label_folder(tmp_path / "labels", per_digit=2, seed=6)
    assert train.main(["--finetune", str(labels), "--model", str(model_copy), "--data", str(mnist_path)]) == 2
    assert "too few labelled crops" in capsys.readouterr().err
    lite = model_copy.with_suffix(".tflite")
    assert train.main(["--finetune", str(labels), "--model", str(lite), "--data", str(mnist_path)]) == 2
    assert "needs the .keras model" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"cut short")
    assert train.main(["--finetune", str(labels), "--model", str(broken), "--data", str(mnist_path)]) == 2
    assert "a .keras file is a zip archive" in capsys.readouterr().err
