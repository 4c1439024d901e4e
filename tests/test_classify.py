"""The classifier's runtimes: LiteRT, and OpenVINO in bfloat16 on the same .tflite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digitrec import classify
from digitrec.classify import DigitClassifier, ModelFileError, choose_runtime
from digitrec.reader import DigitReader
from digitrec.types import Frame

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_EXPORT = ROOT / "models" / "digits.tflite"
SAMPLE = ROOT / "samples" / "page.jpg"


def test_runtime_is_chosen_by_argument_then_environment_then_the_cpu(monkeypatch):
    monkeypatch.setenv("DIGITREC_RUNTIME", "litert")
    assert choose_runtime() == "litert"
    assert choose_runtime("openvino") == "openvino"
    monkeypatch.setenv("DIGITREC_RUNTIME", "fastest")
    with pytest.raises(ModelFileError, match="DIGITREC_RUNTIME"):
        choose_runtime()
    monkeypatch.delenv("DIGITREC_RUNTIME")
    monkeypatch.setattr(classify, "cpu_is_x86_64", lambda: True)
    assert choose_runtime() == "openvino"  # installed by requirements.txt
    monkeypatch.setattr(classify, "cpu_is_x86_64", lambda: False)
    assert choose_runtime() == "litert"
    assert DigitClassifier(SHIPPED_EXPORT).runtime == "litert"


def test_a_wrong_runtime_is_refused_by_the_command_line_with_the_fix():
    done = subprocess.run([sys.executable, "live_digits.py", "--source", str(SAMPLE), "--no-display"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "DIGITREC_RUNTIME": "fastest"})
    assert done.returncode == 2
    assert "DIGITREC_RUNTIME" in done.stderr and "Traceback" not in done.stderr


def test_openvino_reads_the_shipped_export_as_litert_does(mnist):
    lite = DigitClassifier(SHIPPED_EXPORT, runtime="litert")
    vino = DigitClassifier(SHIPPED_EXPORT, runtime="openvino")
    assert vino.runtime == "openvino" and vino.with_threads(1).runtime == "openvino"
    batch = mnist.x_test[:600, ..., None]  # more than the largest compiled batch: two calls
    expected, got = lite.probabilities(batch), vino.probabilities(batch)
    assert got.shape == expected.shape == (600, 11)
    assert np.mean(got.argmax(axis=1) == expected.argmax(axis=1)) >= 0.998
    assert np.abs(got - expected).mean() < 1e-3
    # A small batch, padded to its compiled size, reads its crops as the big batch did.
    assert np.abs(vino.probabilities(batch[:5]) - got[:5]).max() < 1e-2
    assert vino.probabilities(batch[:0]).shape == (0, 11)


def test_openvino_refuses_a_wrong_model_file_with_the_fix(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable LiteRT model"):
        DigitClassifier(junk, runtime="openvino")
    with pytest.raises(ModelFileError, match="not a digit model"):
        DigitClassifier(ROOT / "models" / "pairs.tflite", runtime="openvino")


def test_the_reader_reads_the_sample_page_alike_on_both_runtimes():
    import cv2

    image = cv2.imread(str(SAMPLE))
    frame = Frame(index=0, image=image, source=str(SAMPLE), time=0.0, still=True)
    readings = [[(d.box, d.digit) for d in DigitReader(classifier=DigitClassifier(SHIPPED_EXPORT, runtime=runtime))
                 .read(frame).detections] for runtime in ("litert", "openvino")]
    assert len(readings[0]) >= 20 and readings[0] == readings[1]


SHIPPED_MODEL = ROOT / "models" / "digits.keras"
SHIPPED_INT8 = ROOT / "models" / "digits.int8.tflite"


def test_openvino_reads_the_keras_models_8_bit_activation_export_and_litert_the_other(mnist):
    vino = DigitClassifier(SHIPPED_MODEL, runtime="openvino")
    lite = DigitClassifier(SHIPPED_MODEL, runtime="litert")
    assert vino.runtime_path == SHIPPED_INT8 and lite.runtime_path == SHIPPED_EXPORT
    assert vino.with_threads(1).runtime_path == SHIPPED_INT8
    # A .tflite named directly is read as it is, on either runtime.
    assert DigitClassifier(SHIPPED_EXPORT, runtime="openvino").runtime_path == SHIPPED_EXPORT
    batch = mnist.x_test[:2000, ..., None]
    got, expected = vino.probabilities(batch), lite.probabilities(batch)
    assert np.mean(got.argmax(axis=1) == expected.argmax(axis=1)) >= 0.997
    assert np.mean(got[:, :10].argmax(axis=1) == mnist.y_test[:2000]) >= 0.99
    # The last layer and its softmax stay in float: confidences near 1 keep fine steps (a softmax in
    # 8 bits gives two distinct values above 0.99 on MNIST test).
    top = got.max(axis=1)
    assert len(np.unique(top[top > 0.99])) > 100


def _op_input_types(path: Path) -> dict[str, set[str]]:
    """Each operator of a .tflite file -> the dtypes of its first input tensor."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {detail["index"]: detail["dtype"].__name__ for detail in interpreter.get_tensor_details()}
    types: dict[str, set[str]] = {}
    for op in interpreter._get_ops_details():
        types.setdefault(op["op_name"], set()).add(tensors[op["inputs"][0]])
    return types


def test_the_int8_export_runs_convolutions_on_8_bit_activations_and_the_head_in_float(tmp_path, mnist):
    from digitrec.classify import export_int8_tflite, load_trainable_model

    model = load_trainable_model(SHIPPED_MODEL)
    with pytest.raises(ValueError, match="calibration crops"):
        export_int8_tflite(model, tmp_path / "none.int8.tflite", np.zeros((0, 28, 28, 1), np.float32))
    path = export_int8_tflite(model, tmp_path / "digits.int8.tflite", mnist.x_train[:300, ..., None])
    types = _op_input_types(path)
    assert types["CONV_2D"] == {"int8"}
    assert types["FULLY_CONNECTED"] == {"float32"} and types["SOFTMAX"] == {"float32"}
    # Calibrated on 300 digits, it still reads MNIST test as the Keras model does.
    expected = model(mnist.x_test[:500, ..., None], training=False).numpy()
    got = DigitClassifier(path, runtime="litert").probabilities(mnist.x_test[:500, ..., None])
    assert np.mean(got.argmax(axis=1) == expected.argmax(axis=1)) >= 0.99


@pytest.mark.parametrize("any_batch", [False, True], ids=["one-model-a-size", "one-model-any-size"])
def test_prepare_makes_every_batch_size_up_to_the_largest_asked(mnist, monkeypatch, any_batch):
    import digitrec.classify as classify_module

    monkeypatch.setattr(classify_module, "openvino_any_batch", lambda: any_batch)
    vino = DigitClassifier(SHIPPED_MODEL, runtime="openvino")
    vino.prepare(24)
    assert list(vino._openvino_requests) == ([None] if any_batch else [1, 2, 4, 8, 16, 24])
    batch = mnist.x_test[:20, ..., None]
    assert np.array_equal(vino.probabilities(batch), DigitClassifier(SHIPPED_MODEL, runtime="openvino").probabilities(batch))
    DigitClassifier(SHIPPED_MODEL, runtime="litert").prepare()  # nothing to make: LiteRT sizes its interpreters as it goes


def test_openvino_reads_alike_with_one_model_for_any_batch_size_or_one_per_size(mnist, monkeypatch):
    import digitrec.classify as classify_module

    sizes = (1, 7, 33, 300)  # 300: more than the largest batch, so read in two calls (256, and 44 padded to 48)
    read = {}
    for any_batch in (False, True):
        monkeypatch.setattr(classify_module, "openvino_any_batch", lambda any_batch=any_batch: any_batch)
        vino = DigitClassifier(SHIPPED_MODEL, runtime="openvino")
        read[any_batch] = [vino.probabilities(mnist.x_test[-size:, ..., None]) for size in sizes]
        assert list(vino._openvino_requests) == ([None] if any_batch else [1, 8, 40, 256, 48])
    for size, per_size, any_size in zip(sizes, read[False], read[True]):
        assert per_size.shape == any_size.shape == (size, 11)
        np.testing.assert_allclose(any_size, per_size, atol=1e-5)
