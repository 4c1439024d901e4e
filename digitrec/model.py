"""The digit CNN: Conv-BN-ReLU blocks, 28x28x1 in, 11 probabilities out (index 10 = not a digit);
and the pair network, which reads a blob of two touching digits whole (28x56 in, two heads out)."""

from __future__ import annotations

import keras
from keras import layers

from digitrec.augment import NOT_A_DIGIT
from digitrec.normalise import MNIST_SIZE, PAIR_FORMAT

NUM_CLASSES = NOT_A_DIGIT + 1
"""Ten digits and one class for marks that are not digits."""

BLOCKS = ((32, 1), (32, 2), (64, 1), (64, 2), (128, 1))
"""(filters, stride) of each 3x3 Conv-BN-ReLU block: 28x28 -> 14x14 -> 7x7."""

DROPOUT = 0.3

BATCH_NORM_MOMENTUM = 0.9
"""Faster than Keras's 0.99, so the running statistics settle within short and fine-tuning runs."""


def build_digit_cnn(
    num_classes: int = NUM_CLASSES, blocks: tuple[tuple[int, int], ...] = BLOCKS
) -> keras.Model:
    """A small convolutional network (about 210 k parameters) whose head sees the 7x7 feature map
    whole: where a loop or a stroke sits (a 6 against a 9, an open or a closed 4) decides the digit,
    and global average pooling would throw that away. `blocks` gives (filters, stride) per block."""
    inputs = keras.Input((MNIST_SIZE, MNIST_SIZE, 1), name="digit")
    x = inputs
    for index, (filters, stride) in enumerate(blocks):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"bn{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digit_cnn")


PAIR_BLOCKS = ((32, False), (32, True), (64, False), (64, True), (128, True))
"""(filters, followed by 2x2 max-pooling) of each 3x3 Conv-BN-ReLU block of the pair network: 28x56 -> 3x7."""

PHOTO_PAIR_BLOCKS = ((32, False), (32, True), (64, False), (64, True), (128, False), (128, True))
"""The photo pair network's blocks (`reader.DEFAULT_PHOTO_PAIR_MODEL`): one more 128-filter block at 7x14 than
`PAIR_BLOCKS` (about 0.98 M parameters). Trained on the same crops it reads 97.7 % of its training pairs against
96.6 %, and 95.8 % of the held-out blobs in `pairs_photo_metrics.json` against 94.4 %; in still photos it reads more
touching pairs right, but in tracked videos it gave more false detections, so video frames keep `PAIR_BLOCKS`
(docs/history.md, sessions 29-30)."""

PAIR_HIDDEN = 256


def build_pair_cnn(blocks: tuple[tuple[int, bool], ...] = PAIR_BLOCKS) -> keras.Model:
    """The pair network: a 28x56 blob (`normalise.PAIR_FORMAT`) in, two heads out: `first`, the left
    digit or "not a pair" (11, index 10), and `second`, the right digit (10). The head sees the whole
    feature map, so each digit is read where it sits (about 0.8 M parameters with `PAIR_BLOCKS`)."""
    inputs = keras.Input((PAIR_FORMAT.height, PAIR_FORMAT.width, 1), name="pair")
    x = inputs
    for index, (filters, pool) in enumerate(blocks):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"bn{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
        if pool:
            x = layers.MaxPooling2D(name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    x = layers.Dense(PAIR_HIDDEN, activation="relu", name="hidden")(x)
    x = layers.Dropout(DROPOUT, name="hidden_dropout")(x)
    first = layers.Dense(NUM_CLASSES, activation="softmax", name="first")(x)
    second = layers.Dense(NUM_CLASSES - 1, activation="softmax", name="second")(x)
    return keras.Model(inputs, {"first": first, "second": second}, name="pair_cnn")
