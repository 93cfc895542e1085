"""Numba's on-disk cache for this package's kernels, one directory per version of its source.

Numba checks a cached kernel only against the file that defines it, but the kernels here inline
row functions from other modules (`rng.keyed_uniform` into every kernel, `families` into the
choice passes, ...). After an edit to such a module numba would silently load kernels compiled
from the old code. So the functions of this package are cached in a directory keyed on a digest
of every module of the package; the cost is one recompilation (~1 minute) after any change.

`register()` adds a cache locator that applies to this package's files only (numba's setting
`CACHE_DIR` and every other package's functions are left as they are); it must run before the
first compiled function of the package is defined, so `sim.engine.jit` calls it. `prune()`
removes the directories of old code versions and is left to `sim.configure()`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from functools import cache
from pathlib import Path

from numba.core.caching import CacheImpl, UserProvidedCacheLocator

PACKAGE = Path(__file__).resolve().parents[1]
PREFIX = "numba-"
KEEP = 3  # cache directories of recent code versions kept (switching branches back and forth)
MIN_AGE_S = 86_400  # and any written in the last day: a long-running app may still compile into it


def source_digest(package: Path = PACKAGE) -> str:
    """Digest of the paths and contents of the package's modules."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_base() -> Path:
    """Where the versioned directories live: inside NUMBA_CACHE_DIR if the user set it, else in
    the package's __pycache__ (or the user's cache folder if the package is read-only)."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return Path(chosen)
    here = PACKAGE / "__pycache__"
    if os.access(here if here.exists() else PACKAGE, os.W_OK):
        return here
    return Path.home() / ".cache" / "taiyuan-eldercare"


@cache
def cache_dir() -> Path:
    """The cache directory of this code version."""
    return cache_base() / f"{PREFIX}{source_digest()}"


class _VersionedLocator(UserProvidedCacheLocator):
    """Numba's locator for a user-provided directory, pointed at `cache_dir()`, for this
    package's files only."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(PACKAGE):
            return None
        return super(UserProvidedCacheLocator, cls).from_function(py_func, py_file)


def register() -> None:
    """Put the package's locator first in numba's list (once)."""
    if _VersionedLocator not in CacheImpl._locator_classes:
        CacheImpl._locator_classes.insert(0, _VersionedLocator)


def prune(base: Path | None = None, current: Path | None = None) -> None:
    """Remove the cache directories beyond the KEEP most recently written that were not written
    in the last day (best effort: another process may be pruning at the same time, or the
    folder may be read-only). Only directories named like this module's are touched."""
    base = base or cache_base()
    current = current or cache_dir()
    try:
        others = [(p.stat().st_mtime, p) for p in base.glob(f"{PREFIX}*") if p != current]
    except OSError:
        return
    others.sort(reverse=True)
    for written, old in others[KEEP - 1 :]:
        if time.time() - written > MIN_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
