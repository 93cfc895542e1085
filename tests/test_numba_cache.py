"""Numba's cache is keyed on the whole package's source (sim/numba_cache.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numba

import sim  # noqa: F401  (sets the cache directory)
from sim.numba_cache import PACKAGE, PREFIX, _prune, source_digest


def test_cache_directory_is_that_of_this_code_version() -> None:
    here = Path(numba.config.CACHE_DIR)
    assert here.name == PREFIX + source_digest()


def test_digest_changes_with_any_module(tmp_path: Path) -> None:
    copy = tmp_path / "sim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(copy)
    assert before == source_digest(PACKAGE)
    with (copy / "rng.py").open("a") as f:  # a module whose functions other kernels inline
        f.write("\n# edited\n")
    assert source_digest(copy) != before


def test_prune_keeps_the_most_recent_versions(tmp_path: Path) -> None:
    dirs = [tmp_path / f"{PREFIX}{i}" for i in range(6)]
    for age, path in enumerate(dirs):
        path.mkdir()
        os.utime(path, (1_000_000 - age * 10, 1_000_000 - age * 10))  # dirs[0] is the newest
    (tmp_path / "unrelated").mkdir()
    current = dirs[5]  # the oldest by time, but in use: never removed
    _prune(tmp_path, current)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([dirs[0].name, dirs[1].name, current.name, "unrelated"])
