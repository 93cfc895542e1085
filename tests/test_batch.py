"""Batches: spec validation, kill-and-resume, identical results on 1, 2 workers and Dask."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.experiments import batch as batch_module
from sim.experiments.batch import (
    RunTask,
    load_batch,
    open_executor,
    plan_line,
    run_batch,
    run_task,
)
from sim.experiments.results import IdentityError
from sim.experiments.scenario import ScenarioError
from tests.cli_helpers import fails, session_processes, tree

BATCH = """
name = "tiny"
scenario = "plan_2016_2020"
replications = 2
seed = 5
until = "{until}"
scale = 200

[sweep]
method = "grid"
[sweep.levers]
"money.price_private_home" = [2000.0, 4000.0]
"""


def _batch(tmp_path: Path, until: str = "2016-02", text: str = BATCH) -> Path:
    path = tmp_path / "batch.toml"
    path.write_text(text.format(until=until), encoding="utf-8")
    return path


def test_grid_and_lhs_specs(tmp_path: Path) -> None:
    spec = load_batch(_batch(tmp_path))
    assert spec.seeds == (5, 6) and len(spec.points) == 2
    assert spec.points[1] == {"money.price_private_home": 4000.0}
    assert spec.overrides[1] == {"money": {"price_private_home": 4000.0}}
    lhs = tmp_path / "lhs.toml"
    lhs.write_text(
        'scenario = "frozen_2015"\nreplications = 3\n[sweep]\nmethod = "lhs"\nn = 5\nseed = 9\n'
        '[sweep.levers]\n"money.price_private_home" = [2000.0, 4000.0]\n'
        '"services.max_wait_months" = [1, 12]\n'
    )
    a, b = load_batch(lhs), load_batch(lhs)
    assert a.points == b.points and len(a.points) == 5 and a.seeds == (1, 2, 3)
    prices = sorted(p["money.price_private_home"] for p in a.points)
    # one point per fifth of the range (latin hypercube)
    assert [int((v - 2000) // 400) for v in prices] == [0, 1, 2, 3, 4]
    assert all(isinstance(p["services.max_wait_months"], int) for p in a.points)
    assert a.overrides[0]["policy"]["public_beds_added"] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("text", "field", "hint"),
    [
        ('scenario = "plan_2016_2020"\nreplicatons = 2\n', "replicatons", "replications"),
        ('scenario = "plan_2016_2020"\nreplications = 0\n', "replications", "[1, 10000]"),
        ('scenario = "plan_2016_202"\n', "scenario", "plan_2016_2020"),
        ('replications = 2\n', "scenario", "missing"),
        ('scenario = "plan_2016_2020"\n[sweep]\nmethd = "grid"\n', "sweep.methd", "sweep.method"),
        ('scenario = "plan_2016_2020"\n[sweep]\nmethod = "random"\n[sweep.levers]\n'
         '"money.price_private_home" = [1.0]\n', "sweep.method", "'grid' or 'lhs'"),
        ('scenario = "plan_2016_2020"\n[sweep]\n[sweep.levers]\n'
         '"money.price_privat_home" = [2000.0]\n',
         "sweep.levers.money.price_privat_home", "money.price_private_home"),
        ('scenario = "plan_2016_2020"\n[sweep]\n[sweep.levers]\n'
         '"money.price_private_home" = [1.0]\n',
         "params.money.price_private_home", "out of range"),
        ('scenario = "plan_2016_2020"\n[sweep]\nmethod = "lhs"\nn = 3\n[sweep.levers]\n'
         '"money.price_private_home" = [1000.0, 3000.0]\n', "sweep.levers.money.price_private_home",
         "[1500.0, 6000.0]"),
        ('scenario = "plan_2016_2020"\nseed = -1\n', "seed", ">= 0"),
        ("scenario = \n", "toml", "malformed"),
        # issue 15: months past the data, seeds with replications, deep nesting, huge grids
        ('scenario = "plan_2016_2020"\nuntil = "9999-12"\n', "until", "2016-01..2035-12"),
        ('scenario = "plan_2016_2020"\nuntil = "2099-12"\n', "until", "2016-01..2035-12"),
        ('scenario = "plan_2016_2020"\nseeds = [1, 2]\nreplications = 5\n', "seeds",
         "not seeds and replications"),
        ('scenario = "plan_2016_2020"\nseeds = [1, 2]\nseed = 3\n', "seeds", "not seeds and seed"),
        ('scenario = "plan_2016_2020"\nseed = 18446744073709551616\n', "seed", "2**63"),
        ('scenario = "plan_2016_2020"\nscale = 1e9\n', "scale", "1e6"),
        ("scenario = " + "[" * 5000 + "]" * 5000 + "\n", "toml", "nested deeper"),
        ("[sweep]\nx = " + "[" * 20 + "]" * 20 + "\n", "toml", "nested deeper"),
        ('scenario = "plan_2016_2020"\n[sweep]\n[sweep.levers]\n' + "".join(
            f'"{lever}" = [{", ".join(str(lo + k) for k in range(100))}]\n'
            for lever, lo in (("money.price_private_home", 2000), ("money.price_medical_bed", 3000),
                              ("money.price_day_care", 300), ("policy.voucher_amount", 100),
                              ("money.budget_floor", 50))
        ), "sweep", "10,000,000,000"),
    ],
)  # fmt: skip
def test_bad_batch_files(tmp_path: Path, capsys, text: str, field: str, hint: str) -> None:
    path = tmp_path / "bad_batch.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_batch(path)
    assert field in info.value.field and hint in str(info.value)
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad_batch.toml" in err[0] and field in err[0]
    assert not (tmp_path / "out").exists()


def _runs(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "runs").iterdir())


EXPECTED = [f"point={i}_seed={s}.parquet" for i in (0, 1) for s in (5, 6)]


def test_killed_batch_resumes_without_duplicates(tmp_path: Path) -> None:
    spec_path = _batch(tmp_path, until="2016-03")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "batch", str(spec_path), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "runs").is_dir() and any((out / "runs").glob("point=*.parquet")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = [n for n in _runs(out) if not n.startswith(".")]
    assert 1 <= len(done_before) < 4
    for name in done_before:  # finished runs are complete files
        pd.read_parquet(out / "runs" / name)
    stamps = {n: (out / "runs" / n).stat().st_mtime_ns for n in done_before}
    assert main(["batch", str(spec_path), "--out", str(out), "-q"]) == 0
    assert _runs(out) == EXPECTED  # each run exactly once, no temporary files
    for name in EXPECTED:
        frame = pd.read_parquet(out / "runs" / name)
        assert frame["month"].max() == "2016-03"
    for name, stamp in stamps.items():  # finished runs were skipped, not redone
        assert (out / "runs" / name).stat().st_mtime_ns == stamp
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["point"]) == [0, 1] and (summary["replications"] == 2).all()
    assert {"beds_per_1000_mean", "beds_per_1000_p05", "beds_per_1000_p95"} <= set(summary)


def _all_runs(out: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(out / "runs" / n) for n in EXPECTED]
    return pd.concat(frames, ignore_index=True).drop(columns=["scenario"])


def test_same_results_on_1_and_2_workers_and_dask(tmp_path: Path, capsys) -> None:
    from dask.distributed import Client, LocalCluster

    spec = load_batch(_batch(tmp_path))
    run_batch(spec, tmp_path / "w1", None, progress=False)
    with open_executor(2) as workers:
        run_batch(spec, tmp_path / "w2", workers.executor, progress=False)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        run_batch(spec, tmp_path / "dask", client.get_executor(), progress=False)
    one = _all_runs(tmp_path / "w1")
    assert one["money.price_private_home"].nunique() == 2
    pd.testing.assert_frame_equal(one, _all_runs(tmp_path / "w2"))
    pd.testing.assert_frame_equal(one, _all_runs(tmp_path / "dask"))
    for d in ("w1", "w2", "dask"):
        assert _runs(tmp_path / d) == EXPECTED
    # queries over all runs, and paired comparisons of two batches with the same seeds
    sql = "SELECT point, count(DISTINCT seed) AS n FROM runs GROUP BY point ORDER BY point"
    assert main(["query", str(tmp_path / "w1"), sql]) == 0
    out = capsys.readouterr().out
    assert out.split() == ["point", "n", "0", "2", "1", "2"]
    assert main(["query", str(tmp_path / "w1"), "SELEC nonsense"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["compare", str(tmp_path / "w1"), str(tmp_path / "w2")]) == 0
    table = capsys.readouterr().out
    assert "beds_per_1000" in table and "diff_p05" in table
    # a different batch cannot be written into an existing batch folder
    other = _batch(tmp_path, until="2016-01")
    assert main(["batch", str(other), "--out", str(tmp_path / "w1"), "-q"]) == 2
    assert "different batch" in capsys.readouterr().err


def test_sensitivity_morris(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sens"
    argv = ["sensitivity", "--scenario", "plan_2016_2020", "--levers",
            "money.price_private_home,policy.voucher_amount", "--kpis",
            "share_institution,unmet_need_share", "--method", "morris", "--n", "2",
            "--scale", "200", "--until", "2016-01", "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    table = pd.read_csv(out / "sensitivity.csv")
    assert len(table) == 4 and {"mu_star", "sigma"} <= set(table)
    assert (out / "sensitivity.png").stat().st_size > 1000
    assert len(pd.read_csv(out / "samples.csv")) == 2 * 3


# -- issue 15: nothing lost, nothing mixed --------------------------------------------------------
def test_grid_size_is_counted_before_the_points_are_made(tmp_path: Path) -> None:
    # 20**4 = 160,000 points: refused without building them (the 5 x 100 grid above is 1e10)
    values = ", ".join(str(500.0 + 10 * k) for k in range(20))
    levers = ("money.price_medical_bed", "money.price_day_care", "policy.voucher_amount",
              "money.budget_floor")  # fmt: skip
    text = 'scenario = "plan_2016_2020"\n[sweep]\n[sweep.levers]\n'
    text += "".join(f'"{lever}" = [{values}]\n' for lever in levers)
    path = tmp_path / "grid.toml"
    path.write_text(text)
    tracemalloc.start()
    try:
        with pytest.raises(ScenarioError, match="160,000 points"):
            load_batch(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak  # 160,000 points would take about 60 MB


def test_batch_prints_its_size_and_an_estimate_first(tmp_path: Path, capsys) -> None:
    spec = load_batch(_batch(tmp_path))
    assert plan_line(spec, 4, 2, 40.0) == "4 runs (2 points x 2 seeds), about 80 s with 2 workers"
    assert (
        plan_line(spec, 3, 2, 90.0)
        == "4 runs (2 points x 2 seeds), 3 to do, about 3 min with 2 workers"
    )
    assert plan_line(spec, 0, 1, None) == "4 runs (2 points x 2 seeds), 0 to do"
    assert main(["batch", str(_batch(tmp_path)), "--out", str(tmp_path / "out")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert re.fullmatch(r"4 runs \(2 points x 2 seeds\), about \d+ (s|min|h) with 1 worker", first)


def test_resume_with_other_parameters_or_code_is_refused(tmp_path: Path, capsys, monkeypatch):
    spec_path = _batch(tmp_path)
    out = tmp_path / "out"
    argv = ["batch", str(spec_path), "--out", str(out), "-q"]
    assert main(argv) == 0
    (out / "runs" / EXPECTED[3]).unlink()  # as if killed before the last run
    (out / "summary.csv").unlink()
    before = tree(out)
    monkeypatch.setenv("ELDERCARE_FITTED", "none")  # the declared defaults, not the fitted file
    fails(argv, capsys, "out", "other resolved parameters", "ELDERCARE_FITTED")
    monkeypatch.delenv("ELDERCARE_FITTED")
    monkeypatch.setattr(batch_module, "code_digest", lambda: "0123456789abcdef")
    fails(argv, capsys, "out", "other code", "0123456789abcdef")
    assert tree(out) == before
    monkeypatch.undo()
    assert main(argv) == 0 and _runs(out) == EXPECTED


def test_a_worker_that_would_make_another_run_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    spec = load_batch(_batch(tmp_path))
    # another code version: refused before anything runs
    task = RunTask({}, 0, replace(spec.identity(0, 5), code_digest="0123456789abcdef"), "x", {})
    with pytest.raises(IdentityError, match="code_digest"):
        run_task(task)
    # a worker process whose environment differs from the client's (as a Dask worker might)
    monkeypatch.setenv("ELDERCARE_FITTED", "none")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(int).result()  # the worker starts with the environment as it is now
        monkeypatch.delenv("ELDERCARE_FITTED")
        with pytest.raises(IdentityError, match="params_hash"):
            run_batch(spec, tmp_path / "out", pool, progress=False)
    assert not (tmp_path / "out").exists()  # created by this batch, which wrote no run


def test_truncated_empty_or_foreign_run_files_are_redone(tmp_path: Path, capsys) -> None:
    spec_path = _batch(tmp_path)
    out = tmp_path / "out"
    argv = ["batch", str(spec_path), "--out", str(out), "-q"]
    assert main(argv) == 0
    good = {n: pd.read_parquet(out / "runs" / n) for n in EXPECTED}
    runs = out / "runs"
    (runs / EXPECTED[0]).write_bytes(b"")
    cut = runs / EXPECTED[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (runs / EXPECTED[2]).write_bytes((runs / EXPECTED[3]).read_bytes())  # another run's file
    fails(["compare", str(out), str(out)], capsys, EXPECTED[0], "unreadable")
    assert main(argv) == 0
    assert _runs(out) == EXPECTED
    for name in EXPECTED:
        pd.testing.assert_frame_equal(pd.read_parquet(runs / name), good[name])
    assert main(["compare", str(out), str(out)]) == 0


def test_temporaries_of_killed_batches_are_removed(tmp_path: Path) -> None:
    spec_path = _batch(tmp_path)
    out = tmp_path / "out"
    argv = ["batch", str(spec_path), "--out", str(out), "-q"]
    assert main(argv) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = [out / f".summary.csv.tmp-{dead.pid}", out / f".manifest.json.tmp-{host}-{dead.pid}-ab",
             out / "runs" / f".{EXPECTED[0]}.tmp-{host}-{dead.pid}-0123abcd"]  # fmt: skip
    alive = out / "runs" / f".{EXPECTED[1]}.tmp-{host}-{os.getpid()}-0123abcd"
    for path in [*stale, alive]:
        path.write_text("half")
    assert main(argv) == 0
    assert not any(p.exists() for p in stale) and alive.exists()


def test_bad_dask_addresses_are_one_line_and_leave_nothing(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(batch_module, "CONNECT_TIMEOUT_S", 1)
    spec_path = str(_batch(tmp_path))
    out = str(tmp_path / "new" / "out")
    fails(["batch", spec_path, "--out", out, "--dask", "bogus"], capsys, "--dask", "tcp://HOST")
    fails(["batch", spec_path, "--out", out, "--dask", "tcp://h:99999"], capsys, "--dask")
    fails(["batch", spec_path, "--out", out, "--dask", "tcp://127.0.0.1:1", "-q"], capsys,
          "--dask tcp://127.0.0.1:1", "cannot")  # fmt: skip
    sens = ["sensitivity", "--levers", "money.price_private_home", "--kpis", "share_institution"]
    fails([*sens, "--out", out, "--dask", "tcp://127.0.0.1:1", "-q"], capsys, "127.0.0.1:1")
    assert [p.name for p in tmp_path.iterdir()] == ["batch.toml"]


def test_the_pool_does_not_fork_a_threaded_process(tmp_path: Path) -> None:
    spec = load_batch(_batch(tmp_path))
    idle = threading.Event()
    thread = threading.Thread(target=idle.wait)  # this process is multi-threaded for sure
    thread.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_executor(2) as workers:
                run_batch(spec, tmp_path / "out", workers.executor, progress=False)
    finally:
        idle.set()
        thread.join()
    assert not [w for w in caught if "fork()" in str(w.message)]  # "... may lead to deadlocks"
    assert _runs(tmp_path / "out") == EXPECTED


def _long_batch(tmp_path: Path) -> Path:
    """A batch that runs for minutes: it is still running when the test stops it."""
    text = BATCH.replace("replications = 2", "replications = 200").replace(
        "scale = 200", "scale = 1000"
    )
    return _batch(tmp_path, until="2017-12", text=text)


def _start(batch: Path, out: Path, *options: str) -> subprocess.Popen:
    """`eldercare batch` in its own session, once its workers have finished a first run."""
    cmd = [sys.executable, "-m", "sim", "batch", str(batch), "--out", str(out), *options, "-q"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("runs/point=*.parquet")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no run finished"
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def _wait_until_gone(sid: int) -> None:
    deadline = time.monotonic() + 60  # generous: the workers check every WATCH_S
    while session_processes(sid):
        assert time.monotonic() < deadline, f"left running: {session_processes(sid)}"
        time.sleep(0.1)


def test_workers_exit_when_the_batch_process_is_killed(tmp_path: Path) -> None:
    proc = _start(_long_batch(tmp_path), tmp_path / "out", "--workers", "2")
    os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    proc.wait()
    _wait_until_gone(proc.pid)


@pytest.mark.parametrize("where", [["--workers", "2"], ["--dask", "local", "--workers", "2"]])
def test_ctrl_c_is_one_line(tmp_path: Path, where: list[str]) -> None:
    proc = _start(_long_batch(tmp_path), tmp_path / "out", *where)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.decode().splitlines() == ["eldercare: interrupted"]
    _wait_until_gone(proc.pid)


_GRID_LEVERS = ("money.price_private_home", "money.price_medical_bed", "money.price_day_care",
                "policy.voucher_amount")  # fmt: skip
_HUGE_GRID = "[sweep.levers]\n" + "".join(  # 100**4 points
    f'"{lever}" = [{", ".join(str(2000 + k) for k in range(100))}]\n' for lever in _GRID_LEVERS
)
_BATCH_LINES = [
    'scenario = "plan_2016_2020"',
    'scenario = "nope"',
    "replications = 3",
    "replications = 0",
    "seed = 18446744073709551616",
    "seeds = [1, 2]",
    "seeds = [1, 1]",
    'until = "2016-02"',
    'until = "2099-12"',
    'until = "9999-12"',
    "scale = 1e9",
    "scale = 500",
    "x = " + "[" * 5000 + "]" * 5000,
    "y = " + "{a=" * 30 + "1" + "}" * 30,
    '[sweep]\nmethod = "lhs"\nn = 100000\n[sweep.levers]\n"money.price_private_home" = [2e3, 3e3]',
    _HUGE_GRID,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_BATCH_LINES), max_size=6))
def test_fuzz_batch_files(tmp_path_factory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        spec = load_batch(path)
    except ScenarioError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
    else:
        assert 1 <= len(spec.points) * len(spec.seeds) <= batch_module.MAX_RUNS
        assert len(spec.params_hashes) == len(spec.points)
