"""Keep the memory of freed frame-sized arrays for the next frame instead of handing it back to the OS.

Every frame allocates the same few dozen arrays of a frame's size (channels, masks, the paper's light,
labels). glibc serves blocks this large with fresh mmap calls, or trims them off its heap when freed,
so each frame pays again to fault in and zero every page: on a 640x480 frame that was half of the
thresholding's time. Raising the two thresholds keeps those blocks in the heap, reused frame after
frame; the peak memory stays what one frame needs (the benchmark's memory probe shows it flat).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Blocks smaller than this come from the heap, where freed ones are reused (a 4K frame is 25 MB)."""

TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024
"""Free memory at the heap's top is kept up to this much instead of being returned at once."""

_applied: bool | None = None


def reuse_large_allocations() -> bool:
    """Tune glibc's malloc for this process (once); returns whether it applied (False off glibc)."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
                    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
            except (OSError, AttributeError):  # musl and other C libraries have no mallopt
                _applied = False
    return _applied
