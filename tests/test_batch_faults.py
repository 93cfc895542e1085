"""Fault injection: a batch killed with SIGKILL at random moments, again and again, then resumed,
holds every run exactly once, each equal to the run of a batch never interrupted, and nothing
else (no temporary file, no process left running)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from sim.cli import main
from sim.experiments.batch import load_batch, run_batch
from tests.cli_helpers import session_processes

BATCH = """
scenario = "plan_2016_2020"
replications = 8
seed = 11
until = "2019-12"
scale = 2

[sweep]
method = "grid"
[sweep.levers]
"policy.voucher_amount" = [100.0, 600.0]
"""
NAMES = sorted(f"point={i}_seed={s}.parquet" for i in (0, 1) for s in range(11, 19))


def _finished(out: Path) -> int:
    return len(list(out.glob("runs/point=*.parquet")))


def _kill(argv: list[str], out: Path, delay: float, whole_group: bool) -> None:
    """Start the CLI; once it has finished one more run (or at once if `delay` is negative),
    wait |delay| seconds and SIGKILL it (the parent only, or its whole process group) unless it
    finished; then wait until none of its processes is left."""
    before = _finished(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while delay >= 0 and _finished(out) == before and proc.poll() is None:
        assert time.monotonic() < deadline, "no run finished"
        time.sleep(0.02)
    try:
        proc.wait(timeout=abs(delay))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if whole_group else proc.kill()
        proc.wait()
    while session_processes(proc.pid):
        assert time.monotonic() < deadline + 60, f"left running: {session_processes(proc.pid)}"
        time.sleep(0.1)


def test_killed_again_and_again_then_resumed_equals_a_clean_batch(tmp_path: Path) -> None:
    path = tmp_path / "batch.toml"
    path.write_text(BATCH, encoding="utf-8")
    clean = tmp_path / "clean"
    run_batch(load_batch(path), clean, None, progress=False)
    out = tmp_path / "out"
    argv = ["batch", str(path), "--out", str(out), "--workers", "2", "-q"]
    draw = random.Random(15)  # the same kill moments on every test run
    _kill(argv, out, -draw.uniform(0.2, 3.0), whole_group=True)  # while starting
    for attempt in range(3):  # while runs are made and written
        _kill(argv, out, draw.uniform(0.0, 0.5), whole_group=attempt % 2 == 1)
    assert _finished(out) < len(NAMES)  # the kills came before the end
    assert main(["batch", str(path), "--out", str(out), "-q"]) == 0
    assert sorted(os.listdir(out)) == ["manifest.json", "runs", "summary.csv"]
    assert sorted(os.listdir(out / "runs")) == NAMES  # each run once, no temporary file
    for name in NAMES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / "runs" / name), pd.read_parquet(clean / "runs" / name)
        )
    summary = pd.read_csv(out / "summary.csv")
    pd.testing.assert_frame_equal(summary, pd.read_csv(clean / "summary.csv"))
    assert sorted(os.listdir(tmp_path)) == ["batch.toml", "clean", "out"]
