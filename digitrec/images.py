"""The image arrays a `Frame` holds: what callers hand over, made into what the reader reads.

The reader reads (h, w, 3) uint8 BGR, as OpenCV decodes, or (h, w) uint8 grey. A developer calling the
library may hold other arrays: `cv2.imread(..., IMREAD_UNCHANGED)` gives BGRA or 16-bit, a scientific
stack gives floats in 0..1, an MNIST-shaped array has one channel. Each of those is turned into one the
reader reads, so that no numba or OpenCV pass meets a layout it was not written for (a 16-bit grey image
indexed an 8-bit table out of bounds); anything else is refused naming what was given and the fix.
"""

from __future__ import annotations

import cv2
import numpy as np


def on_plain_ground(image: np.ndarray) -> np.ndarray:
    """An 8-bit BGRA image laid on white, or on black where its opaque pixels are mostly light."""
    colour, alpha = image[..., :3], image[..., 3:].astype(np.float32) / 255.0
    opaque = alpha[..., 0] > 0.5
    light = opaque.any() and float(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)[opaque].mean()) >= 128
    ground = 0.0 if light else 255.0
    return np.rint(colour * alpha + ground * (1.0 - alpha)).astype(np.uint8)


def frame_image(image) -> np.ndarray:
    """`image` as the reader reads it: (h, w, 3) uint8 BGR or (h, w) uint8 grey, the array itself when it is one.

    Also taken: (h, w, 1) grey; BGRA, laid on a plain ground as a transparent photo is; 16-bit (its top 8 bits,
    unless it holds only 0..255); floats in 0..1 (scaled) or 0..255; booleans (True as white). Raises ValueError
    for None, an empty image, or any other shape, type or range, saying what was given.
    """
    if image is None:
        raise ValueError("the frame's image is None (cv2.imread gives None for a file it cannot read: check the "
                         "path, or open it with digitrec.sources.open_source for a clear error)")
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the frame's image is not an array of pixels ({error})") from None
    if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        if image.size == 0:
            raise ValueError(f"the frame's image is empty ({'x'.join(map(str, image.shape))})")
        return image  # what every source gives: nothing to do
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"the frame's image has shape {image.shape}; the reader reads (h, w, 3) BGR, (h, w, 4) BGRA "
                         "or (h, w) grey")
    if image.size == 0:
        raise ValueError(f"the frame's image is empty ({'x'.join(map(str, image.shape))})")
    image = _as_uint8(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = on_plain_ground(image)
    return image


def _as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16 and image.max() > 255:
        return (image >> 8).astype(np.uint8)  # a 16-bit image: its top byte (one holding 0..255 is kept as it is)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError("the frame's image holds NaN or infinite values")
        low, high = float(image.min()), float(image.max())
        if low >= 0.0 and high <= 1.0:
            return np.rint(image * 255.0).astype(np.uint8)
        if low >= 0.0 and high <= 255.0:
            return np.rint(image).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise ValueError(f"the frame's image holds {image.dtype} values, not pixels")
    raise ValueError(f"the frame's image is {image.dtype} with values {image.min()}..{image.max()}; the reader reads "
                     "8-bit images, or floats in 0..1 or 0..255: scale it to 0..255 and convert it "
                     "(image.astype(numpy.uint8))")
