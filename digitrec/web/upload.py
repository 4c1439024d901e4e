"""Turn untrusted uploaded bytes into a BGR image, in memory, within size and pixel limits."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from digitrec.sources import HEIF_MESSAGE, decode_photo, image_kind

MAX_UPLOAD_BYTES = 20_000_000
"""Largest accepted upload (a 48-megapixel phone JPEG is about 15 MB)."""

MAX_IMAGE_PIXELS = 50_000_000
"""Largest accepted width x height; a small PNG can hold a huge image, so this is checked on the header."""

FORM_FIELD = "image"
"""Name of the file field in a multipart upload."""

IMAGE_KINDS = "JPEG, PNG, BMP, TIFF, WebP, GIF or AVIF"


class UploadError(ValueError):
    """An upload the server refuses, with the HTTP status to answer and a message that names the fix."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadLimits:
    """What the server accepts from a client."""

    max_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"upload limits must be positive, not {self.max_bytes} bytes and {self.max_pixels} pixels")


DEFAULT_LIMITS = UploadLimits()


def too_large(size: int, limits: UploadLimits) -> UploadError:
    """The 413 answer for an upload of `size` bytes (or more) over the cap."""
    return UploadError(
        413,
        f"the upload is {size / 1e6:.1f} MB or more; the limit is {limits.max_bytes / 1e6:.1f} MB. "
        "Send a smaller image (shrink it or save it as JPEG).",
    )


def check_content_type(content_type: str | None) -> str:
    """The media type of a request body, refusing anything that cannot hold an image (415)."""
    media_type = (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
    if media_type.startswith("image/") or media_type in ("application/octet-stream", "multipart/form-data"):
        return media_type
    raise UploadError(
        415,
        f"a body of type '{media_type}' is not an image; send the image's bytes with its image/* type, "
        f"or a multipart form with the file in the '{FORM_FIELD}' field",
    )


def image_from_multipart(body: bytes, content_type: str, limits: UploadLimits) -> tuple[bytes, str | None]:
    """The bytes and file name of the form's `image` file (or its only file), parsed in memory.

    Nothing is written to disk: files up to the upload cap stay in memory by configuration.
    """
    from python_multipart.multipart import FormParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UploadError(400, "the multipart body has no boundary in its Content-Type header")
    files = []
    try:  # a boundary over 256 characters is refused by the parser's constructor
        parser = FormParser(
            "multipart/form-data", on_field=None, on_file=files.append, boundary=boundary,
            config={"MAX_MEMORY_FILE_SIZE": limits.max_bytes + 1, "MAX_BODY_SIZE": limits.max_bytes},
        )  # fmt: skip
        parser.write(body)
        parser.finalize()
    except Exception as error:  # python-multipart raises several unrelated types for malformed bodies
        raise UploadError(400, f"the multipart body could not be parsed ({error})") from None
    named = [file for file in files if (file.field_name or b"") == FORM_FIELD.encode()]
    chosen = named or (files if len(files) == 1 else [])
    if not chosen:
        raise UploadError(400, f"the form holds no file in the '{FORM_FIELD}' field")
    file = chosen[0]
    file.file_object.seek(0)
    name = file.file_name.decode("utf-8", "replace") if file.file_name else None
    return file.file_object.read(), name


def decode_image(data: bytes, limits: UploadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """(h, w, 3) uint8 BGR from encoded image bytes, refusing empty, oversized, huge or undecodable input."""
    if not data:
        raise UploadError(400, f"the upload is empty; send the bytes of a {IMAGE_KINDS} image")
    if len(data) > limits.max_bytes:
        raise too_large(len(data), limits)
    width, height = _header_size(data, limits)
    if width * height > limits.max_pixels:
        raise UploadError(
            400,
            f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is "
            f"{limits.max_pixels / 1e6:.0f} megapixels. Scale it down before sending it.",
        )
    image = decode_photo(np.frombuffer(data, np.uint8))  # a transparent drawing laid on a plain ground
    if image is None or image.size == 0:
        raise UploadError(400, f"the upload could not be decoded as an image; send a {IMAGE_KINDS} file")
    return image


def _header_size(data: bytes, limits: UploadLimits) -> tuple[int, int]:
    """Width and height from the image's header alone, so a decompression bomb is refused before decoding."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow warns, then raises, on very large images; the pixel cap above gives the clearer answer.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as header:
                return header.size
        except Image.DecompressionBombError:
            raise UploadError(
                400, f"the image has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; the limit is "
                f"{limits.max_pixels / 1e6:.0f} megapixels. Scale it down before sending it.",
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            if image_kind(data) == "heif":
                raise UploadError(400, f"the upload is {HEIF_MESSAGE}") from None
            raise UploadError(
                400, f"the upload is not an image (its header is not one of {IMAGE_KINDS}); send an image file"
            ) from None
