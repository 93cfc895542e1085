"""Process-wide settings that make runs fast, applied only when asked (`sim.configure()`).

Importing `sim` changes nothing in the process beyond where this package's own kernels are
cached (`numba_cache`). Programs that run the model (the command line, the app, batch workers,
calibration, benchmarks, the tests) call `configure()` once at start:

- glibc keeps freed large arrays in its heap (`allocator.keep_freed_memory`): the month's
  temporaries then reuse warm pages instead of faulting in fresh ones;
- numba's threading layer is the fork-safe one: GNU OpenMP, numba's default on Linux without
  TBB, kills any process forked after it has run. An explicit NUMBA_THREADING_LAYER is kept;
- the numba cache directories of old code versions are pruned.

No result depends on any of these.
"""

from __future__ import annotations

import numba

from sim.engine import numba_cache
from sim.engine.allocator import keep_freed_memory

_done = False


def configure() -> None:
    """Apply the settings above (once per process; later calls do nothing)."""
    global _done
    if _done:
        return
    keep_freed_memory()
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "forksafe"
    numba_cache.prune()
    _done = True
