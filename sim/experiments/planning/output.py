"""What an optimisation reports: the table of candidates, the Pareto set (cost against service),
the chosen plan confirmed on new seeds, the comparison with the plan's beds-per-1,000 rule at
equal service, each Pareto candidate as a scenario file, a chart and an HTML section.

Every figure is a model outcome: the mean over the runs (variants x seeds) at the spec's scale,
or the share of those runs in which a constraint holds.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.planning.search import RECHECK, VALIDATE, Candidate
from sim.experiments.planning.spec import OptimiseSpec, decision_overrides
from sim.experiments.scenario import deep_merge, dumps_scenario
from sim.kpis.registry import BY_NAME


@dataclass
class Outcome:
    """The result of a search: every candidate, the Pareto set, the chosen one, the rule."""

    spec: OptimiseSpec
    candidates: list[Candidate]
    front: list[Candidate]
    chosen: Candidate | None
    rule: Candidate | None
    seconds: float = 0.0

    @property
    def any_feasible(self) -> bool:
        return any(c.feasible(self.spec) for c in self.candidates)

    def confirmed(self, cand: Candidate) -> bool | None:
        """Whether the candidate meets the constraints on the validation seeds (None: not run)."""
        return cand.feasible(self.spec, VALIDATE) if VALIDATE in cand.runs else None

    def table(self) -> pd.DataFrame:
        """One row per candidate: decision values, objectives, constraints, status."""
        front = {c.number for c in self.front}
        rows = [self._row(c, c.number in front) for c in self.candidates]
        if self.rule is not None:
            rows.append(self._row(self.rule, False))
        return pd.DataFrame(rows)

    def _row(self, c: Candidate, on_front: bool) -> dict[str, Any]:
        spec = self.spec
        row: dict[str, Any] = {"trial": c.number if c is not self.rule else "rule"}
        row.update(c.values)
        row.update({m.label: v for m, v in zip(spec.objectives, c.objectives(spec), strict=True)})
        for m, held, viol in zip(spec.constraints, c.held(spec), c.violations(spec), strict=True):
            row[f"held: {m.label}"] = held
            row[f"violation: {m.label}"] = viol
        row["feasible"] = c.feasible(spec)
        row["pareto"] = on_front
        row["confirmed"] = self.confirmed(c)
        row["chosen"] = c is self.chosen
        return row

    def recheck(self) -> dict[str, Any] | None:
        """The chosen plan re-run at the recheck scale on new seeds (None: not run)."""
        c, spec = self.chosen, self.spec
        if c is None or RECHECK not in c.runs:
            return None
        labels = [m.label for m in spec.objectives]
        return {
            "scale": spec.recheck_scale,
            "seeds": list(spec.recheck_seeds),
            "objectives": dict(zip(labels, c.objectives(spec, RECHECK), strict=True)),
            "held": {m.label: h for m, h in zip(spec.constraints, c.held(spec, RECHECK),
                                                strict=True)},
            "feasible": c.feasible(spec, RECHECK),
        }  # fmt: skip

    def rule_comparison(self) -> dict[str, Any] | None:
        """The rule against the cheapest Pareto candidate at least as good on every service
        objective (the objectives after the first) and feasible: 'at equal service'."""
        if self.rule is None:
            return None
        spec = self.spec
        cost = spec.objectives[0]
        rule = self.rule.objectives(spec)
        sign = [1 if m.goal == "minimise" else -1 for m in spec.objectives]

        def as_good(c: Candidate) -> bool:
            mine = c.objectives(spec)
            return all(s * mine[i] <= s * rule[i] for i, s in enumerate(sign) if i > 0)

        matches = [c for c in self.front if c.feasible(spec) and as_good(c)]
        best = min(matches, key=lambda c: sign[0] * c.objectives(spec)[0], default=None)
        out: dict[str, Any] = {
            "ratio": spec.rule_beds_per_1000,
            "cost_label": cost.label,
            "rule_cost": rule[0],
            "rule_service": dict(
                zip([m.label for m in spec.objectives[1:]], rule[1:], strict=True)
            ),
            "rule_feasible": self.rule.feasible(spec),
            "rule_held": dict(
                zip([m.label for m in spec.constraints], self.rule.held(spec), strict=True)
            ),
            "match": None,
        }
        if best is not None:
            got = best.objectives(spec)
            out["match"] = {
                "trial": best.number,
                "cost": got[0],
                "service": dict(zip(out["rule_service"], got[1:], strict=True)),
                "saving": rule[0] - got[0],
                "saving_share": (rule[0] - got[0]) / rule[0] if rule[0] else float("nan"),
            }
        return out

    def scenario_text(self, cand: Candidate, seed: int | None = None) -> str:
        """The candidate as a scenario file `eldercare run` loads (full city by default)."""
        spec = self.spec
        over = deep_merge(spec.scenario.overrides, decision_overrides(spec, cand.values))
        objectives = "; ".join(
            f"{m.label} = {v:,.4g}"
            for m, v in zip(spec.objectives, cand.objectives(spec), strict=True)
        )
        comment = (
            f"Candidate {cand.number} of `eldercare optimise` {spec.source}\n"
            f"base scenario {spec.scenario.name}; search at scale {spec.scale:g}, mean over "
            f"{len(spec.evaluations)} runs: {objectives}"
        )
        first = seed if seed is not None else (spec.validation_seeds or spec.seeds)[0]
        return dumps_scenario(
            f"{spec.name}_trial{cand.number}",
            spec.description or spec.name,
            spec.until,
            first,
            1.0,
            over,
            comment,
        )

    def rule_text(self, overrides: dict[str, Any]) -> str:
        spec = self.spec
        over = deep_merge(spec.scenario.overrides, overrides)
        comment = (
            f"The plan's rule: {spec.rule_beds_per_1000:g} beds per 1,000 residents 60+ "
            f"(search.rule_overrides), base scenario {spec.scenario.name}"
        )
        name = f"{spec.name}_rule"
        return dumps_scenario(
            name, "beds per 1,000 rule", spec.until, spec.seeds[0], 1.0, over, comment
        )


def chart_png(outcome: Outcome) -> bytes:
    """Cost against the first service objective: every candidate, the feasible ones, the
    Pareto set, the chosen one and the rule (cost against trial if there is one objective)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    spec = outcome.spec
    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    ax = fig.add_subplot()

    def xy(c: Candidate) -> tuple[float, float]:
        obj = c.objectives(spec)
        return (obj[0], obj[1]) if len(obj) > 1 else (c.number, obj[0])

    groups = (
        ("candidates", outcome.candidates, dict(color="#bbbbbb", s=14)),
        ("feasible", [c for c in outcome.candidates if c.feasible(spec)], dict(color="C0", s=18)),
        ("Pareto set", outcome.front, dict(color="C3", s=30)),
    )
    for label, cands, style in groups:
        if cands:
            pts = np.array([xy(c) for c in cands])
            ax.scatter(pts[:, 0], pts[:, 1], label=label, **style)
    if outcome.chosen is not None:
        x, y = xy(outcome.chosen)
        ax.scatter([x], [y], marker="o", s=140, facecolors="none", edgecolors="k", label="chosen")
    if outcome.rule is not None and len(spec.objectives) > 1:
        x, y = xy(outcome.rule)
        ax.scatter(
            [x],
            [y],
            marker="*",
            s=200,
            color="C2",
            label=f"{spec.rule_beds_per_1000:g} beds per 1,000 rule",
        )
    if len(spec.objectives) > 1:
        ax.set_xlabel(_axis(spec.objectives[0]))
        ax.set_ylabel(_axis(spec.objectives[1]))
    else:
        ax.set_xlabel("trial")
        ax.set_ylabel(_axis(spec.objectives[0]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(
        f"{spec.name}: mean over {len(spec.evaluations)} runs, scale {spec.scale:g}", fontsize=10
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _axis(m) -> str:
    kpi = BY_NAME[m.kpi]
    unit = "yuan" if m.stat == "sum" and kpi.unit == "yuan/month" else kpi.unit
    return f"{m.label} ({unit}, {m.goal})"


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)) or value is None:
        return {True: "yes", False: "no", None: "—"}[None if value is None else bool(value)]
    if isinstance(value, (int, float, np.floating, np.integer)):
        return f"{value:,.4g}" if value == value else "—"
    return html.escape(str(value))


def report_section(outcome: Outcome, png: bytes) -> str:
    """The optimisation as an HTML fragment (a section of a report)."""
    spec = outcome.spec
    table = outcome.table()
    front = table[table["pareto"]]
    levers = "".join(
        f"<li><code>{html.escape(d.name)}</code> in [{d.lo:,g}, {d.hi:,g}]"
        f"{' (sum over its years)' if len(d.elements) > 1 else ''}</li>"
        for d in spec.decisions
    )
    goals = "".join(f"<li>{m.goal} {html.escape(m.label)}</li>" for m in spec.objectives)
    goals += "".join(
        f"<li>{html.escape(m.label)} {m.goal} {m.target:g} with probability ≥ {m.probability:g}"
        "</li>"
        for m in spec.constraints
    )
    variants = ", ".join(name for name, _ in spec.variants)
    parts = [
        f"<section class='optimise'><h2>Optimisation: {html.escape(spec.name)}</h2>",
        f"<p>{html.escape(spec.description)}</p>",
        f"<p>{len(spec.decisions)} levers, {len(outcome.candidates)} candidates, each run on "
        f"the variants {html.escape(variants)} x seeds {list(spec.seeds)} (the same runs for "
        f"every candidate) at scale {spec.scale:g} to {spec.until}; sampler {spec.sampler}. "
        f"Figures are model outcomes: means over those runs, and for each constraint the share "
        f"of runs in which it holds. Wall time {outcome.seconds:,.0f} s.</p>",
        f"<h3>Levers (decision variables)</h3><ul>{levers}</ul>",
        f"<h3>Objectives and constraints</h3><ul>{goals}</ul>",
        f"<img alt='Pareto set' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
    ]
    if not outcome.any_feasible:
        parts.append("<p><b>No candidate met the constraints</b>; shown: the least violation.</p>")
    parts.append("<h3>Pareto set</h3>" + _html_table(front.drop(columns=["pareto"])))
    if outcome.chosen is not None:
        c = outcome.chosen
        confirmed = outcome.confirmed(c)
        held = ""
        if confirmed is not None:
            shares = ", ".join(
                f"{html.escape(m.label)}: {s:.0%}"
                for m, s in zip(spec.constraints, c.held(spec, VALIDATE), strict=True)
            )
            held = (
                f" On the validation seeds {list(spec.validation_seeds)} it "
                f"{'meets' if confirmed else 'does not meet'} the constraints ({shares})."
            )
        again = outcome.recheck()
        if again is not None:
            shares = ", ".join(f"{html.escape(k)}: {v:.0%}" for k, v in again["held"].items())
            held += (f" Re-run at scale {again['scale']:g} on seeds {again['seeds']} (every "
                     f"variant) it {'meets' if again['feasible'] else 'does not meet'} them "
                     f"({shares}).")  # fmt: skip
        parts.append(
            f"<h3>Chosen plan</h3><p>Trial {c.number}: the least {spec.objectives[0].label} "
            f"among the Pareto set{' confirmed on new seeds' if confirmed else ''}.{held} "
            f"Scenario file: <code>candidates/trial_{c.number}.toml</code>.</p>"
        )
    comparison = outcome.rule_comparison()
    if comparison is not None:
        parts.append(_rule_html(comparison))
    parts.append("</section>")
    return "".join(parts)


def _rule_html(cmp: dict[str, Any]) -> str:
    service = ", ".join(f"{html.escape(k)} = {_fmt(v)}" for k, v in cmp["rule_service"].items())
    held = ", ".join(f"{html.escape(k)}: {v:.0%}" for k, v in cmp["rule_held"].items())
    text = (
        f"<h3>Against the plan's rule of {cmp['ratio']:g} beds per 1,000</h3><p>The rule "
        f"(<code>rule.toml</code>) costs {_fmt(cmp['rule_cost'])} "
        f"({html.escape(cmp['cost_label'])})"
        f"{' with ' + service if service else ''}; its constraints hold in {held or '—'} of the "
        f"runs ({'feasible' if cmp['rule_feasible'] else 'not feasible'}). "
    )
    match = cmp["match"]
    if match is None:
        return text + "No Pareto candidate matches its service.</p>"
    return text + (
        f"At equal or better service, trial {match['trial']} costs {_fmt(match['cost'])}: "
        f"{_fmt(match['saving'])} less ({match['saving_share']:.1%}).</p>"
    )


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_page(outcome: Outcome, png: bytes) -> str:
    """The optimisation as one self-contained HTML page (optimise.html)."""
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}"
    )
    title = f"Taiyuan elderly care: optimisation {html.escape(outcome.spec.name)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{report_section(outcome, png)}</body></html>"
    )
