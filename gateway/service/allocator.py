"""The C allocator's arenas: fewer of them, so that memory a thread frees serves the others.

glibc gives each thread that allocates concurrently an arena of its own, up to eight per
core, and memory freed into one arena is not reused by another. A gateway process has a few
threads (the request loop, the audit senders' loop, the journal's group commit, worker
threads for file I/O) whose large allocations — body buffers, rendered audit batches — then
stay resident in several arenas at once. Measured with ``python -m bench.xcai`` (2,000
instances through two gateways): the RSS growth of each gateway during the first answer was
+14 to +17 MB with glibc's default and +10 to +11 MB with one arena (``MALLOC_ARENA_MAX=1``).
Small allocations do not go through these arenas at all (Python's own allocator serves them),
so a single arena costs no measurable throughput.

:func:`limit_arenas` sets ``M_ARENA_MAX`` through ``mallopt(3)`` before the process starts
its threads, unless ``MALLOC_ARENA_MAX`` is set in the environment (the operator's choice
wins). Elsewhere than on glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ARENAS", "limit_arenas"]

ARENAS = 1
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most ``arenas`` malloc arenas; True when it took the setting."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
