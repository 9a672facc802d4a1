"""Freed image memory goes back to the operating system.

glibc serves allocations under its mmap threshold from heaps it rarely gives back, and it raises
that threshold (up to 32 MB) each time a large mapped block is freed. Pillow holds a decoded image
in 16 MB blocks, so after a few large photos those blocks land in the heaps of the inference
threads' arenas, and the process kept ~7 GB resident ten minutes after six 40 Mpx PNGs (issue
12). A fixed threshold turns every allocation of a megabyte or more into its own mapping, unmapped
when freed: RSS falls back once a request is done. The extra mmap/munmap calls cost microseconds
beside the milliseconds of decoding a megabyte of pixels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("facegate.engine")

# mallopt's parameter number for M_MMAP_THRESHOLD (malloc.h); setting it also stops the dynamic
# adjustment.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def release_large_blocks_to_os(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold; False (and nothing changed) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) failed; freed image memory may stay resident")
    return done
