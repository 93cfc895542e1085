"""What an optimisation reports: the table of candidates, the Pareto set (cost against service),
the chosen plan confirmed on new seeds, the comparison with the plan's beds-per-1,000 rule at
equal service, each Pareto candidate as a scenario file and a chart. The report section (Chinese
or English) is `section.optimise_section`, read from the folder.

Every figure is a model outcome: the mean over the runs (variants x seeds) at the spec's scale,
or the share of those runs in which a constraint holds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
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
    closest: Candidate | None = None  # no candidate met every constraint: the nearest one
    unreachable: list[int] = field(default_factory=list)  # constraints no candidate met
    phase_seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase

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
        """The chosen plan (or, if no candidate met every constraint, the closest one) re-run at
        the recheck scale on new seeds: its objectives, the share of runs in which each
        constraint holds, and each constraint's value in its deciding district (mean, min, max
        over the runs). None: not run."""
        c, spec = self.chosen or self.closest, self.spec
        if c is None or RECHECK not in c.runs:
            return None
        labels = [m.label for m in spec.objectives]
        values = {
            m.label: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
            for m, v in zip(spec.constraints, c.decisive_values(spec, RECHECK), strict=True)
        }
        return {
            "trial": c.number,
            "role": "chosen" if c is self.chosen else "closest",
            "scale": spec.recheck_scale,
            "seeds": list(spec.recheck_seeds),
            "runs": len(c.runs[RECHECK]),
            "objectives": dict(zip(labels, c.objectives(spec, RECHECK), strict=True)),
            "held": {m.label: h for m, h in zip(spec.constraints, c.held(spec, RECHECK),
                                                strict=True)},
            "values": values,
            "feasible": c.feasible(spec, RECHECK),
        }  # fmt: skip

    def rule_comparison(self) -> dict[str, Any] | None:
        """The rule against the cheapest candidate that gives at least its service: at least as
        good on every service objective (the objectives after the first), and either feasible or
        holding each constraint in at least the share of runs the rule does ('at equal
        service'; this also compares when no candidate meets every constraint)."""
        if self.rule is None:
            return None
        spec = self.spec
        cost = spec.objectives[0]
        rule = self.rule.objectives(spec)
        rule_held = self.rule.held(spec)
        sign = [1 if m.goal == "minimise" else -1 for m in spec.objectives]

        def as_good(c: Candidate) -> bool:
            mine = c.objectives(spec)
            service = all(s * mine[i] <= s * rule[i] for i, s in enumerate(sign) if i > 0)
            held = all(h >= r for h, r in zip(c.held(spec), rule_held, strict=True))
            return service and (c.feasible(spec) or held)

        matches = [c for c in self.candidates if as_good(c)]
        best = min(matches, key=lambda c: (sign[0] * c.objectives(spec)[0], c.number), default=None)
        out: dict[str, Any] = {
            "ratio": spec.rule_beds_per_1000,
            "cost_label": cost.label,
            "rule_cost": rule[0],
            "rule_service": dict(
                zip([m.label for m in spec.objectives[1:]], rule[1:], strict=True)
            ),
            "rule_feasible": self.rule.feasible(spec),
            "rule_held": dict(zip([m.label for m in spec.constraints], rule_held, strict=True)),
            "match": None,
        }
        if best is not None:
            got = best.objectives(spec)
            out["match"] = {
                "trial": best.number,
                "cost": got[0],
                "service": dict(zip(out["rule_service"], got[1:], strict=True)),
                "held": dict(zip(out["rule_held"], best.held(spec), strict=True)),
                "feasible": best.feasible(spec),
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
