"""Command line: bad input exits 2 with one line; `run` writes its outputs atomically."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.experiments import report
from sim.params.sections import Params


def _fails(argv: list[str], capsys, *needles: str) -> str:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert "Traceback" not in out.err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


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
    (folder / "manifest.json").write_text(json.dumps({"seed": seed}))


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
