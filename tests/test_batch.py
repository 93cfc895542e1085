"""Batches: spec validation, kill-and-resume, identical results on 1, 2 workers and Dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.experiments.batch import load_batch, make_executor, run_batch
from sim.experiments.scenario import ScenarioError

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
    pool, close = make_executor(2)
    try:
        run_batch(spec, tmp_path / "w2", pool, progress=False)
    finally:
        close()
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
