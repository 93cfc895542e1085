"""Command line: bad input exits 2 with one line; `run` writes its outputs atomically."""

from __future__ import annotations

import json
import os
import string
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.experiments import report
from sim.params.sections import Params
from tests.cli_helpers import fails as _fails
from tests.cli_helpers import tree as _tree


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def blocked(tmp_path: Path) -> str:
    """An output path that cannot be created (its parent is a file), even for root."""
    f = tmp_path / "a_file"
    f.write_text("x")
    return str(f / "out")


def test_bad_scenario_files_exit_2(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "out")
    cases = [
        ("malformed.toml", "name = [\n", ("malformed.toml", "malformed TOML")),
        ("typo.toml", 'nmae = "x"\n', ("typo.toml", "nmae", "did you mean 'name'")),
        ("ptypo.toml", "[params.money]\nprice_privat_home = 1.0\n",
         ("ptypo.toml", "params.money.price_privat_home", "price_private_home")),
        ("type.toml", "[params.policy]\nvoucher_amount = \"lots\"\n",
         ("type.toml", "params.policy.voucher_amount", "expected a number")),
        ("range.toml", "[params.policy]\nvoucher_amount = 5000.0\n",
         ("range.toml", "params.policy.voucher_amount", "[0.0, 1500.0]")),
        ("tuple.toml", "[params.policy]\npublic_beds_added = [1, 2]\n",
         ("tuple.toml", "params.policy.public_beds_added", "list of 5")),
        ("until.toml", 'until = "2015-12"\n', ("until.toml", "until", "before the care system")),
    ]  # fmt: skip
    for name, text, needles in cases:
        path = _write(tmp_path, name, text)
        _fails(["run", path, "--out", out, "--scale", "200"], capsys, *needles)
    assert not (tmp_path / "out").exists()


def test_unknown_and_missing_inputs_exit_2(tmp_path: Path, capsys, blocked: str) -> None:
    out = str(tmp_path / "out")
    _fails(["run", "plan_2016_202", "--out", out], capsys, "plan_2016_202", "plan_2016_2020")
    _fails(["run", str(tmp_path / "nope.toml"), "--out", out], capsys, "nope.toml", "scenario")
    _fails(["run", "plan_2016_2020", "--out", blocked], capsys, "a_file", "out")
    _fails(["run", "plan_2016_2020", "--out", out, "--until", "2020-13"], capsys, "--until")
    _fails(["run", "plan_2016_2020", "--out", out, "--scale", "0.1"], capsys, "--scale")
    _fails(["run", "plan_2016_2020"], capsys, "--out")
    _fails(["frobnicate"], capsys, "frobnicate")
    _fails(["batch", str(tmp_path / "b.toml"), "--out", out], capsys, "b.toml", "batch")
    _fails(["query", str(tmp_path), "SELECT 1"], capsys, str(tmp_path))
    _fails(["compare", str(tmp_path / "x"), str(tmp_path / "y")], capsys, "x")
    _fails(
        ["sensitivity", "--levers", "money.price_privat_home", "--kpis", "beds_per_1000",
         "--out", out], capsys, "price_privat_home", "price_private_home",
    )  # fmt: skip
    _fails(
        ["sensitivity", "--levers", "money.price_private_home", "--kpis", "beds_per_100",
         "--out", out], capsys, "beds_per_100", "beds_per_1000",
    )  # fmt: skip
    # a non-empty folder that is not an eldercare output is never clobbered
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    _fails(["run", "plan_2016_2020", "--out", str(other)], capsys, "other", "not empty")
    assert (other / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "out").exists()


def _fake_run(folder: Path, seed: int, value: float) -> None:
    folder.mkdir()
    rows = [
        {"month": "2016-01", "district": d, "beds_per_1000": value, "unmet_need_share": 0.1}
        for d in ("Xiaodian", "Taiyuan")
    ]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet")
    (folder / "manifest.json").write_text(json.dumps({"kind": "run", "seed": seed}))


def test_compare_and_unknown_district(tmp_path: Path, capsys) -> None:
    _fake_run(tmp_path / "a", 1, 10.0)
    _fake_run(tmp_path / "b", 1, 12.5)
    args = ["compare", str(tmp_path / "a"), str(tmp_path / "b")]
    assert main([*args, "--kpis", "beds_per_1000,unmet_need_share"]) == 0
    out = capsys.readouterr().out
    assert "beds_per_1000" in out and "2.5" in out
    _fails([*args, "--district", "Xiaodain"], capsys, "--district", "Xiaodian")
    _fails([*args, "--kpis", "nope"], capsys, "nope")


_ALPHABET = string.ascii_letters + string.digits + " =[]\"'.,-_#\n{}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=_ALPHABET, max_size=120))
def test_fuzz_cli_run_never_tracebacks(tmp_path: Path, blocked: str, text: str) -> None:
    # the output is unwritable, so even a valid file stops (exit 2) before any simulation
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(path), "--out", blocked])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and ("fuzz.toml" in lines[0] or "a_file" in lines[0])


def test_run_writes_outputs_atomically(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "run"
    argv = ["run", "plan_2016_2020", "--out", str(out), "--scale", "200", "--until", "2016-03",
            "--seed", "3", "-q"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "metrics.parquet",
        "report.html",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary siblings left
    man = json.loads((out / "manifest.json").read_text())
    assert man["params"] == json.loads(json.dumps(Params().to_dict()))
    for info in Params().describe():
        node = man["params"]
        for part in info.path.split("."):
            node = node[part]
    assert man["seed"] == 3 and man["scale"] == 200 and man["until"] == "2016-03"
    assert set(man["versions"]) >= {"numpy", "pandas", "mesa", "numba"} and man["code_version"]
    frame = pd.read_parquet(out / "metrics.parquet")
    assert frame["month"].max() == "2016-03" and "Taiyuan" in set(frame["district"])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4

    # a failure while writing leaves the previous folder untouched and no temporary folder
    before = (out / "metrics.parquet").read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report, "render", boom)
    with pytest.raises(RuntimeError):
        main([*argv[:-1], "--seed", "4", "-q"])
    assert (out / "metrics.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    # a fresh folder that fails is never created
    with pytest.raises(RuntimeError):
        main(["run", "plan_2016_2020", "--out", str(tmp_path / "new"), "--scale", "200",
              "--until", "2016-01", "-q"])  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_help_on_every_subcommand(capsys) -> None:
    for sub in ("run", "batch", "query", "compare", "sensitivity", "scenarios"):
        with pytest.raises(SystemExit) as info:
            main([sub, "--help"])
        assert info.value.code == 0
        assert "usage: eldercare" in capsys.readouterr().out


# -- issue 15: nothing lost, nothing mixed --------------------------------------------------------
RUN = ["--scale", "1000", "--until", "2016-01", "-q"]


def test_run_and_sensitivity_replace_only_their_own_output(tmp_path: Path, capsys) -> None:
    # a finished batch folder is never replaced by `run` or `sensitivity`
    batch = tmp_path / "batch.toml"
    batch.write_text('scenario = "frozen_2015"\nreplications = 2\nuntil = "2016-01"\nscale = 1e3\n')
    cc = tmp_path / "cc"
    assert main(["batch", str(batch), "--out", str(cc), "-q"]) == 0
    before = _tree(cc)
    _fails(["run", "frozen_2015", "--out", str(cc), *RUN], capsys, "cc", "batch")
    sens = ["sensitivity", "--levers", "money.price_private_home", "--kpis", "share_institution"]
    _fails([*sens, "--out", str(cc), *RUN], capsys, "cc", "batch")
    assert _tree(cc) == before
    # an unrelated manifest.json next to other files, or none with a kind
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text('{"kind": "run"}')
    (mine / "notes.txt").write_text("keep")
    _fails(["run", "frozen_2015", "--out", str(mine), *RUN], capsys, "mine", "notes.txt")
    (mine / "manifest.json").write_text('{"project": "not eldercare"}')
    _fails(["run", "frozen_2015", "--out", str(mine), *RUN], capsys, "mine", "not an eldercare")
    assert sorted(p.name for p in mine.iterdir()) == ["manifest.json", "notes.txt"]
    # a run output is replaced by a run, not by a sensitivity analysis (and the other way round)
    run = tmp_path / "run"
    assert main(["run", "frozen_2015", "--out", str(run), *RUN]) == 0
    assert main(["run", "frozen_2015", "--out", str(run), "--seed", "2", *RUN]) == 0
    assert json.loads((run / "manifest.json").read_text())["seed"] == 2
    _fails([*sens, "--out", str(run), *RUN], capsys, "run", "holds an eldercare run output")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.toml", "cc", "mine", "run"]


def test_command_line_numbers_have_the_file_limits(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "out")
    run = ["run", "frozen_2015", "--out", out]
    _fails([*run, "--seed", str(2**64)], capsys, "--seed", "2**63")
    _fails([*run, "--seed", str(2**63)], capsys, "--seed")
    _fails([*run, "--scale", "1e9"], capsys, "--scale", "1e6")
    _fails([*run, "--scale", "nan"], capsys, "--scale")
    _fails([*run, "--until", "2099-12"], capsys, "--until", "2016-01..2035-12")
    _fails([*run, "--until", "9999-12"], capsys, "--until", "2016-01..2035-12")
    _fails(["--until", "2036-01"], capsys, "--until", "2016-01..2035-12")
    sens = ["sensitivity", "--levers", "money.price_private_home", "--kpis", "share_institution"]
    _fails([*sens, "--out", out, "--n", "100000"], capsys, "--n", "100,000")
    assert not (tmp_path / "out").exists()


def test_query_edge_cases(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "we[ird] *name"  # glob characters in the folder's name
    assert main(["run", "frozen_2015", "--out", str(folder), *RUN]) == 0
    assert main(["query", str(folder), "SELECT count(DISTINCT month) AS n FROM runs"]) == 0
    # the population's months from the 2010 census (2010-11..2015-12), then the care month 2016-01
    assert capsys.readouterr().out.split() == ["n", "63"]
    _fails(["query", str(folder), ""], capsys, "SQL", "empty")
    _fails(["query", str(folder), "  "], capsys, "SQL", "empty")
    _fails(["query", str(folder), "-- just a comment"], capsys, "SQL")


def test_compare_bad_month_and_folders(tmp_path: Path, capsys) -> None:
    _fake_run(tmp_path / "a", 1, 10.0)
    _fake_run(tmp_path / "b", 1, 12.5)
    args = ["compare", str(tmp_path / "a"), str(tmp_path / "b")]
    _fails([*args, "--month", "2020-13"], capsys, "--month", "YYYY-MM")
    _fails([*args, "--month", "2099-12"], capsys, "--month", "2016-01..2035-12")
    (tmp_path / "a" / "manifest.json").unlink()
    _fails(args, capsys, "a", "manifest.json")
    (tmp_path / "a" / "manifest.json").write_text("{not json")
    _fails(args, capsys, "a", "manifest.json")
    (tmp_path / "a" / "manifest.json").write_text('{"kind": "run", "seed": "one"}')
    _fails(args, capsys, "a", "seed")
    (tmp_path / "a" / "manifest.json").write_text('{"kind": "run", "seed": 1}')
    (tmp_path / "a" / "metrics.parquet").write_bytes(b"PAR1 cut short")
    _fails(args, capsys, "metrics.parquet", "unreadable")


def test_sensitivity_refuses_a_lever_named_twice(tmp_path: Path, capsys) -> None:
    argv = ["sensitivity", "--levers", "money.price_private_home,money.price_private_home",
            "--kpis", "share_institution", "--out", str(tmp_path / "out"), *RUN]  # fmt: skip
    _fails(argv, capsys, "--levers", "money.price_private_home", "twice")
    assert not (tmp_path / "out").exists()


def _disk_full(monkeypatch) -> None:
    """Writing a Parquet file or a CSV writes a few bytes, then fails as on a full disk."""
    import errno

    import pyarrow.parquet as pq

    def full(_data, where, *args, **kwargs) -> None:
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", full)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, where, **kw: full(self, where))


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    earlier = tmp_path / "earlier"
    assert main(["run", "frozen_2015", "--out", str(earlier), *RUN]) == 0
    before = _tree(earlier)
    batch = tmp_path / "batch.toml"
    batch.write_text('scenario = "frozen_2015"\nuntil = "2016-01"\nscale = 1000\n')
    _disk_full(monkeypatch)
    _fails(["run", "frozen_2015", "--out", str(tmp_path / "new"), *RUN], capsys, "space")
    _fails(["run", "frozen_2015", "--out", str(earlier), *RUN], capsys, "space")
    _fails(["batch", str(batch), "--out", str(tmp_path / "b" / "c"), "-q"], capsys, "space")
    sens = ["sensitivity", "--levers", "money.price_private_home", "--kpis", "share_institution"]
    _fails([*sens, "--n", "2", "--out", str(tmp_path / "s"), *RUN], capsys, "space")
    assert _tree(earlier) == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["batch.toml", "earlier", *before])


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from sim.experiments.results import STALE_AFTER_S

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host, gone, alive = socket.gethostname(), dead.pid, os.getpid()
    stale = [f".run.tmp-{host}-{gone}-0123abcd", f".run.old-{host}-{gone}-0123abcd",
             ".run.tmp-elsewhere-1-0123abcd"]  # fmt: skip
    kept = [f".run.tmp-{host}-{alive}-0123abcd", ".run.tmp-elsewhere-2-0123abcd",
            f".other.tmp-{host}-{gone}-0123abcd"]  # fmt: skip
    for name in stale + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.parquet").write_text("half")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(tmp_path / ".run.tmp-elsewhere-1-0123abcd", (old, old))
    assert main(["run", "frozen_2015", "--out", str(tmp_path / "run"), *RUN]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", *kept])


def test_levers_kpis_and_version_list_the_registries(capsys) -> None:
    """`eldercare levers` and `eldercare kpis` print every lever and KPI once, from the
    registries (no list of their own), with what each figure is; --version names the code."""
    from sim.kpis.registry import KPIS
    from sim.params.levers import levers

    assert main(["levers"]) == 0
    out = capsys.readouterr().out
    paths = [
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and line[2] != " "
    ]
    assert paths == [info.path for info in levers()]
    assert out.count("acts on ") == len(paths) and "source: assumed" in out
    assert main(["levers", "--lang", "zh"]) == 0
    assert "医养结合" in capsys.readouterr().out
    assert main(["kpis"]) == 0
    rows = capsys.readouterr().out.splitlines()[1 : 1 + len(KPIS)]
    assert [r.split()[0] for r in rows] == [k.name for k in KPIS]
    assert {r.split()[-1] for r in rows if r.split()[0] == "beds_per_1000"} == {"40"}
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and "code digest" in capsys.readouterr().out
