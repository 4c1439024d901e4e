"""Classify a batch of 28x28 digits in one call on LiteRT or OpenVINO (or a compiled Keras function)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import platform
import threading
import warnings
import zipfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitrec.normalise import MNIST_SIZE

NOT_A_DIGIT_INDEX = 10
"""Column of the eleventh output, when the model has one."""

_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 10, *range(12, 65, 4), 72, 80, 88, 96, 112, 128, 160, 192, 256)
"""Batch sizes an interpreter is prepared for; a batch is padded up to the next one. Close steps,
because every padded row costs as much as a real crop (about 0.065 ms on one core of the AMD EPYC)."""

_INTERPRETERS_KEPT = 6
"""Interpreters (one per batch size) kept ready; a frame's batch size changes little from the last."""

_OPENVINO_BUCKETS = (1, 2, 4, *range(8, 65, 8), 96, 128, 192, 256)
"""Batch sizes OpenVINO's compiled models are made for on CPUs with AMX (elsewhere one model takes any size:
`openvino_any_batch`). Compiling one takes ~35 ms, so the steps are coarser than LiteRT's and every size made
is kept (a padded row costs ~16 us with AMX; ~0.5 ms on the AVX2-only EPYC of session 22)."""

PREPARED_BATCH = 128
"""`DigitClassifier.prepare` makes the models for batches up to this many crops: a frame of 16 digits and their
cuts can need 72 (the 640x480/16 bench video's 8th frame), one of 40 digits over 100."""

RUNTIMES = ("auto", "litert", "openvino")
"""How a .tflite model is run: LiteRT's XNNPACK, or OpenVINO; "auto" takes OpenVINO where it is installed and the
CPU is an x86-64 one, and LiteRT elsewhere (on ARM, where neither was measured). The environment variable
`DIGITREC_RUNTIME` sets it for every reader a process (and its workers) makes.

A .keras model's exports: LiteRT reads the .tflite (8-bit weights); OpenVINO reads the .int8.tflite where there
is one (8-bit activations too: `export_int8_tflite`), else the .tflite (in bfloat16 where the CPU has AMX tiles).
40 crops, OpenVINO on the .int8.tflite against LiteRT on the .tflite: on one thread 0.70 against 1.02 ms on an
Intel Xeon with AMX (session 19), 7.3 against 18.5 ms on an AMD EPYC with AVX2 alone (Zen 3, session 20; two
threads 4.0 against 9.0). Both read the 10 000 MNIST test digits at 99.61 % there. docs/history.md has the trials."""


EXPORT_RUNTIMES = ("litert", "openvino")
"""The runtimes of a .tflite export (a .keras model without one runs as "keras-compiled")."""


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bfloat16 on AMX tiles (read from /proc/cpuinfo; False where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in info)
    except OSError:
        return False


def cpu_is_x86_64() -> bool:
    """Whether this is an x86-64 CPU (Intel or AMD), where OpenVINO was measured faster than LiteRT."""
    return platform.machine().lower() in ("x86_64", "amd64")


def openvino_any_batch() -> bool:
    """Whether OpenVINO runs one model compiled for any batch size rather than one per size in
    `_OPENVINO_BUCKETS`, padded up: on CPUs without AMX tiles. On the AVX2-only AMD EPYC of session 22 it was as
    fast as the exact-size model at every size and faster than the padded buckets (33 crops: 20.2 against 24.2 ms
    on one thread), with the same probabilities to the bit, and it is compiled once (114 ms) instead of once a
    size; a size's first call costs ~2.5 ms more. With AMX the buckets were measured (session 19); the other
    is not yet."""
    return not cpu_has_amx()


def choose_runtime(runtime: str | None = None) -> str:
    """"litert" or "openvino" for `runtime` (None: `$DIGITREC_RUNTIME`, else "auto"; see `RUNTIMES`)."""
    runtime = runtime or os.environ.get("DIGITREC_RUNTIME") or "auto"
    if runtime not in RUNTIMES:
        raise RuntimeChoiceError(f"unknown runtime {runtime!r} (DIGITREC_RUNTIME or runtime=): set it to one of "
                                 f"{', '.join(RUNTIMES)}, or unset it.")
    installed = importlib.util.find_spec("openvino") is not None
    if runtime == "openvino" and not installed:
        raise RuntimeChoiceError("DIGITREC_RUNTIME=openvino, but OpenVINO is not installed: "
                                 "pip install -r requirements.txt, or set DIGITREC_RUNTIME=litert.")
    if runtime != "auto":
        return runtime
    return "openvino" if installed and cpu_is_x86_64() else "litert"


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not a digit model; the message names the fix."""


class RuntimeChoiceError(ModelFileError):
    """`DIGITREC_RUNTIME` (or `runtime=`) names no runtime, or one that is not installed; the message names
    the fix. A `ModelFileError`, so that every command reports it as it reports a model it cannot run."""


def tflite_path_for(model_path: str | os.PathLike) -> Path:
    """The LiteRT export that sits beside a .keras model."""
    return Path(model_path).with_suffix(".tflite")


TFLITE_IDENTIFIER = b"TFL3"
"""What a LiteRT (TFLite) flatbuffer holds at bytes 4-8."""


def read_tflite(path: Path, fix: str) -> bytes:
    """A LiteRT model file's bytes, refused (naming `fix`) when it is no such model: told before any runtime tries
    it, since OpenVINO would try every frontend it has on it and print their errors."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error.strerror}).") from None
    if content[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path}: not a readable LiteRT model (it lacks the {TFLITE_IDENTIFIER.decode()} "
                             f"mark). {fix}")
    return content


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def int8_path_for(model_path: str | os.PathLike) -> Path:
    """The export with 8-bit activations (`export_int8_tflite`) that sits beside a .keras model: OpenVINO's."""
    return Path(model_path).with_suffix(".int8.tflite")


def export_tflite(model, path: str | os.PathLike, quantize: bool = True) -> Path:
    """Convert a Keras model to a .tflite file with the same weights.

    With `quantize` (the default) the weights are stored as 8-bit integers and LiteRT quantises
    each batch's activations on the fly (post-training dynamic-range quantisation; inputs and
    outputs stay float32). On this project's CNN that classifies a batch 3.7 times faster than
    float32 and changed one MNIST test reading in 10 000: probabilities move by 4e-5 on average.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = Path(path)
    # The converter prints its whole traced signature to stdout; keep the user's console readable.
    with contextlib.redirect_stdout(io.StringIO()):
        flatbuffer = converter.convert()
    path.write_bytes(flatbuffer)
    return path


CALIBRATION_BATCH = 10
"""Crops per step of the activation-range measurement."""


FLOAT_HEAD_OPS = ("FULLY_CONNECTED", "SOFTMAX")
"""The layers `export_int8_tflite` leaves in floating point: the last one and its softmax."""


def export_int8_tflite(model, path: str | os.PathLike, calibration: np.ndarray) -> Path:
    """Convert a Keras model to a .tflite file whose convolutions run on 8-bit activations as well as weights.

    The activations' ranges are measured on `calibration`, (N, 28, 28, 1) float32 crops like those the reader
    sees (`training.calibration_images`). The last layer and its softmax stay in floating point (selective
    quantisation): a softmax computed in 8 bits gives probabilities in steps of 1/256, too coarse for the
    reader's choices between readings, which compare confidences near 1 (docs/history.md, session 17).
    On AMX CPUs OpenVINO runs the convolutions on its 8-bit tiles: 40 crops on one thread in 0.70 ms against
    1.02 in bfloat16 (session 19); on AVX2 alone (AMD EPYC, session 20) 7.3 ms against LiteRT's 18.5 on the
    .tflite. LiteRT runs this file slower than `export_tflite`'s, so it reads that one.
    """
    import tensorflow as tf

    calibration = np.asarray(calibration, np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(f"calibration crops must be a non-empty (N, 28, 28, 1) array, not {calibration.shape}")

    def samples():
        for start in range(0, len(calibration), CALIBRATION_BATCH):
            yield [calibration[start : start + CALIBRATION_BATCH]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    path = Path(path)
    # TensorFlow's documented way to keep chosen layers in float ("selective quantisation"); the debugger
    # runs the crops through TensorFlow's own deprecated interpreter, which warns of it.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")  # float inputs
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=samples,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_HEAD_OPS)))
        flatbuffer = debugger.get_nondebug_quantized_model()
    path.write_bytes(flatbuffer)
    return path


def check_keras_archive(path: str | os.PathLike) -> None:
    """Refuse a .keras file that is not a zip archive, naming the fix (Keras itself would say
    "File not found" of a file that is there but corrupt or cut short)."""
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras model (a .keras file is a zip archive; this one is "
                             "not, or is cut short). Train one with train.py, or pass --model PATH to another.")


def check_trainable_model_path(path: str | os.PathLike, task: str = "fine-tuning", flag: str = "--model") -> Path:
    """The .keras model a training step starts from, refused with the fix when it is missing, not a
    .keras archive, or a .tflite export (which cannot be trained). `task` and `flag` name them."""
    path = Path(path)
    if path.suffix != ".keras":
        why = "a .tflite export cannot be trained" if path.suffix == ".tflite" else "a model is a .keras file"
        raise ModelFileError(f"{path}: {task} needs the .keras model ({why}). Pass {flag} models/digits.keras.")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file. Pass {flag} PATH to a .keras file.")
    check_keras_archive(path)
    return path


def load_trainable_model(path: str | os.PathLike, task: str = "fine-tuning", flag: str = "--model"):
    """Load the .keras model a training step starts from (see `check_trainable_model_path`)."""
    import keras

    path = check_trainable_model_path(path, task, flag)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        raise ModelFileError(f"{path}: not a readable Keras model ({error}). Train one with train.py.") from None


def check_digit_model(path: str | os.PathLike, model) -> int:
    """A loaded Keras model's outputs (10 or 11), refused with the fix when it is not a digit model."""
    if isinstance(model.output_shape, dict):  # the pair network's two heads
        raise ModelFileError(f"{path}: not a digit model (it has the outputs {sorted(model.output_shape)}). "
                             "Pass models/digits.keras.")
    return _check_shapes(Path(path), model.input_shape, model.output_shape)


def _check_shapes(path: Path, input_shape, output_shape) -> int:
    if tuple(input_shape[1:]) != (MNIST_SIZE, MNIST_SIZE, 1):
        raise ModelFileError(
            f"{path}: takes input of shape {tuple(None if side is None else int(side) for side in input_shape)}, "
            "not (N, 28, 28, 1): it is not a "
            "digit model. Use models/digits.keras or train one with train.py."
        )
    if output_shape[-1] not in (10, 11):
        raise ModelFileError(
            f"{path}: gives {output_shape[-1]} outputs, not 10 or 11: it is not a digit model. "
            "Use models/digits.keras or train one with train.py."
        )
    return int(output_shape[-1])


PIXELS_AT_MOST = 1.5
"""A batch's pixels are 0..1; past this, they were given as 0..255 (read so, the model is wrong on a few in a
hundred without a word). Loose, so that no resampling's overshoot is refused."""


class DigitClassifier:
    """Holds a digit model and runs whole batches through it in a single call.

    A .tflite file runs on LiteRT, or on OpenVINO (`runtime`, see `RUNTIMES`). A .keras file runs on
    the .tflite export beside it when there is one (on OpenVINO, the .int8.tflite export where there is
    one: `export_int8_tflite`), else through a compiled TensorFlow function: never `model.predict`, which
    costs about 100 ms a call whatever the batch.
    """

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None, runtime: str | None = None):
        path = Path(model_path)
        if not path.exists():
            raise ModelFileError(f"{path}: no such model file. Pass --model PATH to a .keras or .tflite file.")
        if path.suffix not in (".keras", ".tflite"):
            raise ModelFileError(f"{path}: a model is a .keras or .tflite file. Pass --model PATH to one.")
        self.path = path
        self.num_threads = num_threads or min(2, os.cpu_count() or 1)
        self._interpreters: OrderedDict[int, tuple] = OrderedDict()
        self._siblings: dict[int, DigitClassifier] = {}
        self._keras_call = None
        self._openvino_requests: dict[int | None, tuple] = {}
        """Compiled OpenVINO models by batch size; None: the one for any size..."""
        self._openvino_any_batch = False
        """...which OpenVINO runs, decided once when the model is loaded (`openvino_any_batch`)."""
        self._calling = threading.Lock()
        """Held while the runtime runs a batch: its input and output buffers are the classifier's own, so two
        threads calling at once would overwrite each other's (OpenVINO: "Infer Request is busy")."""
        runtime_path = tflite_path_for(path) if path.suffix == ".keras" and tflite_path_for(path).exists() else path
        if runtime_path.suffix == ".tflite":
            if choose_runtime(runtime) == "openvino":
                # OpenVINO reads the export with 8-bit activations where there is one (a .keras model's).
                if path.suffix == ".keras" and int8_path_for(path).exists():
                    runtime_path = int8_path_for(path)
                self._load_openvino(runtime_path)
            else:
                self._load_tflite(runtime_path)
        else:
            self._load_keras(runtime_path)
        self.runtime_path = runtime_path

    def _load_tflite(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._model_content = read_tflite(path, "Re-export it with train.py.")
        try:
            interpreter = Interpreter(model_content=self._model_content, num_threads=self.num_threads)
        except Exception as error:
            raise ModelFileError(
                f"{path}: not a readable LiteRT model ({_one_line(error)}). Re-export it with train.py."
            ) from None
        details_in = interpreter.get_input_details()[0]
        details_out = interpreter.get_output_details()[0]
        self.num_outputs = _check_shapes(path, details_in["shape"], details_out["shape"])
        self.runtime = "litert"

    def _load_openvino(self, path: Path) -> None:
        import openvino as ov

        read_tflite(path, "Re-export it with train.py.")
        self._openvino = ov.Core()
        try:
            self._openvino_model = self._openvino.read_model(str(path))
        except Exception as error:
            raise ModelFileError(
                f"{path}: not a readable LiteRT model ({_one_line(error)}). Re-export it with train.py."
            ) from None
        input_shape = self._openvino_model.input(0).get_partial_shape()
        output_shape = self._openvino_model.output(0).get_partial_shape()
        self.num_outputs = _check_shapes(path, [None, *(side.get_length() for side in input_shape[1:])],
                                         [output_shape[-1].get_length()])
        self.runtime = "openvino"
        self._openvino_any_batch = openvino_any_batch()

    def _load_keras(self, path: Path) -> None:
        check_keras_archive(path)
        import keras
        import tensorflow as tf

        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:
            raise ModelFileError(f"{path}: not a readable Keras model ({error}). Train one with train.py.") from None
        self.num_outputs = _check_shapes(path, model.input_shape, model.output_shape)
        self._keras_call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self.runtime = "keras-compiled"

    def with_threads(self, num_threads: int) -> DigitClassifier:
        """The same model on `num_threads` threads (itself when it has that many, or runs on Keras)."""
        if self.runtime == "keras-compiled" or num_threads == self.num_threads:
            return self
        if num_threads not in self._siblings:
            self._siblings[num_threads] = DigitClassifier(self.runtime_path, num_threads=num_threads,
                                                          runtime=self.runtime)
        return self._siblings[num_threads]

    def prepare(self, largest: int = PREPARED_BATCH) -> None:
        """Make OpenVINO's compiled models for every batch size up to `largest` now, not on the frame that first
        has that many crops (each takes ~32 ms to compile and ~2.7 MB: a stall of a frame or two); on a CPU without
        AMX, the one model for any size (`openvino_any_batch`) and its first call. LiteRT needs nothing."""
        if self.runtime == "openvino":
            if self._openvino_any_batch:
                # One model for every size: compile it, and pay its first call's set-up now.
                self.probabilities(np.zeros((1, MNIST_SIZE, MNIST_SIZE, 1), np.float32))
                return
            for bucket in _OPENVINO_BUCKETS:
                if bucket > largest:
                    break
                self._openvino_request_for(bucket)

    def _openvino_request_for(self, bucket: int | None) -> tuple:
        """(infer request, its input array) for batches of `bucket`, or for any size when None (its input array
        then unused): compiled once (what is not in 8 bits, in bfloat16 where the CPU has it) and kept."""
        prepared = self._openvino_requests.get(bucket)
        if prepared is None:
            model = self._openvino_model.clone()
            model.reshape([-1 if bucket is None else bucket, MNIST_SIZE, MNIST_SIZE, 1])
            compiled = self._openvino.compile_model(model, "CPU", {
                "INFERENCE_NUM_THREADS": self.num_threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "bf16", "ENABLE_CPU_PINNING": False})
            request = compiled.create_infer_request()
            prepared = (request, request.get_input_tensor(0).data)
            self._openvino_requests[bucket] = prepared
        return prepared

    def _interpreter_for(self, bucket: int) -> tuple:
        """(interpreter, its input array, output index) for batches of `bucket`, made once and reused."""
        prepared = self._interpreters.get(bucket)
        if prepared is not None:
            self._interpreters.move_to_end(bucket)
            return prepared
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self._model_content, num_threads=self.num_threads)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [bucket, MNIST_SIZE, MNIST_SIZE, 1])
        interpreter.allocate_tensors()
        prepared = (interpreter, interpreter.tensor(index), interpreter.get_output_details()[0]["index"])
        self._interpreters[bucket] = prepared
        if len(self._interpreters) > _INTERPRETERS_KEPT:
            self._interpreters.popitem(last=False)  # the least recently used size
        return prepared

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) float32 in [0, 1] -> (N, 10 or 11) probabilities, in one call per 256."""
        batch = np.asarray(batch, np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (MNIST_SIZE, MNIST_SIZE, 1):
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {batch.shape}")
        count = len(batch)
        if count == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        largest = batch.max()
        if not largest <= PIXELS_AT_MOST:  # NaN fails this too
            raise ValueError(f"the batch's pixels reach {largest:g}; the model reads pixels scaled to 0..1 "
                             "(divide 8-bit crops by 255, or use digitrec.normalise)")
        with self._calling:
            return self._run(batch)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        count = len(batch)
        if self._keras_call is not None:
            return self._keras_call(batch).numpy()
        buckets = _OPENVINO_BUCKETS if self.runtime == "openvino" else _BATCH_BUCKETS
        largest = buckets[-1]
        if count > largest:
            return np.concatenate([self._run(batch[i : i + largest]) for i in range(0, count, largest)])
        if self._openvino_any_batch:
            request = self._openvino_request_for(None)[0]
            request.infer({0: batch})
            return request.get_output_tensor(0).data.copy()
        bucket = next(size for size in buckets if size >= count)
        # Write straight into the runtime's input buffer; rows past `count` keep old data, which is harmless
        # as their outputs are dropped.
        if self.runtime == "openvino":
            request, input_array = self._openvino_request_for(bucket)
            input_array[:count] = batch
            request.infer()
            return request.get_output_tensor(0).data[:count].copy()
        interpreter, input_view, output_index = self._interpreter_for(bucket)
        input_view()[:count] = batch
        interpreter.invoke()
        return interpreter.get_tensor(output_index)[:count].copy()
