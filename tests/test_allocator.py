"""The allocator settings that keep the month's large temporaries in warm heap memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")

# Twenty 2 MB arrays (a month's temporary per resident in need) made, written and freed in turn;
# prints the page faults they cost after a warm-up round.
_CYCLES = """
import resource, sys
import numpy as np
import sim  # importing the package changes nothing; configure() applies the settings
if sys.argv[1] == "configured":
    sim.configure()
def cycle():
    block = np.empty(250_000)
    block[:] = 1.0
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setting: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", _CYCLES, setting], capture_output=True, text=True, check=True
    )
    return int(run.stdout.split()[-1])


def test_settings_take_on_glibc() -> None:
    from sim.engine.allocator import keep_freed_memory

    assert keep_freed_memory()


def test_freed_large_arrays_are_reused_without_page_faults() -> None:
    """glibc's default maps fresh pages for each array (at least one fault each); with the
    settings the freed block is reused from the heap and costs none."""
    assert _faults("imported") >= 20
    assert _faults("configured") == 0
