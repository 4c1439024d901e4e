from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import train
from digitrec.classify import EXPORT_RUNTIMES, DigitClassifier, ModelFileError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "models" / "digits.keras"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_path, usps_path):
    out = tmp_path_factory.mktemp("quick")
    code = train.main(["--quick", "--data", str(mnist_path), "--usps", str(usps_path), "--out", str(out), "--seed", "3",
                       "--data-seed", "4"])
    return code, out


def test_quick_training_writes_model_export_metrics_and_plots(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("digits.keras", "digits.tflite", "digits.int8.tflite", "metrics.json", "training_curves.png",
                 "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    # The export is quantised to 8 bits: nearly every reading is the Keras model's, probabilities close.
    assert metrics["tflite_same_reading"] >= 0.99
    assert metrics["tflite_mean_probability_difference"] < 0.01
    # So is OpenVINO's, with 8-bit activations too, calibrated on crops of every kind the model learns.
    assert metrics["int8_tflite"] == "digits.int8.tflite" and metrics["int8_calibration_crops"] > 1000
    assert metrics["int8_same_reading"] >= 0.97 and metrics["int8_mean_probability_difference"] < 0.02
    assert abs(metrics["keras_mnist_test_accuracy"] - metrics["mnist_test_accuracy"]) < 0.02
    assert metrics["epochs"] == 2 and metrics["seed"] == 3 and metrics["data_seed"] == 4
    assert sum(sum(row) for row in metrics["mnist_test_confusion"]) == 10000
    assert set(metrics["mnist_test_per_class_accuracy"]) == {str(d) for d in range(10)}
    assert 0.0 <= metrics["usps_test_accuracy"] <= 1.0
    # Two short epochs already learn something: the loss falls.
    assert metrics["history"]["loss"][-1] < metrics["history"]["loss"][0]


def test_evaluate_re_measures_a_saved_model(quick_run, mnist_path, capsys):
    _, out = quick_run
    assert train.main(["--evaluate", str(out / "digits.keras"), "--data", str(mnist_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "metrics.json").read_text())
    assert printed["mnist_test_accuracy"] == pytest.approx(saved["mnist_test_accuracy"], abs=1e-4)


def test_export_int8_writes_openvinos_export_and_adds_its_figures_to_the_model_card(quick_run, mnist_path, tmp_path,
                                                                                    capsys):
    _, out = quick_run
    folder = tmp_path / "exported"
    folder.mkdir()
    model = folder / "digits.keras"
    model.write_bytes((out / "digits.keras").read_bytes())
    (folder / "metrics.json").write_text(json.dumps({"model": "digits.keras", "epochs": 2}))
    assert train.main(["--export-int8", str(model), "--data", str(mnist_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    # The same calibration crops and weights give the same file training wrote.
    assert (folder / "digits.int8.tflite").read_bytes() == (out / "digits.int8.tflite").read_bytes()
    card = json.loads((folder / "metrics.json").read_text())
    assert card["epochs"] == 2 and card["int8_mnist_test_accuracy"] == printed["int8_mnist_test_accuracy"]
    saved = json.loads((out / "metrics.json").read_text())
    assert printed["int8_mnist_test_accuracy"] == pytest.approx(saved["int8_mnist_test_accuracy"], abs=1e-4)
    # Only a .keras digit model is exported, and nothing is written beside anything else.
    assert train.main(["--export-int8", str(out / "digits.tflite"), "--data", str(mnist_path)]) == 2
    assert "needs the .keras model" in capsys.readouterr().err
    pairs = folder / "pairs.keras"
    pairs.write_bytes((ROOT / "models" / "pairs.keras").read_bytes())
    assert train.main(["--export-int8", str(pairs), "--data", str(mnist_path)]) == 2
    assert "not a digit model" in capsys.readouterr().err
    assert sorted(path.name for path in folder.iterdir()) == ["digits.int8.tflite", "digits.keras", "metrics.json",
                                                             "pairs.keras"]


def test_keras_and_tflite_runtimes_agree_on_the_quick_model(quick_run, mnist):
    _, out = quick_run
    tflite_path = out / "digits.tflite"
    moved = out / "alone"
    moved.mkdir()
    keras_only = moved / "digits.keras"
    keras_only.write_bytes((out / "digits.keras").read_bytes())
    compiled = DigitClassifier(keras_only)
    assert compiled.runtime == "keras-compiled"
    batch = mnist.x_test[:37, ..., None]
    compiled_probabilities = compiled.probabilities(batch)
    for runtime in EXPORT_RUNTIMES:
        lite = DigitClassifier(tflite_path, runtime=runtime)
        assert lite.runtime == runtime
        lite_probabilities = lite.probabilities(batch)
        assert np.mean(compiled_probabilities.argmax(axis=1) == lite_probabilities.argmax(axis=1)) >= 0.97
        assert np.abs(compiled_probabilities - lite_probabilities).mean() < 0.01


def test_data_seed_alone_decides_the_assembled_training_set(mnist):
    from dataclasses import replace

    from digitrec.training import QUICK_CONFIG, assemble_training_set

    small = replace(QUICK_CONFIG, segmenter_pages=0, camera_copies=50, not_a_digit_count=20, train_subset=300)
    first = assemble_training_set(mnist, None, replace(small, seed=1, data_seed=5))
    other_training_seed = assemble_training_set(mnist, None, replace(small, seed=2, data_seed=5))
    other_data_seed = assemble_training_set(mnist, None, replace(small, seed=1, data_seed=6))
    np.testing.assert_array_equal(first.x_train, other_training_seed.x_train)
    np.testing.assert_array_equal(first.y_val, other_training_seed.y_val)
    assert not np.array_equal(first.x_val, other_data_seed.x_val)


def test_flag_ones_flags_training_ones_only_and_says_how_many(mnist):
    from dataclasses import replace

    from digitrec.training import QUICK_CONFIG, assemble_training_set

    small = replace(QUICK_CONFIG, segmenter_pages=0, camera_copies=50, not_a_digit_count=20, train_subset=600,
                    data_seed=5)
    plain = assemble_training_set(mnist, None, small)
    flagged = assemble_training_set(mnist, None, replace(small, flag_ones=0.5))
    count = flagged.composition["flagged_ones"]
    clean = slice(0, plain.composition["mnist"])
    differs = np.abs(flagged.x_train[clean] - plain.x_train[clean]).max(axis=(1, 2, 3)) > 0.1
    assert count == differs.sum() > 0
    assert set(plain.y_train[clean][differs]) == {1}
    np.testing.assert_array_equal(flagged.x_val, plain.x_val)  # the digits watched in training stay as written
    assert "flagged_ones" not in plain.composition


def test_printed_digits_join_the_training_set_with_printed_signs_as_not_a_digit(mnist):
    from dataclasses import replace

    from digitrec.augment import NOT_A_DIGIT
    from digitrec.training import QUICK_CONFIG, assemble_training_set

    small = replace(QUICK_CONFIG, segmenter_pages=0, camera_copies=50, not_a_digit_count=20, train_subset=300,
                    data_seed=5)
    plain = assemble_training_set(mnist, None, small)
    printed = assemble_training_set(mnist, None, replace(small, printed_digits=40))
    assert (printed.composition["printed"], printed.composition["printed_camera_style"],
            printed.composition["printed_not_a_digit"]) == (40, 12, 20)
    np.testing.assert_array_equal(printed.x_train[: len(plain.x_train)], plain.x_train)  # added after the rest
    added_x, added_y = printed.x_train[len(plain.x_train):], printed.y_train[len(plain.y_train):]
    assert list(added_y) == [d % 10 for d in range(40)] + [d % 10 for d in range(12)] + [NOT_A_DIGIT] * 20
    # Each through the normaliser (MNIST's 20-pixel box in 28), the camera-styled ones spoilt, not copies.
    digits = added_x[:40, :, :, 0]
    assert digits[:, :, :2].max() < 0.5 and digits[:, :2, :].max() < 0.5 and np.all(digits.max(axis=(1, 2)) > 0.9)
    assert np.abs(added_x[40:52] - added_x[:12]).max(axis=(1, 2, 3)).min() > 0.2


def test_training_on_records_the_network_it_trains_not_the_default_one(tmp_path, mnist_path, monkeypatch):
    from digitrec.model import NUM_CLASSES, build_digit_cnn

    small = ((4, 1), (8, 2), (8, 1), (16, 2), (16, 1))
    build_digit_cnn(NUM_CLASSES, small).save(tmp_path / "small.keras")
    given = []
    monkeypatch.setattr("digitrec.training.run_training", lambda *args, **kwargs: given.append(args[3]) or {})
    assert train.main(["--data", str(mnist_path), "--continue-from", str(tmp_path / "small.keras"), "--data-seed", "2",
                       "--out", str(tmp_path)]) == 0
    assert given[0].conv_blocks == small and given[0].continue_from == str(tmp_path / "small.keras")


def test_training_goes_on_from_a_models_weights(quick_run, mnist_path, tmp_path):
    code, out = quick_run
    assert code == 0
    assert train.main(["--quick", "--data", str(mnist_path), "--continue-from", str(out / "digits.keras"), "--epochs", "1",
                       "--data-seed", "4", "--printed-digits", "30", "--out", str(tmp_path)]) == 0
    before = json.loads((out / "metrics.json").read_text())
    after = json.loads((tmp_path / "metrics.json").read_text())
    assert after["config"]["continue_from"] == str(out / "digits.keras") and after["data"]["printed"] == 30
    assert after["data_seed"] == before["data_seed"] == 4  # the digits it held out stay held out
    assert after["continued_from_sha256"] == hashlib.sha256((out / "digits.keras").read_bytes()).hexdigest()
    # One epoch more at a tenth of the learning rate keeps what the two quick epochs learnt (a fresh network
    # given that one epoch reads MNIST test far worse).
    assert after["mnist_test_accuracy"] >= before["mnist_test_accuracy"] - 0.03
    assert after["history"]["loss"][0] < before["history"]["loss"][0]


def test_evaluation_pages_can_be_written_with_exactly_the_digits_training_held_out(mnist, mnist_path):
    from dataclasses import replace

    from digitrec.evaluation import load_held_out_glyphs
    from digitrec.training import QUICK_CONFIG, assemble_training_set

    small = replace(QUICK_CONFIG, segmenter_pages=0, camera_copies=50, not_a_digit_count=20, data_seed=5)
    held_out = assemble_training_set(mnist, None, small)
    glyphs = load_held_out_glyphs(str(mnist_path), 5)
    assert len(glyphs.images) == 1000  # TrainingConfig's validation_size; the quick run holds out its first 300
    np.testing.assert_allclose(glyphs.images[: len(held_out.x_val)], held_out.x_val[..., 0], atol=1 / 255)
    trained = {row.tobytes() for row in (held_out.x_train[: held_out.composition["mnist"], ..., 0] * 255).round().astype(np.uint8)}
    assert not any((image * 255).round().astype(np.uint8).tobytes() in trained for image in glyphs.images[:300])


def test_training_refuses_a_missing_data_file(tmp_path, capsys):
    assert train.main(["--quick", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "none.npz: no such file" in capsys.readouterr().err


def test_wrong_model_files_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        DigitClassifier(tmp_path / "missing.keras")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable LiteRT model"):
        DigitClassifier(junk)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError, match="not a Keras model .a .keras file is a zip archive"):
        DigitClassifier(broken)
    text = tmp_path / "model.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"\.keras or \.tflite"):
        DigitClassifier(text)


def test_shipped_model_reads_mnist_test_at_99_6_percent_or_better(mnist):
    # Issue #2's goal, on the full MNIST test split through the reader's own runtimes (the .tflite export).
    for runtime in EXPORT_RUNTIMES:
        classifier = DigitClassifier(SHIPPED_MODEL, runtime=runtime)
        assert classifier.runtime == runtime
        probabilities = classifier.probabilities(mnist.x_test[..., None])
        accuracy = float(np.mean(probabilities[:, :10].argmax(axis=1) == mnist.y_test))
        assert accuracy >= 0.996, (runtime, accuracy)


def test_shipped_tflite_matches_the_keras_weights(mnist):
    import keras

    model = keras.saving.load_model(SHIPPED_MODEL, compile=False)
    batch = mnist.x_test[:500, ..., None]
    expected = model(batch, training=False).numpy()
    lite = DigitClassifier(SHIPPED_MODEL.with_suffix(".tflite")).probabilities(batch)
    # 8-bit weights: the same reading for all but a few crops in a thousand, probabilities close.
    assert np.mean(lite.argmax(axis=1) == expected.argmax(axis=1)) >= 0.998
    assert np.abs(lite - expected).mean() < 1e-3 and np.abs(lite - expected).max() < 0.2


def test_teacher_targets_mix_the_label_with_the_softened_teacher(mnist):
    from digitrec.training import teacher_targets

    teacher = DigitClassifier(SHIPPED_MODEL)
    images, labels = mnist.x_test[:64, ..., None], mnist.y_test[:64]
    probabilities = teacher.probabilities(images)
    labels_only = teacher_targets(teacher, images, labels, weight=0.0, temperature=2.0)
    np.testing.assert_array_equal(labels_only.argmax(axis=1), labels)
    assert set(np.unique(labels_only)) == {0.0, 1.0}
    teacher_only = teacher_targets(teacher, images, labels, weight=1.0, temperature=1.0)
    np.testing.assert_allclose(teacher_only, probabilities, atol=1e-6)
    softened = teacher_targets(teacher, images, labels, weight=1.0, temperature=2.0)
    np.testing.assert_allclose(softened.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(softened.argmax(axis=1), probabilities.argmax(axis=1))
    # Softening moves weight from the teacher's choice to the other classes.
    assert np.all(softened.max(axis=1) <= probabilities.max(axis=1) + 1e-6)
    assert np.mean(softened.max(axis=1) < probabilities.max(axis=1) - 1e-3) > 0.5
    mixed = teacher_targets(teacher, images, labels, weight=0.5, temperature=2.0)
    np.testing.assert_allclose(mixed, 0.5 * labels_only + 0.5 * softened, atol=1e-6)


def test_the_camera_style_test_set_is_drawn_once_a_process_and_as_camera_digits_draws_it(mnist):
    from digitrec.augment import camera_digits
    from digitrec.training import camera_style_test_digits

    digits = mnist.x_test[:50]
    first = camera_style_test_digits(digits, seed=5)
    np.testing.assert_array_equal(first, camera_digits(digits, seed=5))
    assert camera_style_test_digits(digits.copy(), seed=5) is first  # by content, not by object
    assert not first.flags.writeable  # shared between callers: nobody may change it
    assert not np.array_equal(camera_style_test_digits(digits, seed=6), first)
    assert not np.array_equal(camera_style_test_digits(mnist.x_test[50:100], seed=5), first)


def test_a_taught_model_is_sharpened_to_its_teachers_confidence(mnist):
    import keras

    from digitrec.training import match_teacher_confidence

    teacher = DigitClassifier(SHIPPED_MODEL)
    images = mnist.x_test[:1000, ..., None]
    # A student that reads exactly as the teacher, only half as surely: its logits halved.
    student = keras.saving.load_model(SHIPPED_MODEL, compile=False)
    kernel, bias = student.layers[-1].get_weights()
    student.layers[-1].set_weights([kernel / 2, bias / 2])
    softened = student(images, training=False).numpy()
    factor = match_teacher_confidence(student, teacher, images)
    sharpened = student(images, training=False).numpy()
    assert 1.95 <= factor <= 2.05  # the teacher runs on 8-bit weights, the student on float ones
    np.testing.assert_array_equal(sharpened.argmax(axis=1), softened.argmax(axis=1))
    target = teacher.probabilities(images).max(axis=1).mean()
    assert abs(sharpened.max(axis=1).mean() - target) < 0.002 < target - softened.max(axis=1).mean()


@pytest.mark.parametrize("option, message", [
    (["--blocks", "16,32"], "--blocks takes 5"),
    (["--blocks", "a,b,c,d,e"], "whole numbers"),
    (["--teacher", "no/such/model.keras"], "no such model file"),
    (["--flag-ones", "1.5"], "--flag-ones is a fraction from 0 to 1"),
    (["--continue-from", str(ROOT / "models" / "digits.tflite"), "--data-seed", "2"], "a .tflite export cannot be trained"),
    (["--continue-from", str(ROOT / "models" / "pairs.keras"), "--data-seed", "2"], "not the digit CNN with its not-a-"),
    (["--continue-from", str(SHIPPED_MODEL), "--blocks", "16,32,32,64,128"], "leave out --prune-from and --blocks"),
    (["--continue-from", str(SHIPPED_MODEL), "--prune-from", str(SHIPPED_MODEL)], "leave out --prune-from and --blocks"),
    (["--continue-from", str(SHIPPED_MODEL)], "--continue-from needs --data-seed"),
])
def test_training_refuses_bad_blocks_teachers_and_flag_fractions_with_the_fix(option, message, mnist_path, capsys):
    assert train.main(["--quick", "--data", str(mnist_path), *option]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("task", [[], ["--pairs"], ["--finetune", "labels"]])
@pytest.mark.parametrize("count", ["0", "-3", "two"])
def test_epochs_under_one_are_refused_for_every_kind_of_training(task, count, capsys):
    with pytest.raises(SystemExit) as stop:
        train.main([*task, "--epochs", count])
    assert stop.value.code == 2 and "argument --epochs: epochs are a whole number 1 or more" in capsys.readouterr().err


def test_a_teacher_without_the_not_a_digit_output_is_refused_before_training(tmp_path, mnist_path, capsys):
    from digitrec.model import build_digit_cnn

    ten_outputs = tmp_path / "ten.keras"
    build_digit_cnn(10, ((4, 1), (4, 2), (4, 1), (4, 2), (4, 1))).save(ten_outputs)
    assert train.main(["--quick", "--data", str(mnist_path), "--teacher", str(ten_outputs), "--out", str(tmp_path)]) == 2
    assert "gives 10 outputs; a teacher needs the not-a-digit output" in capsys.readouterr().err
    assert not (tmp_path / "digits.keras").exists()


@pytest.mark.parametrize("kind", [[], ["--pairs"]], ids=["digits", "pairs"])
def test_an_out_that_is_a_file_is_refused_before_training(kind, tmp_path, mnist_path, capsys, monkeypatch):
    import digitrec.pair_training
    import digitrec.training

    def trained(*args, **kwargs):
        raise AssertionError("trained before --out was checked")

    monkeypatch.setattr(digitrec.training, "run_training", trained)
    monkeypatch.setattr(digitrec.pair_training, "run_pair_training", trained)
    a_file = tmp_path / "README.md"
    a_file.write_text("kept")
    assert train.main(["--quick", "--data", str(mnist_path), *kind, "--out", str(a_file)]) == 2
    assert "is a file; training writes a folder" in capsys.readouterr().err and a_file.read_text() == "kept"


def test_evaluate_and_export_name_their_own_option_for_a_wrong_model(tmp_path, capsys):
    assert train.main(["--evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "Pass --evaluate PATH" in capsys.readouterr().err
    notes = tmp_path / "notes.md"
    notes.write_text("not a model")
    assert train.main(["--export-int8", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "a model is a .keras file" in err and "Pass --export-int8" in err and "tflite" not in err
