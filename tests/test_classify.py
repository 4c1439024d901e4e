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
    monkeypatch.setattr(classify, "cpu_has_amx", lambda: True)
    assert choose_runtime() == "openvino"  # installed by requirements.txt
    monkeypatch.setattr(classify, "cpu_has_amx", lambda: False)
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
