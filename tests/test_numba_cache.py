"""Numba's cache is keyed on the whole package's source (sim/engine/numba_cache.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sim.engine.numba_cache import MIN_AGE_S, PACKAGE, PREFIX, cache_dir, prune, source_digest
from sim.engine.rng import keyed_uniform
from sim.population.kernel import month_kernel


def test_kernels_are_cached_in_the_directory_of_this_code_version() -> None:
    assert cache_dir().name == PREFIX + source_digest()
    for dispatcher in (keyed_uniform, month_kernel.__globals__["_step_chunks"]):
        locator = dispatcher._cache._impl.locator
        assert Path(locator.get_cache_path()).is_relative_to(cache_dir())


def test_importing_the_package_changes_no_process_setting() -> None:
    """numba's cache folder and threading layer stay numba's until `sim.configure()`."""
    probe = (
        "import numba, sim, sim.engine.process as p; "
        "print(numba.config.CACHE_DIR or '-', numba.config.THREADING_LAYER, p._done); "
        "sim.configure(); print(numba.config.THREADING_LAYER, p._done)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["-", "default", "False", "forksafe", "True"]


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
    prune(tmp_path, current)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([dirs[0].name, dirs[1].name, current.name, "unrelated"])


def test_prune_keeps_every_version_written_today(tmp_path: Path) -> None:
    """A long-running process may still compile into its version's directory."""
    young = _version_dirs(tmp_path, [3600 * (i + 1) for i in range(5)])
    prune(tmp_path, young[0])
    assert all(path.exists() for path in young)
