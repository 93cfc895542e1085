"""Numba's on-disk cache, one directory per version of this package's source code.

Numba checks a cached kernel only against the file that defines it, but the kernels here inline
row functions from other modules (`rng.keyed_uniform` into every kernel, `families` into the
choice passes, ...). After an edit to such a module numba would silently load kernels compiled
from the old code. Keying the cache directory on a digest of every module of the package rules
that out; the cost is one recompilation (~1 minute) after any change to the package.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numba

PACKAGE = Path(__file__).resolve().parents[1]
PREFIX = "numba-"
KEEP = 3  # cache directories of recent code versions kept (switching branches back and forth)
MIN_AGE_S = 86_400  # and any written in the last day: a long-running app may still compile into it


def source_digest(package: Path = PACKAGE) -> str:
    """Digest of the names and contents of the package's modules."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_versioned_cache() -> Path:
    """Point numba's cache at a directory for this code version (inside NUMBA_CACHE_DIR if the
    user set one, else in the package's __pycache__), prune old versions; returns the directory.

    Must run before any cached function is compiled, i.e. before the package's modules load.
    """
    base = Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else PACKAGE / "__pycache__"
    if base.name.startswith(PREFIX):  # already set by an earlier call (e.g. a reload)
        base = base.parent
    here = base / f"{PREFIX}{source_digest()}"
    numba.config.CACHE_DIR = str(here)
    _prune(base, here)
    return here


def _prune(base: Path, current: Path) -> None:
    """Remove the cache directories beyond the KEEP most recently written that were not written
    in the last day (best effort: another process may be pruning at the same time, or the
    folder may be read-only)."""
    try:
        others = [(p.stat().st_mtime, p) for p in base.glob(f"{PREFIX}*") if p != current]
    except OSError:
        return
    others.sort(reverse=True)
    for written, old in others[KEEP - 1 :]:
        if time.time() - written > MIN_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
