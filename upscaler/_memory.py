"""The allocator settings that keep a streamed image's memory flat, and fast.

glibc's malloc serves a large block from its heap once a block of that size has been freed
(it raises its mmap threshold up to 32 MB as blocks come and go), and a heap rarely shrinks:
band after band, a streamed image's peak grew to 1.4 times what the bands need (6000x4000 JPEG
at x3: a peak of 343,272 kB against 245,492 kB with a threshold of 1 MB). A fixed threshold of
16 MB maps larger blocks (whole images decoded by Pillow, GIF frames) on their own, their pages
returned when freed, while the bands (BAND_BYTES) and the tiles' float buffers stay on the
heap and are reused while hot: at 1 MB every tile's buffers were fresh pages, and the work
around the network ran 3 to 8 times slower (the 216 MP run: 41.3 s at 1 MB, 19.0 s at 16 MB).
Setting the mmap threshold by hand also stops glibc from raising its trim threshold (128 kB),
so the trim threshold is fixed too (TRIM_THRESHOLD), and the threads share two heaps
(ARENA_MAX). Set once per process, before the first image (`ensure_flat_heap`), for the
threads, processes and Dask workers that run jobs alike; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

__all__ = ["MMAP_THRESHOLD", "ensure_flat_heap", "give_back"]

#: Blocks at least this large are mapped on their own and unmapped when freed.
MMAP_THRESHOLD = 16 << 20
#: The heap's free top is kept up to this much (glibc's default once the mmap threshold is set
#: by hand is 128 kB: every image's buffers were then fresh pages, six times the page faults
#: and a third more time on a folder of small photos, measured); `give_back` trims it after a
#: large image.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: Heaps (glibc's arenas) that threads share: each thread that allocates gets a heap of its own
#: up to 8 per core, and a block freed in one is not reused by another (an image's bands are
#: made on one thread and freed on another): two kept the 216 MP JPEG at 203,080 kB against
#: 221,296 and two --scale 6 photos at 224,420 kB against 243,320, no slower (measured).
ARENA_MAX = 2
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt's (malloc.h)


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    # The C library the interpreter runs on, through the process's own symbols (dlopen of
    # NULL): `ctypes.util.find_library("c")` ran `ldconfig -p` in a subprocess every run.
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def give_back() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim): after work that
    leaves many small blocks freed, such as Pillow's median cut of a large GIF frame."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@cache
def ensure_flat_heap() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD, its trim threshold at TRIM_THRESHOLD
    and its number of heaps at ARENA_MAX; True where they were set."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):  # not glibc (musl has no mallopt)
        return False
    trimmed = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    shared = libc.mallopt(_M_ARENA_MAX, ARENA_MAX)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and trimmed and shared)
