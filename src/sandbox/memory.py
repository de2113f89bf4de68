"""Handing memory the sandbox no longer uses back to the operating system.

Seeding 100,000 deals builds a story of about 60 MB that is garbage once both CRMs hold their records. Python
frees it, but glibc's allocator keeps freed heap pages mapped, so the process's resident size (what a
benchmark or a container limit sees) stays as high as if the story were alive. ``malloc_trim(0)`` returns
those pages; elsewhere (macOS, musl) there is nothing to call and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked = False


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    global _trim, _looked
    if not _looked:
        _looked = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
        except (OSError, AttributeError):
            _trim = None
    return _trim


def release_free_memory() -> bool:
    """Collect garbage, then return free heap pages to the OS; whether the C library could be asked."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
