"""The optimisation spec (`eldercare optimise SPEC.toml`): decision variables, objectives and
constraints, and the uncertainty every candidate is evaluated under.

    name = "least_cost_2025"
    scenario = "plan_2016_2020"          # the base; a shipped scenario name or a path
    variants = ["demography_low", "demography_high"]   # besides the base (the central variant)
    seeds = [1, 2]                       # or replications = 2, seed = 1; the same for every
                                         # candidate (common random numbers)
    validation_seeds = [101, 102]        # fresh seeds that confirm the feasible candidates
    recheck = { scale = 1, seeds = [201, 202] }   # the chosen plan re-run (e.g. full city)
    until = "2025-12"
    scale = 10
    trials = 120                         # candidates in all
    batch = 8                            # candidates proposed at a time (the parallel width)
    sampler = "tpe"                      # or "nsga2"
    sampler_seed = 1
    rule = { beds_per_1000 = 40.0 }      # the plan's rule to compare with (false: none)

    [levers]                             # decision variables: dotted parameter paths
    "money.price_private_home" = [1500.0, 6000.0]
    "policy.private_beds_added" = [0, 40000]     # a yearly lever: its sum, spread like the plan
    "policy.medical_beds_added" = { range = [0, 20000], years = [2016, 2018] }
    "policy.beds_added_per_year_after_2020[2]" = [0, 5000]    # one element of a tuple

    [[objectives]]                       # the first is the cost; the others the service
    kpi = "spending_total"               # a KPI of sim/kpis/registry.py
    period = ["2016-01", "2025-12"]      # default: 2016-01 .. until
    # stat = "sum"                       # default: flows per month summed, others averaged
    # district = "Taiyuan"               # the city (default) or a district

    [[constraints]]
    kpi = "unmet_need_share"
    month = "2025-12"                    # or period = [first, last]
    district = "each"                    # must hold in every district (or a name, or a list)
    target = 0.25                        # default: the plan's target of the KPI; "rule": the
                                         # rule's value on the same runs (equal service)
    # comparison = "<="                  # default: the KPI's (or from its direction)
    probability = 0.9                    # share of (variant, seed) runs in which it holds

Every problem raises `ScenarioError(file, field, message)`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.calendar import CARE_START, month_label
from sim.experiments.batch import lever_info, nested
from sim.experiments.scenario import (
    Scenario,
    ScenarioError,
    apply_params,
    check_scale,
    check_seed,
    check_until,
    deep_merge,
    load_scenario,
    read_toml,
    resolve_path,
    unknown_key,
)
from sim.kpis.frame import CITY
from sim.kpis.registry import BY_NAME, KPI
from sim.params.sections import Params
from sim.population.geography import DISTRICT_CODES, allocate_largest_remainder

SPEC_KEYS = ("name", "description", "scenario", "variants", "seeds", "replications", "seed",
             "validation_seeds", "recheck", "until", "scale", "trials", "batch", "sampler",
             "sampler_seed", "rule", "levers", "objectives", "constraints")  # fmt: skip
MEASURE_KEYS = ("kpi", "district", "period", "month", "stat", "direction")
CONSTRAINT_KEYS = (*MEASURE_KEYS[:-1], "target", "comparison", "probability")
SAMPLERS = ("tpe", "nsga2")
STATS = ("sum", "mean", "last", "min", "max")
EACH = "each"  # a constraint that must hold in every district
RULE_TARGET = "rule"  # a constraint's target: the plan's rule's value on the same runs
CENTRAL = "central"  # the base scenario's own demography
MAX_TRIALS = 10_000
# element i of a yearly lever's tuple is the calendar year 2016 + i (care.facilities'
# _yearly_additions reads them so)
FIRST_PLAN_YEAR = 2016
_ELEMENT = re.compile(r"(?P<path>[\w.]+)\[(?P<index>\d+)\]")


@dataclass(frozen=True)
class Decision:
    """One decision variable. A scalar parameter (`elements` empty), one element of a tuple, or a
    yearly lever's sum over some of its years, spread over them like `weights`."""

    name: str  # as written in the spec
    path: str
    lo: float
    hi: float
    integer: bool
    elements: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()

    def cast(self, value: float) -> int | float:
        return round(value) if self.integer else float(value)

    def set(self, flat: dict[str, Any], value: float) -> None:
        """Write this decision's `value` into `flat` (dotted path -> value; tuples as lists)."""
        if not self.elements:
            flat[self.path] = self.cast(value)
            return
        if self.integer:
            parts = allocate_largest_remainder(round(value), np.asarray(self.weights)).tolist()
        else:
            parts = (np.asarray(self.weights) / sum(self.weights) * value).tolist()
        for i, part in zip(self.elements, parts, strict=True):
            flat[self.path][i] = part


@dataclass(frozen=True)
class Measure:
    """A KPI aggregated over a period, in the city or some districts. For an objective `goal` is
    'minimise' or 'maximise'; for a constraint '>=' or '<=' against `target`, to hold (in every
    district named) in at least `probability` of the runs."""

    kpi: str
    districts: tuple[str, ...]
    first: str
    last: str
    stat: str
    goal: str
    target: float | None = None
    probability: float = 1.0
    rule_target: bool = False  # target = "rule": the rule's value on the same runs (set by
    # `with_rule_targets` once the rule has run)

    @property
    def label(self) -> str:
        where = "each district" if len(self.districts) > 1 else self.districts[0]
        when = self.first if self.first == self.last else f"{self.first}..{self.last}"
        stat = "" if self.first == self.last else f" {self.stat}"
        return f"{self.kpi}{stat} {when} {where}"

    def margin(self, values: np.ndarray) -> np.ndarray:
        """How far each value is on the right side of the target, relative to the target (a
        missing value counts as missing the target by 100%)."""
        scale = abs(self.target) if self.target else 1.0
        side = values - self.target if self.goal == ">=" else self.target - values
        return np.where(np.isnan(side), -1.0, side / scale)


@dataclass(frozen=True)
class OptimiseSpec:
    name: str
    description: str
    source: str
    scenario: Scenario
    variants: tuple[tuple[str, dict[str, Any]], ...]  # (name, overrides); the central first
    seeds: tuple[int, ...]
    validation_seeds: tuple[int, ...]
    until: str
    scale: float
    trials: int
    batch: int
    sampler: str
    sampler_seed: int
    decisions: tuple[Decision, ...]
    objectives: tuple[Measure, ...]
    constraints: tuple[Measure, ...]
    rule_beds_per_1000: float | None
    recheck_scale: float | None = None  # the chosen plan re-run at this scale on recheck_seeds
    recheck_seeds: tuple[int, ...] = ()

    @property
    def evaluations(self) -> tuple[tuple[str, int], ...]:
        """The (variant, seed) runs of a candidate in the search."""
        return tuple((v, s) for v, _ in self.variants for s in self.seeds)

    def overrides(self, values: dict[str, float], variant: str) -> dict[str, Any]:
        """The parameter overrides of a candidate (decision name -> value) in a variant."""
        return deep_merge(self.variant_overrides(variant), decision_overrides(self, values))

    def variant_overrides(self, variant: str) -> dict[str, Any]:
        return deep_merge(self.scenario.overrides, dict(self.variants)[variant])

    def fingerprint(self) -> str:
        """Identity of the search (not of its name, trial count or validation): a resume with
        more trials extends the same search; anything else that differs is another search."""
        key = {
            "overrides": self.scenario.overrides,
            "variants": list(self.variants),
            "seeds": list(self.seeds),
            "until": self.until,
            "scale": self.scale,
            "batch": self.batch,
            "sampler": [self.sampler, self.sampler_seed],
            "decisions": [asdict(d) for d in self.decisions],
            "objectives": [asdict(m) for m in self.objectives],
            "constraints": [asdict(m) for m in self.constraints],
        }
        text = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_rule_targets(spec: OptimiseSpec, values: list[list[list[float]]]) -> OptimiseSpec:
    """The spec with each `target = "rule"` constraint's target set to the rule's value: per
    run, the value in its worst district with a value (the one that decides), averaged over the
    rule's runs (`values[run][measure]`: the measures as `search.evaluate` returns them,
    objectives first)."""
    n = len(spec.objectives)
    out = []
    for j, c in enumerate(spec.constraints):
        if c.rule_target:
            worst = np.nanmin if c.goal == ">=" else np.nanmax
            runs = [np.asarray(r[n + j], dtype=float) for r in values]
            known = [float(worst(v)) for v in runs if not np.isnan(v).all()]
            if not known:
                raise ScenarioError(
                    spec.source, "constraints", f"the rule gives no value of {c.label} to match"
                )
            c = dataclasses.replace(c, target=float(np.mean(known)))
        out.append(c)
    return dataclasses.replace(spec, constraints=tuple(out))


def param_value(params: Params, path: str) -> Any:
    return functools.reduce(getattr, path.split("."), params)


def decision_overrides(spec: OptimiseSpec, values: dict[str, float]) -> dict[str, Any]:
    """Nested overrides setting every decision (tuples start from the base scenario's values)."""
    flat: dict[str, Any] = {}
    for d in spec.decisions:
        if d.elements and d.path not in flat:
            flat[d.path] = list(param_value(spec.scenario.params, d.path))
        d.set(flat, values[d.name])
    out: dict[str, Any] = {}
    for path, value in flat.items():
        out = deep_merge(out, nested(path, value))
    return out


# -- loading ---------------------------------------------------------------------------------------
def load_spec(path: str | Path) -> OptimiseSpec:
    """Parse and validate an optimisation spec file."""
    p = resolve_path(path, what="optimisation spec")
    return spec_from_dict(read_toml(p), str(p), p.parent)


def spec_from_dict(data: dict[str, Any], src: str, here: Path | None = None) -> OptimiseSpec:
    """Validate a parsed spec (also what the app builds); `here`: the folder of relative paths."""
    for key in data:
        if key not in SPEC_KEYS:
            unknown_key(src, key, SPEC_KEYS)
    scenario = _scenario(src, data.get("scenario", "plan_2016_2020"), here, "scenario")
    variants: list[tuple[str, dict[str, Any]]] = [(CENTRAL, {})]
    names = data.get("variants", [])
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise ScenarioError(src, "variants", "expected a list of scenario names or paths")
    for ref in names:
        variant = _scenario(src, ref, here, "variants")
        if any(ref == v for v, _ in variants):
            raise ScenarioError(src, "variants", f"{ref!r} is named twice")
        variants.append((ref, variant.overrides))
        apply_params(src, deep_merge(scenario.overrides, variant.overrides), f"variants.{ref}")
    until = check_until(src, data.get("until", scenario.until))
    scale = check_scale(src, data.get("scale", scenario.scale))
    seeds = _seeds(src, data, scenario.seed)
    validation = tuple(
        check_seed(src, s, "validation_seeds") for s in _list(src, data, "validation_seeds")
    )
    if set(validation) & set(seeds):
        raise ScenarioError(src, "validation_seeds", "must differ from the search's seeds")
    decisions = _decisions(src, data.get("levers"), scenario.params)
    objectives = tuple(
        _measure(src, f"objectives[{i}]", m, until, objective=True)
        for i, m in enumerate(_tables(src, data, "objectives", need=True))
    )
    constraints = tuple(
        _measure(src, f"constraints[{i}]", m, until, objective=False)
        for i, m in enumerate(_tables(src, data, "constraints", need=False))
    )
    sampler = data.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ScenarioError(src, "sampler", f"expected one of {', '.join(SAMPLERS)}")
    name = data.get("name", Path(src).stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not name or not isinstance(description, str):
        raise ScenarioError(src, "name", "name and description must be strings")
    spec = OptimiseSpec(
        name=name,
        description=description,
        source=src,
        scenario=scenario,
        variants=tuple(variants),
        seeds=seeds,
        validation_seeds=validation,
        until=until,
        scale=scale,
        trials=_whole(src, data, "trials", 50, MAX_TRIALS),
        batch=_whole(src, data, "batch", 4, 256),
        sampler=sampler,
        sampler_seed=check_seed(src, data.get("sampler_seed", 1), "sampler_seed"),
        decisions=decisions,
        objectives=objectives,
        constraints=constraints,
        rule_beds_per_1000=_rule(src, data.get("rule", {})),
        **_recheck(src, data.get("recheck"), seeds),
    )
    if any(c.rule_target for c in constraints) and not spec.rule_beds_per_1000:
        raise ScenarioError(src, "rule", f"a constraint's target '{RULE_TARGET}' needs the rule")
    middle = {d.name: d.cast((d.lo + d.hi) / 2) for d in decisions}
    apply_params(src, spec.overrides(middle, CENTRAL), "levers")
    return spec


def _scenario(src: str, ref: Any, here: Path | None, field: str) -> Scenario:
    if not isinstance(ref, str) or not ref:
        raise ScenarioError(src, field, "expected a scenario name or a path to a .toml")
    try:
        return load_scenario(resolve_path(ref, here))
    except ScenarioError as err:
        if err.file == ref:
            raise ScenarioError(src, field, err.message) from None
        raise


def _list(src: str, data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ScenarioError(src, key, "expected a list")
    return value


def _whole(src: str, data: dict, key: str, default: int, hi: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ScenarioError(src, key, f"expected a whole number in [1, {hi}], got {value!r}")
    return value


def _seeds(src: str, data: dict, first: int) -> tuple[int, ...]:
    if "seeds" in data:
        if "replications" in data or "seed" in data:
            raise ScenarioError(src, "seeds", "give either seeds or replications and seed")
        seeds = tuple(check_seed(src, s, "seeds") for s in _list(src, data, "seeds"))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ScenarioError(src, "seeds", "expected a non-empty list of distinct seeds")
        return seeds
    reps = _whole(src, data, "replications", 1, 1000)
    start = check_seed(src, data.get("seed", first))
    return tuple(start + i for i in range(reps))


def _tables(src: str, data: dict, key: str, need: bool) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ScenarioError(src, key, f"expected [[{key}]] tables")
    if need and not value:
        raise ScenarioError(src, key, "name at least one objective (the first is the cost)")
    return value


def _rule(src: str, value: Any) -> float | None:
    """The plan's beds-per-1,000 rule to compare with (default: the KPI's plan target)."""
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) - {"beds_per_1000"}:
        raise ScenarioError(src, "rule", "expected { beds_per_1000 = N } or false")
    ratio = value.get("beds_per_1000", BY_NAME["beds_per_1000"].target)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 200:
        raise ScenarioError(
            src, "rule.beds_per_1000", f"expected a number in (0, 200], got {ratio!r}"
        )
    return float(ratio)


def _recheck(src: str, value: Any, seeds: tuple[int, ...]) -> dict[str, Any]:
    """{ scale = S, seeds = [...] }: re-run the chosen plan (none if not given)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) != {"scale", "seeds"}:
        raise ScenarioError(src, "recheck", "expected { scale = S, seeds = [s1, s2] }")
    scale = check_scale(src, value["scale"], "recheck.scale")
    listed = value["seeds"] if isinstance(value["seeds"], list) else []
    again = tuple(check_seed(src, s, "recheck.seeds") for s in listed)
    if not again or len(set(again)) != len(again) or set(again) & set(seeds):
        raise ScenarioError(src, "recheck.seeds", "expected distinct seeds the search does not use")
    return {"recheck_scale": scale, "recheck_seeds": again}


def _bounds(src: str, field: str, value: Any) -> tuple[float, float, dict[str, Any]]:
    """[lo, hi] or { range = [lo, hi], years = [first, last] }."""
    extra: dict[str, Any] = {}
    if isinstance(value, dict):
        for key in value:
            if key not in ("range", "years"):
                unknown_key(src, key, ("range", "years"), prefix=f"{field}.")
        extra = {k: v for k, v in value.items() if k != "range"}
        value = value.get("range")
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not value[0] < value[1]:
        raise ScenarioError(src, field, "expected [lo, hi] with lo < hi")
    return float(value[0]), float(value[1]), extra


def _decisions(src: str, levers: Any, params: Params) -> tuple[Decision, ...]:
    if not isinstance(levers, dict) or not levers:
        raise ScenarioError(src, "levers", "expected a table of 'section.name' = [lo, hi]")
    out, taken = [], {}
    for name, value in levers.items():
        field = f"levers.{name}"
        lo, hi, extra = _bounds(src, field, value)
        match = _ELEMENT.fullmatch(name)
        path = match["path"] if match else name
        info = lever_info(src, "levers", path, scalar=False)
        current = param_value(params, path)
        years = extra.get("years")
        if not isinstance(current, tuple) or info.default == ():
            if match or years is not None:
                raise ScenarioError(src, field, "only a list parameter has elements or years")
            lever_info(src, "levers", path, scalar=True)
            elements, weights, n = (), (), 1
        elif match:
            index = int(match["index"])
            if index >= len(current) or years is not None:
                raise ScenarioError(src, field, f"index allowed 0..{len(current) - 1}, no years")
            elements, weights, n = (index,), (1.0,), 1
        else:
            elements = _years(src, field, info, len(current), years)
            base = [float(current[i]) for i in elements]
            weights = tuple(base) if sum(base) > 0 else (1.0,) * len(elements)
            n = len(elements)
        if not info.lo * n <= lo < hi <= info.hi * n:
            what = "the sum of its years within" if n > 1 else "within"
            raise ScenarioError(
                src, field, f"expected [lo, hi] {what} [{info.lo * n:g}, {info.hi * n:g}]"
            )
        for i in elements or (-1,):
            if (path, i) in taken:
                raise ScenarioError(src, field, f"sets what {taken[path, i]} already sets")
            taken[path, i] = name
        sample = current[0] if elements else current
        integer = isinstance(sample, int) and not isinstance(sample, bool)
        out.append(Decision(name, path, lo, hi, integer, elements, weights))
    return tuple(out)


def _years(src: str, field: str, info, size: int, years: Any) -> tuple[int, ...]:
    """The elements of a yearly lever's tuple that its decision spreads over."""
    if info.lever is None or info.lever.mode == "value":
        raise ScenarioError(
            src, field, f"a list that is not a yearly lever: name one element, e.g. {info.path}[0]"
        )
    last = FIRST_PLAN_YEAR + size - 1
    if years is None:
        return tuple(range(size))
    ok = isinstance(years, list) and len(years) == 2
    ok = ok and all(isinstance(y, int) and not isinstance(y, bool) for y in years)
    if not ok or not FIRST_PLAN_YEAR <= years[0] <= years[1] <= last:
        raise ScenarioError(
            src, f"{field}.years", f"expected [first, last] within [{FIRST_PLAN_YEAR}, {last}]"
        )
    return tuple(range(years[0] - FIRST_PLAN_YEAR, years[1] - FIRST_PLAN_YEAR + 1))


def _districts(src: str, field: str, value: Any) -> tuple[str, ...]:
    names = {n.lower(): n for n in (*DISTRICT_CODES, CITY)}
    if value == EACH:
        return DISTRICT_CODES
    listed = value if isinstance(value, list) else [value]
    out = []
    for v in listed:
        if not isinstance(v, str) or v.lower() not in names:
            allowed = f"'{EACH}', {CITY} or a district: {', '.join(DISTRICT_CODES)}"
            raise ScenarioError(src, field, f"unknown district {v!r}; allowed {allowed}")
        out.append(names[v.lower()])
    if not out or len(set(out)) != len(out):
        raise ScenarioError(src, field, "expected distinct districts")
    return tuple(out)


def _kpi(src: str, field: str, name: Any) -> KPI:
    if not isinstance(name, str) or name not in BY_NAME:
        import difflib

        hint = difflib.get_close_matches(str(name), list(BY_NAME), n=1)
        tail = f"did you mean '{hint[0]}'?" if hint else "see `eldercare kpis`"
        raise ScenarioError(src, field, f"unknown KPI {name!r}; {tail}")
    return BY_NAME[name]


def _measure(src: str, where: str, table: dict, until: str, objective: bool) -> Measure:
    keys = MEASURE_KEYS if objective else CONSTRAINT_KEYS
    for key in table:
        if key not in keys:
            unknown_key(src, key, keys, prefix=f"{where}.")
    kpi = _kpi(src, f"{where}.kpi", table.get("kpi"))
    districts = _districts(src, f"{where}.district", table.get("district", CITY))
    if objective and len(districts) > 1:
        raise ScenarioError(
            src, f"{where}.district", "an objective is for one district or the city"
        )
    first, last = _period(src, where, table, until)
    default_stat = "sum" if kpi.kind == "amount" and kpi.unit.endswith("/month") else "mean"
    stat = table.get("stat", default_stat)
    if stat not in STATS:
        raise ScenarioError(src, f"{where}.stat", f"expected one of {', '.join(STATS)}")
    if objective:
        default = {"lower": "minimise", "higher": "maximise"}.get(kpi.better or "")
        goal = table.get("direction", default)
        if goal not in ("minimise", "maximise"):
            msg = f"{kpi.name} has no direction; give direction = 'minimise' or 'maximise'"
            raise ScenarioError(src, f"{where}.direction", msg)
        return Measure(kpi.name, districts, first, last, stat, goal)
    target = table.get("target", kpi.target)
    rule_target = target == RULE_TARGET
    if rule_target:
        target = math.nan
    elif isinstance(target, bool) or not isinstance(target, (int, float)) or target != target:
        raise ScenarioError(
            src, f"{where}.target", f"{kpi.name} has no plan target; give one (or '{RULE_TARGET}')"
        )
    plan_side = {">": ">=", ">=": ">="}.get(kpi.comparison or "", kpi.comparison)
    default = plan_side or {"higher": ">=", "lower": "<="}.get(kpi.better or "")
    comparison = table.get("comparison", default)
    if comparison not in (">=", "<="):
        raise ScenarioError(src, f"{where}.comparison", "expected '>=' or '<='")
    probability = table.get("probability", 0.9)
    ok = isinstance(probability, (int, float)) and not isinstance(probability, bool)
    if not ok or not 0 < probability <= 1:
        raise ScenarioError(src, f"{where}.probability", f"expected (0, 1], got {probability!r}")
    return Measure(
        kpi.name,
        districts,
        first,
        last,
        stat,
        comparison,
        None if rule_target else float(target),
        float(probability),
        rule_target,
    )


def _period(src: str, where: str, table: dict, until: str) -> tuple[str, str]:
    if "month" in table and "period" in table:
        raise ScenarioError(src, f"{where}.month", "give month or period, not both")
    if "month" in table:
        first = last = check_until(src, table["month"], f"{where}.month")
    else:
        period = table.get("period", [month_label(CARE_START), until])
        if not isinstance(period, list) or len(period) != 2:
            raise ScenarioError(src, f"{where}.period", "expected ['YYYY-MM', 'YYYY-MM']")
        first, last = (check_until(src, m, f"{where}.period") for m in period)
    if not first <= last <= until:
        raise ScenarioError(src, f"{where}.period", f"expected first <= last <= until ({until})")
    return first, last
