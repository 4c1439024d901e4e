"""Cut a trained digit CNN down to fewer filters, keeping what it has learned: a faster classifier to fine-tune.

A block that loses filters keeps those that feed the most into the next convolution's output on sample
digits; the next convolution's weights are then refitted by least squares so that, on those digits, its
output stays as close as it can to the original network's. The batch-normalisation statistics that follow
stay valid, and the pruned network reads nearly as the original did before any training (the shipped
model cut to 16-32-32-64-128: MNIST test 99.62 -> 99.36 %), so a short fine-tune with the original as
teacher finishes the job (`training.train_model` with `TrainingConfig.prune_from`).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from digitrec.classify import ModelFileError, load_trainable_model
from digitrec.model import build_digit_cnn

PRUNE_SAMPLE = 4000
"""Training digits on which filters are chosen and the next convolutions refitted."""

RIDGE = 1e-3
"""Least-squares refits are damped by this fraction of the inputs' mean energy (no ill-conditioned weights)."""

_BATCH = 500


def load_model_to_prune(path: str | os.PathLike) -> keras.Model:
    """The trained .keras digit CNN to cut down; refused with the fix unless it is one."""
    model = load_trainable_model(path, "pruning", "--prune-from")
    try:
        model_blocks(model)
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    return model


def model_blocks(model: keras.Model) -> tuple[tuple[int, int], ...]:
    """(filters, stride) of each convolution block of a network built by `model.build_digit_cnn`."""
    blocks = []
    while True:
        try:
            conv = model.get_layer(f"conv{len(blocks)}")
            model.get_layer(f"bn{len(blocks)}")
        except ValueError:
            break
        blocks.append((int(conv.filters), int(conv.strides[0])))
    if not blocks:
        raise ValueError("not a digit CNN of this project (no conv0/bn0 layers); train one with train.py")
    return tuple(blocks)


def check_blocks(original: tuple[tuple[int, int], ...], blocks: tuple[tuple[int, int], ...]) -> None:
    """Refuse, with the fix, `blocks` that are not a cut-down `original` (ValueError)."""
    if len(blocks) != len(original) or any(s != s0 for (_, s), (_, s0) in zip(blocks, original)):
        raise ValueError(f"the pruned network needs the model's {len(original)} blocks with its strides "
                         f"{[s for _, s in original]}; got {list(blocks)}")
    if any(f > f0 or f < 1 for (f, _), (f0, _) in zip(blocks, original)):
        raise ValueError(f"--blocks must keep 1 to the model's own number of filters in each block "
                         f"({','.join(str(f) for f, _ in original)}); got {','.join(str(f) for f, _ in blocks)}")
    if blocks[-1][0] != original[-1][0]:
        raise ValueError(f"the last block feeds the classifier's head and keeps its {original[-1][0]} filters; "
                         "prune the earlier blocks")


def _block_output(model: keras.Model, images: np.ndarray, index: int) -> np.ndarray:
    """Block `index`'s output (after its ReLU) for `images`, in batches."""
    block = keras.Model(model.input, model.get_layer(f"relu{index}").output)
    return np.concatenate([block(images[i : i + _BATCH], training=False).numpy()
                           for i in range(0, len(images), _BATCH)])


def _patches(activations: np.ndarray, stride: int) -> np.ndarray:
    """(N * out_h * out_w, 9 * channels) 3x3 'same' patches, in the order of a Conv2D kernel's reshape."""
    import tensorflow as tf

    patches = tf.image.extract_patches(activations, [1, 3, 3, 1], [1, stride, stride, 1], [1, 1, 1, 1], "SAME")
    return patches.numpy().reshape(-1, patches.shape[-1]).astype(np.float64)


def _convolve(activations: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """Conv2D without bias, as the network runs it ('same' padding)."""
    import tensorflow as tf

    return tf.nn.conv2d(activations, kernel, stride, "SAME").numpy()


def prune_digit_cnn(model: keras.Model, blocks: tuple[tuple[int, int], ...], images: np.ndarray
                    ) -> tuple[keras.Model, dict[str, dict]]:
    """A new network with `blocks`' filter counts, its weights taken from `model` (see the module's docstring).

    Args:
        model: a trained network of `model.build_digit_cnn`'s shape.
        blocks: (filters, stride) per block, each at most the model's own, the strides and last block unchanged.
        images: (N, 28, 28, 1) float32 digits the filters are chosen on (`PRUNE_SAMPLE` training digits).

    Returns:
        The pruned network, and for each block cut: the filters kept, and the relative error of the next
        convolution's output on `images` with the kept filters as they were and after the refit.
    """
    original = model_blocks(model)
    check_blocks(original, blocks)
    pruned = build_digit_cnn(model.output_shape[-1], blocks)
    weights = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    report: dict[str, dict] = {}
    for index, ((kept_filters, _), (filters, _)) in enumerate(zip(blocks, original)):
        if kept_filters == filters:
            continue
        following = f"conv{index + 1}"
        stride = original[index + 1][1]
        full = _block_output(model, images, index)
        kernel = weights[following][0]  # the original's: its inputs are cut only now
        energy = np.array([np.mean(_convolve(full[..., c : c + 1], kernel[:, :, c : c + 1], stride) ** 2)
                           for c in range(filters)])
        keep = np.sort(np.argsort(energy)[::-1][:kept_filters])
        weights[f"conv{index}"][0] = weights[f"conv{index}"][0][..., keep]
        weights[f"bn{index}"] = [w[keep] for w in weights[f"bn{index}"]]
        for layer_index in range(index + 1):
            for name in (f"conv{layer_index}", f"bn{layer_index}"):
                pruned.get_layer(name).set_weights(weights[name])
        # Refit the next convolution: from the pruned network's own block output (earlier cuts included)
        # to the original network's output there.
        target = _convolve(full, kernel, stride).reshape(-1, kernel.shape[-1]).astype(np.float64)
        inputs = _patches(_block_output(pruned, images, index), stride)
        gram = inputs.T @ inputs
        gram += RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
        refitted = np.linalg.solve(gram, inputs.T @ target)
        as_cut = inputs @ kernel[:, :, keep, :].reshape(-1, kernel.shape[-1])
        energy_target = float(np.mean(target ** 2))
        report[f"conv{index}"] = {
            "kept_filters": keep.tolist(),
            f"{following}_error_as_cut": float(np.mean((as_cut - target) ** 2)) / energy_target,
            f"{following}_error_refitted": float(np.mean((inputs @ refitted - target) ** 2)) / energy_target,
        }
        weights[following][0] = refitted.reshape(3, 3, kept_filters, -1).astype(np.float32)
    for layer in pruned.layers:
        if layer.get_weights():
            layer.set_weights(weights[layer.name])
    return pruned, report
