"""Numba's cache is keyed on the whole package's source (sim/engine/numba_cache.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numba

import sim  # noqa: F401  (sets the cache directory)
from sim.engine.numba_cache import MIN_AGE_S, PACKAGE, PREFIX, _prune, source_digest


def test_cache_directory_is_that_of_this_code_version() -> None:
    here = Path(numba.config.CACHE_DIR)
    assert here.name == PREFIX + source_digest()


def test_digest_changes_with_any_module(tmp_path: Path) -> None:
    copy = tmp_path / "sim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(copy)
    assert before == source_digest(PACKAGE)
    with (copy / "engine" / "rng.py").open("a") as f:  # inlined into other kernels
        f.write("\n# edited\n")
    assert source_digest(copy) != before


def _version_dirs(base: Path, ages_s: list[float]) -> list[Path]:
    """Cache directories last written `ages_s` seconds ago."""
    dirs = []
    for i, age in enumerate(ages_s):
        path = base / f"{PREFIX}{i}"
        path.mkdir()
        os.utime(path, (time.time() - age, time.time() - age))
        dirs.append(path)
    return dirs


def test_prune_keeps_the_most_recent_versions(tmp_path: Path) -> None:
    old = 10 * MIN_AGE_S
    dirs = _version_dirs(tmp_path, [old + 10 * i for i in range(6)])  # dirs[0] is the newest
    (tmp_path / "unrelated").mkdir()
    current = dirs[5]  # the oldest by time, but in use: never removed
    _prune(tmp_path, current)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([dirs[0].name, dirs[1].name, current.name, "unrelated"])


def test_prune_keeps_every_version_written_today(tmp_path: Path) -> None:
    """A long-running process may still compile into its version's directory."""
    young = _version_dirs(tmp_path, [3600 * (i + 1) for i in range(5)])
    _prune(tmp_path, young[0])
    assert all(path.exists() for path in young)
