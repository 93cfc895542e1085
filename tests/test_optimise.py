"""`eldercare optimise`: the spec, the search, its outputs, resume and refusals.

Small configurations (scale 500-1000, a year or two, a few dozen runs) keep these fast."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.experiments.planning.optimise import run_optimise
from sim.experiments.planning.search import (
    JOURNAL,
    Candidate,
    Journal,
    measure_values,
    rule_overrides,
)
from sim.experiments.planning.spec import CENTRAL, decision_overrides, load_spec, spec_from_dict
from sim.experiments.results import simulate
from sim.experiments.scenario import ScenarioError, deep_merge, load_scenario
from sim.params.sections import Params
from tests.cli_helpers import fails, session_processes, tree

# One district's beds per 1,000 from the private beds of 2016: the least cost that meets it is
# the fewest beds that reach the target (spending grows with every bed: construction subsidy).
KNOWN = """
name = "known"
scenario = "plan_2016_2020"
seeds = [1]
until = "2016-12"
scale = 1000
trials = 36
batch = 4
rule = false

[levers]
"policy.private_beds_added" = { range = [0, 20000], years = [2016, 2016] }

[[objectives]]
kpi = "spending_total"
direction = "minimise"

[[constraints]]
kpi = "beds_per_1000"
month = "2016-12"
district = "Xiaodian"
target = 28.0
probability = 1.0
"""

SMALL = """
name = "small"
scenario = "plan_2016_2020"
variants = ["demography_low"]
seeds = [1, 2]
validation_seeds = [7]
recheck = { scale = 250, seeds = [8] }
until = "2017-12"
scale = 500
trials = 12
batch = 3

[levers]
"policy.private_beds_added" = [0, 30000]
"policy.public_beds_added" = [0, 10000]
"money.price_private_home" = [1500.0, 6000.0]

[[objectives]]
kpi = "spending_total"
direction = "minimise"

[[objectives]]
kpi = "unmet_need_share"
month = "2017-12"

[[constraints]]
kpi = "private_bed_share"
month = "2017-12"

[[constraints]]
kpi = "beds_per_1000"
month = "2017-12"
target = 8.0
district = "each"
probability = 1.0
"""


def _spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _xiaodian_beds(x: int) -> float:
    over = {"policy": {"private_beds_added": [x, 2750, 2750, 2751, 2751]}}
    spec = load_spec_text(KNOWN)
    frame = simulate(Params().with_overrides(over), 1, 1000, "2016-12")
    return measure_values(frame, spec.constraints)[0][0]


def load_spec_text(text: str):
    import tomllib

    return spec_from_dict(tomllib.loads(text), "<test>")


def test_finds_the_known_optimum(tmp_path: Path) -> None:
    lo, hi = 0, 20000  # the fewest private beds of 2016 that reach the target (bisection)
    while hi - lo > 25:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _xiaodian_beds(mid) >= 28.0 else (mid, hi)
    outcome = run_optimise(load_spec(_spec(tmp_path, KNOWN)), tmp_path / "out", progress=False)
    chosen = outcome.chosen
    assert chosen is not None and chosen.feasible(outcome.spec)
    found = chosen.values["policy.private_beds_added"]
    assert lo <= found <= hi + 0.05 * 20000, (found, lo, hi)
    # nothing cheaper is feasible among the candidates
    cost = chosen.objectives(outcome.spec)[0]
    assert all(
        c.objectives(outcome.spec)[0] >= cost
        for c in outcome.candidates
        if c.feasible(outcome.spec)
    )


def test_outputs_and_a_feasible_candidate_stays_feasible_on_new_seeds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["optimise", str(_spec(tmp_path, SMALL)), "--out", str(out), "-q"]) == 0
    names = set(os.listdir(out))
    assert {
        "manifest.json",
        JOURNAL,
        "trials.csv",
        "summary.json",
        "pareto.png",
        "optimise.html",
        "chosen.toml",
        "rule.toml",
        "candidates",
    } <= names
    summary = json.loads((out / "summary.json").read_text())
    chosen = summary["chosen"]
    assert chosen is not None and f"trial_{chosen}.toml" in os.listdir(out / "candidates")
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 12 + 1  # and the rule
    assert trials.loc[trials["chosen"], "confirmed"].item()
    again = summary["recheck"]
    assert again["scale"] == 250 and again["feasible"]  # a finer scale, a new seed
    # the exported scenario, re-run on seeds the search never saw, meets the constraints
    spec = load_spec(out.parent / "spec.toml")
    sc = load_scenario(out / "chosen.toml")
    for variant, _ in spec.variants:
        params = Params().with_overrides(deep_merge(spec.variant_overrides(variant), sc.overrides))
        for seed in (31, 32):
            frame = simulate(params, seed, spec.scale, spec.until)
            values = measure_values(frame, spec.constraints)
            for c, v in zip(spec.constraints, values, strict=True):
                assert (c.margin(np.asarray(v)) >= 0).all(), (c.label, v)
    assert (
        main(
            [
                "run",
                str(out / "chosen.toml"),
                "--out",
                str(tmp_path / "run"),
                "-q",
                "--scale",
                "1000",
                "--until",
                "2016-03",
            ]
        )
        == 0
    )
    assert "Optimisation" in (out / "optimise.html").read_text(encoding="utf-8")


def test_more_trials_extend_the_same_search(tmp_path: Path) -> None:
    path = _spec(tmp_path, SMALL.replace("trials = 12", "trials = 4"))
    out = tmp_path / "out"
    assert main(["optimise", str(path), "--out", str(out), "-q"]) == 0
    first = pd.read_csv(out / "trials.csv")
    path.write_text(SMALL.replace("trials = 12", "trials = 7"), encoding="utf-8")
    assert main(["optimise", str(path), "--out", str(out), "-q"]) == 0
    more = pd.read_csv(out / "trials.csv")
    numbered = more[more["trial"] != "rule"]
    assert list(numbered["trial"].astype(int)) == list(range(7))
    lever = "policy.private_beds_added"
    assert list(more[lever][:4]) == list(first[lever][:4])
    keys = [
        tuple(json.loads(line)[k] for k in ("phase", "trial", "variant", "seed"))
        for line in (out / JOURNAL).read_text().splitlines()
    ]
    assert len(keys) == len(set(keys))


# A constraint no candidate can meet (beds per 1,000 far beyond any lever) beside one they all
# meet: reported as unreachable, the Pareto set is of the candidates meeting the other, and the
# candidate closest to the constraints is re-run on new seeds.
UNREACHABLE = """
name = "unreachable"
scenario = "plan_2016_2020"
seeds = [1, 2]
validation_seeds = [7]
recheck = { scale = 1000, seeds = [8] }
until = "2016-12"
scale = 1000
trials = 6
batch = 3

[levers]
"policy.private_beds_added" = [0, 30000]
"money.price_private_home" = [1500.0, 6000.0]

[[objectives]]
kpi = "spending_total"
direction = "minimise"

[[objectives]]
kpi = "beds_per_1000"
month = "2016-12"

[[constraints]]
kpi = "beds_per_1000"
month = "2016-12"
target = 500.0

[[constraints]]
kpi = "unmet_need_share"
month = "2016-12"
target = 1.0
"""


def test_a_constraint_no_candidate_meets_is_reported_and_the_closest_rechecked(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    outcome = run_optimise(load_spec(_spec(tmp_path, UNREACHABLE)), out, progress=False)
    spec = outcome.spec
    assert outcome.chosen is None and not outcome.any_feasible
    assert outcome.unreachable == [0]
    # the Pareto set: the non-dominated candidates meeting the other constraint
    assert outcome.front and all(c.feasible(spec, ignore=[0]) for c in outcome.front)
    best = max(c.objectives(spec)[1] for c in outcome.candidates)
    closest = outcome.closest
    assert closest is not None and closest.objectives(spec)[1] == best
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chosen"] is None and summary["closest"] == closest.number
    assert summary["unreachable"] == ["beds_per_1000 2016-12 Taiyuan"]
    again = summary["recheck"]
    assert again["role"] == "closest" and again["trial"] == closest.number
    assert not again["feasible"] and again["held"]["beds_per_1000 2016-12 Taiyuan"] == 0.0
    assert 0 < again["values"]["beds_per_1000 2016-12 Taiyuan"]["mean"] < 500
    assert set(summary["phase_seconds"]) == {"search", "recheck", "rule"}
    # at equal service the rule is still compared: the cheapest candidate at least as good on
    # service that holds each constraint as often as the rule
    cmp = summary["rule"]
    if cmp["match"] is not None:
        m = cmp["match"]
        assert all(m["service"][k] >= v for k, v in cmp["rule_service"].items())
        assert m["saving"] == pytest.approx(cmp["rule_cost"] - m["cost"])
        assert all(m["held"][k] >= v for k, v in cmp["rule_held"].items())
    page = (out / "optimise.html").read_text(encoding="utf-8")
    assert "None reached" in page and f"number {closest.number}" in page


def test_targets_at_the_rule_are_the_rules_values_on_the_same_runs(tmp_path: Path) -> None:
    text = UNREACHABLE.replace("target = 500.0", 'target = "rule"').replace(
        "target = 1.0", 'target = "rule"\ndistrict = "each"'
    )
    out = tmp_path / "out"
    outcome = run_optimise(load_spec(_spec(tmp_path, text)), out, progress=False)
    spec, rule = outcome.spec, outcome.rule
    assert rule is not None and all(c.target is not None for c in spec.constraints)
    n = len(spec.objectives)
    runs = list(rule.runs["search"].values())
    for j, c in enumerate(spec.constraints):
        worst = np.nanmin if c.goal == ">=" else np.nanmax
        # the rule's worst district (with a value), averaged over its runs
        assert c.target == pytest.approx(np.mean([worst(r[n + j]) for r in runs]))
    summary = json.loads((out / "summary.json").read_text())
    assert [c["target"] for c in summary["constraints"]] == [c.target for c in spec.constraints]
    assert "the rule&#x27;s value on the same runs" in (out / "optimise.html").read_text("utf-8")
    # resumed: the same targets from the journal, nothing run again
    lines = (out / JOURNAL).read_text().count("\n")
    again = run_optimise(load_spec(tmp_path / "spec.toml"), out, progress=False)
    assert again.spec.constraints == spec.constraints
    assert (out / JOURNAL).read_text().count("\n") == lines
    with pytest.raises(ScenarioError, match="needs the rule"):
        load_spec_text(text.replace("batch = 3", "batch = 3\nrule = false"))


def test_the_report_section_reads_the_folder_in_both_languages(tmp_path: Path) -> None:
    from sim.experiments.planning.section import optimise_section
    from sim.experiments.results import OutputError

    out = tmp_path / "out"
    outcome = run_optimise(
        load_spec(_spec(tmp_path, SMALL.replace("trials = 12", "trials = 4"))), out,
        progress=False,
    )  # fmt: skip
    zh = optimise_section(out, "zh")
    en = optimise_section(out, "en")
    assert zh.startswith("<section") and zh.endswith("</section>")
    assert "优化结果" in zh and "帕累托前沿" in zh and "Optimisation" in en
    assert "data:image/png;base64," in zh and "data:image/png;base64," in en
    if outcome.chosen is not None:
        assert f"candidate {outcome.chosen.number}" in en
        assert f"第 {outcome.chosen.number} 号候选" in zh
    for d in outcome.spec.decisions:
        assert f"<code>{d.name}</code>" in en
    assert "40 beds per 1,000" in en and "每千名老人 40 张床位" in zh
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError, match="no eldercare optimise output"):
        optimise_section(empty)


def _journal_lines(out: Path) -> int:
    path = out / JOURNAL
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_killed_again_and_again_then_resumed_equals_a_clean_search(tmp_path: Path) -> None:
    text = SMALL.replace("validation_seeds = [7]", "validation_seeds = []")
    path = _spec(tmp_path, text.replace("trials = 12", "trials = 8"))
    clean = tmp_path / "clean"
    run_optimise(load_spec(path), clean, progress=False)
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "sim",
        "optimise",
        str(path),
        "--out",
        str(out),
        "-q",
        "--workers",
        "2",
    ]
    draw = random.Random(22)
    for attempt in range(2):
        before = _journal_lines(out)
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 300
        while _journal_lines(out) == before and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        try:
            proc.wait(timeout=draw.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL) if attempt % 2 else proc.kill()
            proc.wait()
        while session_processes(proc.pid):
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
    assert main(["optimise", str(path), "--out", str(out), "-q"]) == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "trials.csv"), pd.read_csv(clean / "trials.csv")
    )
    journal = Journal(out / JOURNAL)
    assert len(journal.records) == len((out / JOURNAL).read_text().splitlines())
    assert sorted(journal.records) == sorted(Journal(clean / JOURNAL).records)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_torn_last_line_is_dropped_and_redone(tmp_path: Path) -> None:
    path = _spec(tmp_path, SMALL.replace("trials = 12", "trials = 3"))
    out = tmp_path / "out"
    spec = load_spec(path)
    run_optimise(spec, out, progress=False)
    whole = (out / JOURNAL).read_bytes()
    (out / JOURNAL).write_bytes(whole[: len(whole) - 40])  # killed while writing the last line
    run_optimise(spec, out, progress=False)
    assert (out / JOURNAL).read_bytes().count(b"\n") == whole.count(b"\n")


def test_refuses_to_mix_other_searches_or_folders(tmp_path: Path, capsys) -> None:
    path = _spec(tmp_path, SMALL.replace("trials = 12", "trials = 3"))
    out = tmp_path / "out"
    assert main(["optimise", str(path), "--out", str(out), "-q"]) == 0
    before = tree(out)
    other = _spec(
        tmp_path, SMALL.replace("trials = 12", "trials = 3").replace("[1, 2]", "[3]"), "other.toml"
    )
    fails(["optimise", str(other), "--out", str(out), "-q"], capsys, str(out), "different")
    assert tree(out) == before
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["code_digest"] = "0" * 16
    (out / "manifest.json").write_text(json.dumps(manifest))
    fails(["optimise", str(path), "--out", str(out), "-q"], capsys, "other code")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    fails(["optimise", str(path), "--out", str(foreign), "-q"], capsys, "other files")
    assert os.listdir(foreign) == ["notes.txt"]


def test_a_journal_line_of_other_parameters_is_refused(tmp_path: Path, capsys) -> None:
    path = _spec(tmp_path, SMALL.replace("trials = 12", "trials = 3"))
    out = tmp_path / "out"
    assert main(["optimise", str(path), "--out", str(out), "-q"]) == 0
    lines = (out / JOURNAL).read_text().splitlines()
    rec = json.loads(lines[0])
    rec["identity"]["params_hash"] = "f" * 16
    (out / JOURNAL).write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    fails(["optimise", str(path), "--out", str(out), "-q"], capsys, "other values")


BAD = [
    ("bogus = 1\n", "bogus", "unknown key"),
    ('[levers]\n"policy.nope" = [0, 1]\n', "levers.policy.nope", "unknown parameter"),
    (
        '[levers]\n"money.price_private_home" = [0.0, 9000.0]\n',
        "price_private_home",
        "[1500, 6000]",
    ),
    ('[levers]\n"money.urban_income" = [0, 1]\n', "urban_income", "urban_income[0]"),
    (
        '[levers]\n"policy.private_beds_added" = { range = [0, 1], years = [2015, 2016] }\n',
        "years",
        "[2016, 2020]",
    ),
    ('[levers]\n"policy.beds_added_per_year_after_2020[3]" = [0, 1]\n', "[3]", "0..2"),
    ('[levers]\n"policy.private_beds_added" = [5, 1]\n', "private_beds_added", "lo < hi"),
    ('[[objectives]]\nkpi = "spending_totl"\n', "objectives[0].kpi", "spending_total"),
    ('[[objectives]]\nkpi = "spending_total"\n', "direction", "minimise"),
    ('[[constraints]]\nkpi = "unmet_need_share"\n', "target", "no plan target"),
    ('[[constraints]]\nkpi = "beds_per_1000"\nprobability = 1.5\n', "probability", "(0, 1]"),
    ('[[constraints]]\nkpi = "beds_per_1000"\ndistrict = "Springfield"\n', "district", "Xiaodian"),
    ('[[constraints]]\nkpi = "beds_per_1000"\nmonth = "2030-12"\n', "period", "until"),
    ("validation_seeds = [1]\n", "validation_seeds", "differ"),
    ("trials = 0\n", "trials", "[1, 10000]"),
    ('sampler = "cmaes"\n', "sampler", "tpe"),
    ('variants = ["demography_nope"]\n', "variants", "demography_"),
]
BASE = """
name = "bad"
seeds = [1]
until = "2016-12"
scale = 1000
"""
GOOD_LEVER = '[levers]\n"policy.voucher_amount" = [0.0, 500.0]\n'
GOOD_OBJECTIVE = '[[objectives]]\nkpi = "unmet_need_share"\n'


@pytest.mark.parametrize(("text", "field", "allowed"), BAD)
def test_bad_spec_one_line_exit_2(tmp_path: Path, capsys, text, field, allowed) -> None:
    top = text if not text.startswith("[") else ""
    tables = "" if top else text
    body = BASE + top
    body += GOOD_LEVER if "[levers]" not in tables else ""
    body += tables
    body += GOOD_OBJECTIVE if "[[objectives]]" not in tables else ""
    path = _spec(tmp_path, body)
    fails(
        ["optimise", str(path), "--out", str(tmp_path / "out")], capsys, str(path), field, allowed
    )
    assert not (tmp_path / "out").exists()


def test_decisions_spread_over_their_years_and_set_elements() -> None:
    spec = load_spec_text(
        BASE
        + """
[levers]
"policy.private_beds_added" = { range = [0, 30000], years = [2017, 2018] }
"policy.beds_added_per_year_after_2020[1]" = [0, 500]
"services.staff_per_team" = [1.0, 15.0]
"policy.voucher_min_state" = [2, 4]
"""
        + GOOD_OBJECTIVE
    )
    over = decision_overrides(
        spec,
        {
            "policy.private_beds_added": 1001,
            "policy.beds_added_per_year_after_2020[1]": 37,
            "services.staff_per_team": 6.5,
            "policy.voucher_min_state": 3,
        },
    )
    pol = over["policy"]
    assert pol["private_beds_added"] == [2750, 501, 500, 2751, 2751]  # the plan's other years
    assert pol["beds_added_per_year_after_2020"] == [0, 37, 0]
    assert pol["voucher_min_state"] == 3 and isinstance(pol["voucher_min_state"], int)
    assert over["services"]["staff_per_team"] == 6.5
    Params().with_overrides(spec.overrides({d.name: d.lo for d in spec.decisions}, CENTRAL))


def test_violation_is_the_margin_of_the_deciding_run() -> None:
    spec = load_spec_text(
        BASE
        + GOOD_LEVER
        + GOOD_OBJECTIVE
        + """
[[constraints]]
kpi = "beds_per_1000"
target = 40.0
probability = 0.8
"""
    )
    runs = {("central", s): [[0.1], [40.0 + d]] for s, d in enumerate([-4, 2, 1, -0.4, 3])}
    cand = Candidate(0, {}, {"search": runs})
    # 5 runs, 4 must hold: the 2nd worst margin (-0.4 / 40) decides
    assert cand.violations(spec) == pytest.approx([0.01])
    assert cand.held(spec) == [0.6] and not cand.feasible(spec)
    runs[("central", 3)] = [[0.1], [40.0]]
    assert cand.feasible(spec)


def test_the_rule_reaches_its_ratio_of_the_projection() -> None:
    spec = load_spec_text(BASE.replace("2016-12", "2025-12") + GOOD_LEVER + GOOD_OBJECTIVE)
    over = rule_overrides(spec)["policy"]
    pol = Params().policy
    total_2020 = (
        pol.public_beds_2015
        + pol.private_beds_2015
        + pol.medical_beds_2015
        + sum(
            sum(over[k]) for k in ("public_beds_added", "private_beds_added", "medical_beds_added")
        )
    )
    from sim.population.projection import project

    assert total_2020 == pytest.approx(40 * project(Params()).on(2021)["60+"] / 1000, abs=1)
    assert sum(over["beds_added_per_year_after_2020"]) > 0


def test_spec_errors_name_the_file() -> None:
    with pytest.raises(ScenarioError, match="<x>: levers"):
        spec_from_dict({"objectives": [{"kpi": "unmet_need_share"}]}, "<x>")


def test_shipped_spec_loads() -> None:
    for path in sorted(Path("scenarios/optimise").glob("*.toml")):
        spec = load_spec(path)
        assert len(spec.decisions) >= 10 and spec.constraints


def test_app_panel_searches_in_memory_and_shows_the_chosen_plan() -> None:
    import ipyvuetify as v
    import solara

    from sim.app.optimise_panel import OptimisePanel, PanelRequest, PanelResultView, run_panel

    req = PanelRequest(
        target=0.2,
        districts=("Xiaodian",),
        unmet=0.6,
        trials=4,
        scale=1000.0,
        levers=("services.teams_added", "services.medical_staff_share"),
    )
    ticks: list[float] = []
    res = run_panel(req, ticks.append, lambda: False)
    assert ticks and ticks[-1] == pytest.approx(1.0)
    assert res is not None and res.outcome.chosen is not None and res.frame is not None
    assert len(res.outcome.candidates) == 4 and res.png.startswith(b"\x89PNG")
    _, rc = solara.render(PanelResultView(res, "en"), handle_error=False)
    svg = rc.find(solara.widgets.HTML).widget.unsafe_innerHTML
    assert svg.count('class="district"') == 10
    _, rc = solara.render(OptimisePanel("zh"), handle_error=False)
    assert rc.find(v.Btn, children=["开始优化"]).widgets
    assert run_panel(req, ticks.append, lambda: True) is None  # cancelled
