"""The digit CNN: Conv-BN-ReLU blocks, 28x28x1 in, 11 probabilities out (index 10 = not a digit)."""

from __future__ import annotations

import keras
from keras import layers

from digitrec.augment import NOT_A_DIGIT
from digitrec.normalise import MNIST_SIZE

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
