"""Validation: the patterns the model is judged against and never fitted to (pattern-oriented
modelling, Grimm et al. 2005, Science 310:987).

Each pattern is a 'validate' row of calibration/targets.csv (value, tolerance, check, source and
one line on why it is a fair test); the fits refuse those rows (`calibrate.fit_value`). This
module measures each pattern on model runs (`observe`: one run per seed that records what the
patterns need), compares it with its row, and writes calibration/validation.md, a figure and a
status file that the tests compare with. A row with check 'not_testable' is reported as "not
testable yet", the reason in its why_fair text. Nothing here tunes a parameter.

The observation window runs from 2017-01-01 to 2020-01-01 (the stocks at the end of 2016-12 and
of 2019-12): three years, as between CLHLS waves, after the care system's 2016 start and before
2020.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binom, poisson

from sim.care.admission import admit
from sim.care.choice import probabilities
from sim.care.facilities import FacilityTable
from sim.care.kinds import PRIVATE, RESIDENTIAL_OPTIONS
from sim.core.model import CareModel
from sim.engine.calendar import month_index, month_label
from sim.experiments.calibrate import CalibrationError, load_targets, met
from sim.kpis.frame import CITY
from sim.params.sections import Params
from sim.population.families import CHILD_CORESIDENT, NO_SPOUSE
from sim.population.kernel import NEED_LEVEL

ROOT = Path(__file__).resolve().parents[2]
TARGETS_PATH = ROOT / "calibration" / "targets.csv"
REPORT_PATH = ROOT / "calibration" / "validation.md"
STATUS_PATH = REPORT_PATH.with_suffix(".csv")

BASELINE, FOLLOW_UP = "2016-12", "2019-12"  # the stocks on 2017-01-01 and 2020-01-01
MULTIMORBIDITY_STOCK = "2018-12"  # the stock on 2019-01-01, for CLHLS 2018
CENSUS_STOCK = "2020-10"  # the stock on 2020-11-01, the census day
LAST = "2020-12"
PASS, MISS, NOT_TESTABLE = "pass", "miss", "not testable yet"
NO_EVENTS = "no seed had the events to measure it at this scale: run at a finer scale"
DEPENDENT = 3  # health states 3-4: partially or fully dependent (the census 'unable to self-care')
AGE_BANDS = (60, 65, 70, 75, 80, 85, 90, 95)  # strata of the rate ratios (with sex)
MULTIMORBIDITY_AGES = {"65-74": (65, 74), "75-84": (75, 84), "85+": (85, 200)}


class ValidationError(ValueError):
    """A bad validation row or request (one line)."""


# -- one run: what the patterns need ----------------------------------------------------------
@dataclass
class Cohort:
    """Residents alive at the baseline (2017-01-01), followed to 2020-01-01."""

    age: np.ndarray  # years at the baseline
    sex: np.ndarray
    health: np.ndarray  # state at the baseline
    in_bed: np.ndarray  # in a bed at the baseline
    with_others: np.ndarray  # with a spouse (resident or not) or a co-resident child
    months: np.ndarray  # months observed: to death, moving out or the follow-up
    died: np.ndarray  # died in the window
    present: np.ndarray  # alive and in Taiyuan at the follow-up
    health_end: np.ndarray  # state at the follow-up (meaningful where present)
    in_bed_end: np.ndarray  # in a bed at the follow-up
    admitted: np.ndarray  # at home at the baseline, entered a bed in the window
    months_home: np.ndarray  # months at home: to admission, death, moving out or the follow-up


@dataclass
class Observation:
    """What one run (one seed) records for the patterns."""

    seed: int
    scale: float
    city: pd.DataFrame  # the city's metrics, indexed by month
    living_alone_2016: float
    intention_2020: float
    cohort: Cohort
    stays: np.ndarray  # months of each bed stay that ended in the window
    medical_by_age: dict[str, float]  # share with the chronic-condition flag, 2019-01-01
    census: dict[str, float]  # shares on 2020-11-01


def in_bed(model: CareModel, rows: np.ndarray) -> np.ndarray:
    """Whether each of `rows` holds a bed (nursing home or integrated), not a day place."""
    held = model.pop.facility[rows]
    return (held >= 0) & model.places.residential[np.maximum(held, 0)]


def living_alone(model: CareModel, rows: np.ndarray) -> np.ndarray:
    """No spouse (resident or not) and no co-resident child."""
    pop = model.pop
    return (pop.spouse[rows] == NO_SPOUSE) & (pop.child_place[rows] != CHILD_CORESIDENT)


def residential_intention(model: CareModel) -> float:
    """The share of the 60+ who would choose a residential option if they decided now: the
    logit probability summed over those needing care (others choose family care only)."""
    pop, choice = model.pop, model.choice
    rows = model.needy_rows
    rows = rows[NEED_LEVEL[pop.health[rows]] > 0]
    prob = probabilities(choice.utilities(choice.option_features(rows)))
    return float(prob[:, list(RESIDENTIAL_OPTIONS)].sum() / pop.alive_rows().size)


def observe(
    params: Params, seed: int, scale: float, progress: Callable[[int], None] | None = None
) -> Observation:
    """One run to 2020-12, stepped month by month through the window to follow the baseline
    cohort and the stays that end. `progress(n)` is called with the months run."""
    model = CareModel(seed=seed, scale=scale, params=params)
    pop = model.pop

    def run_to(label: str) -> None:
        before = model.month
        model.run_until(label)
        if progress is not None:
            progress(model.month - before)

    run_to("2016-01")
    living_alone_2016 = float(living_alone(model, pop.alive_rows()).mean())

    run_to(BASELINE)
    first, end = month_index(BASELINE) + 1, month_index(FOLLOW_UP) + 1  # window: [first, end)
    rows = pop.alive_rows().copy()
    bed0 = in_bed(model, rows)
    age = (pop.age_m[rows] // 12).astype(np.int64)
    sex = pop.sex[rows].astype(np.int64)
    health = pop.health[rows].astype(np.int64)
    with_others = (pop.spouse[rows] != NO_SPOUSE) | (pop.child_place[rows] == CHILD_CORESIDENT)
    admitted_month = np.full(rows.size, -1, dtype=np.int64)
    stays: list[np.ndarray] = []
    medical_by_age: dict[str, float] = {}
    for month in range(first, end):
        occupied = pop.alive_rows()
        occupied = occupied[in_bed(model, occupied)]
        since = pop.bed_since[occupied].astype(np.int64)
        run_to(month_label(month))
        ended = ~in_bed(model, occupied) | (pop.bed_since[occupied] != since)
        stays.append(month - since[ended])
        waiting = np.flatnonzero(~bed0 & (admitted_month < 0) & pop.alive[rows])
        admitted_month[waiting[in_bed(model, rows[waiting])]] = month
        if month_label(month) == MULTIMORBIDITY_STOCK:
            alive = pop.alive_rows()
            years = pop.age_m[alive] // 12
            for name, (lo, hi) in MULTIMORBIDITY_AGES.items():
                sel = (years >= lo) & (years <= hi)
                medical_by_age[name] = float(pop.medical[alive[sel]].mean())

    death = pop.death_month[rows].astype(np.int64)
    gone = pop.left_month[rows].astype(np.int64)
    died = (death >= first) & (death < end)
    moved = (gone >= first) & (gone < end) & ~died
    out_month = np.where(died, death, np.where(moved, gone, end))
    half = np.where(died | moved, 0.5, 0.0)  # an exit in a month counts half of it
    admitted = admitted_month >= 0
    home_until = np.where(admitted, admitted_month, out_month)
    present = pop.alive[rows].copy()
    cohort = Cohort(
        age=age,
        sex=sex,
        health=health,
        in_bed=bed0,
        with_others=with_others,
        months=out_month - first + half,
        died=died,
        present=present,
        health_end=pop.health[rows].astype(np.int64),
        in_bed_end=in_bed(model, rows) & present,
        admitted=admitted,
        months_home=home_until - first + np.where(admitted, 0.5, half),
    )

    run_to(CENSUS_STOCK)
    alive = pop.alive_rows()
    years = pop.age_m[alive] // 12
    old = alive[years >= 80]
    census = {
        "empty_nest": float((pop.child_place[alive] != CHILD_CORESIDENT).mean()),
        "living_alone_80plus": float((living_alone(model, old) & ~in_bed(model, old)).mean()),
    }
    run_to(LAST)
    intention = residential_intention(model)
    frame = model.metrics()
    city = frame[frame["district"] == CITY].set_index("month")
    return Observation(
        seed=seed,
        scale=scale,
        city=city,
        living_alone_2016=living_alone_2016,
        intention_2020=intention,
        cohort=cohort,
        stays=np.concatenate(stays).astype(np.float64),
        medical_by_age=medical_by_age,
        census=census,
    )


def months_observed() -> int:
    """Months `observe` runs (for a progress bar)."""
    return month_index(LAST) + 1


def needs_run(names: list[str] | None = None) -> bool:
    """Whether any of the patterns (default: all) needs a model run."""
    chosen = PATTERNS if names is None else [BY_NAME[n] for n in names]
    return any(p.statistic is not None for p in chosen)


# -- statistics ---------------------------------------------------------------------------------
def rate_ratio(
    exposed: np.ndarray, reference: np.ndarray, events: np.ndarray, months: np.ndarray,
    strata: np.ndarray,
) -> float:  # fmt: skip
    """Mantel-Haenszel rate ratio of `events` per month of exposure, exposed vs reference,
    over `strata` (whole numbers); NaN when either side has no events."""
    sel = exposed | reference
    s, e, d, t = strata[sel], exposed[sel], events[sel].astype(float), months[sel]
    n = int(s.max()) + 1 if s.size else 1
    d1, t1 = (np.bincount(s[e], w[e], minlength=n) for w in (d, t))
    d0, t0 = (np.bincount(s[~e], w[~e], minlength=n) for w in (d, t))
    total = np.where(t0 + t1 > 0, t0 + t1, np.inf)
    num, den = np.sum(d1 * t0 / total), np.sum(d0 * t1 / total)
    return float(num / den) if num > 0 and den > 0 else float("nan")


def sex_age_strata(c: Cohort) -> np.ndarray:
    return c.sex * len(AGE_BANDS) + np.digitize(c.age, AGE_BANDS) - 1


def odds_ratio(exposed: np.ndarray, outcome: np.ndarray) -> float:
    """Odds ratio of `outcome`, exposed vs not (0.5 added to every cell if one is empty)."""
    cells = np.array(
        [
            [np.sum(exposed & outcome), np.sum(exposed & ~outcome)],
            [np.sum(~exposed & outcome), np.sum(~exposed & ~outcome)],
        ],
        dtype=float,
    )
    if (cells == 0).any():
        cells += 0.5
    return float(cells[0, 0] * cells[1, 1] / (cells[0, 1] * cells[1, 0]))


def _window(city: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    return city.loc[first:last]


def bed_exit_death_share(o: Observation) -> float:
    w = _window(o.city, "2017-01", FOLLOW_UP)
    deaths = w["bed_exits_death"].sum()
    return float(deaths / (deaths + w["bed_exits_alive"].sum()))


def bed_stay_months(o: Observation) -> float:
    return float(o.stays.mean()) if o.stays.size else float("nan")


def _admission_rate(c: Cohort, lo: int, hi: int) -> float:
    sel = ~c.in_bed & (c.age >= lo) & (c.age <= hi)
    years = c.months_home[sel].sum() / 12
    return float(c.admitted[sel].sum() / years) if years > 0 else float("nan")


def institutionalisation_ratio(o: Observation) -> float:
    young = _admission_rate(o.cohort, 70, 79)
    return _admission_rate(o.cohort, 80, 200) / young if young > 0 else float("nan")


def institutionalisation_or(o: Observation) -> float:
    c = o.cohort
    sel = (c.age >= 65) & ~c.in_bed & c.present
    return odds_ratio((c.health_end > c.health)[sel], c.in_bed_end[sel])


def mortality_hr_dependent(o: Observation) -> float:
    c = o.cohort
    old = c.age >= 65
    return rate_ratio(
        old & (c.health >= DEPENDENT), old & (c.health <= 1), c.died, c.months, sex_age_strata(c)
    )


def mortality_hr_institution(o: Observation, by_state: bool = False) -> float:
    c = o.cohort
    strata = sex_age_strata(c) * (5 if by_state else 1) + (c.health if by_state else 0)
    return rate_ratio(c.in_bed, ~c.in_bed & c.with_others, c.died, c.months, strata)


def incidence(o: Observation, at_risk_below: int = DEPENDENT) -> float:
    """Per 1000 person-years: residents 65+ below state `at_risk_below` at the baseline found
    at or above it at the follow-up (cases seen at the follow-up, as between survey waves)."""
    c = o.cohort
    sel = (c.age >= 65) & (c.health < at_risk_below)
    cases = np.sum(sel & c.present & (c.health_end >= at_risk_below))
    return float(1000 * cases / (c.months[sel].sum() / 12))


def multimorbidity_oldest(o: Observation) -> float:
    return o.medical_by_age["85+"] - o.medical_by_age["75-84"]


def vacancy_paradox(o: Observation) -> float:
    w = _window(o.city, "2019-01", "2019-12")
    empty = (w["empty_beds"] / (w["empty_beds"] + w["residents_in_institutions"])).mean()
    return float(min(empty, w["unmet_need_share"].mean()))


# -- a queue against queueing theory ------------------------------------------------------------
@dataclass(frozen=True)
class QueueConfig:
    """Independent homes of `beds` beds, applications Poisson at `load` x beds / stay a month,
    stays memoryless with mean `stay_months`."""

    homes: int = 200
    beds: int = 20
    stay_months: float = 42.0
    load: float = 0.85
    months: int = 3000
    burn_in: int = 1000

    @property
    def leave_probability(self) -> float:
        return float(1 - np.exp(-1 / self.stay_months))

    @property
    def arrivals_per_month(self) -> float:
        return self.load * self.beds / self.stay_months


QUEUE = QueueConfig()


def erlang_c(servers: int, load_erlangs: float) -> float:
    """Probability of waiting in an M/M/c queue (continuous time), via Erlang B."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load_erlangs * b / (k + load_erlangs * b)
    return servers * b / (servers - load_erlangs * (1 - b))


def queue_theory(q: QueueConfig = QUEUE, cap: int = 200) -> float:
    """The share of applicants who wait at least a month, exactly, for the model's month:
    residents leave (each with the monthly probability), then the month's applications arrive
    (Poisson), then the free beds admit the queue in order. A Markov chain on the number in the
    home or waiting at the month's end (truncated at `cap`), solved for its stationary law."""
    c, p, lam = q.beds, q.leave_probability, q.arrivals_per_month
    k = np.arange(int(poisson.ppf(1 - 1e-12, lam)) + 1)
    pk = poisson.pmf(k, lam)
    chain = np.zeros((cap + 1, cap + 1))
    waits = np.zeros(cap + 1)
    for n in range(cap + 1):
        busy, queued = min(n, c), max(n - c, 0)
        for d, pd_ in enumerate(binom.pmf(np.arange(busy + 1), busy, p)):
            free = c - busy + d
            np.add.at(chain[n], np.minimum(n - d + k, cap), pd_ * pk)
            admitted_new = np.clip(free - queued, 0, k)
            waits[n] += pd_ * np.sum(pk * (k - admitted_new))
    vals, vecs = np.linalg.eig(chain.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi /= pi.sum()
    return float(pi @ waits / lam)


def simulate_queue(seed: int, q: QueueConfig = QUEUE) -> float:
    """The share of applicants not admitted in the month they apply, through the model's
    admission (`sim.care.admission.admit`: priority, application month, keyed tie-break, never
    above capacity), with departures and applications drawn here."""
    n = q.homes
    table = FacilityTable(
        kind=np.full(n, PRIVATE, np.int8),
        district=np.zeros(n, np.int8),
        neigh=np.zeros(n, np.int32),
        capacity=np.full(n, q.beds, np.int32),
        capacity_rows=np.full(n, q.beds, np.int32),
        open_month=np.full(n, -1, np.int16),
        medical_draw=np.ones(n),
        occupancy=np.full(n, round(q.load * q.beds), np.int32),
    )
    rng = np.random.default_rng(seed)
    rows = np.zeros(0, np.int64)
    home = np.zeros(0, np.int64)
    since = np.zeros(0, np.int64)
    next_row = applied = waited = 0
    for month in range(q.months):
        table.occupancy -= rng.binomial(table.occupancy, q.leave_probability).astype(np.int32)
        k = rng.poisson(q.arrivals_per_month, n)
        new = int(k.sum())
        rows = np.r_[rows, np.arange(next_row, next_row + new)]
        home = np.r_[home, np.repeat(np.arange(n), k)]
        since = np.r_[since, np.full(new, month)]
        next_row += new
        ok = admit(table, 0, rows, home, np.zeros(rows.size, np.int64), since, seed)
        if np.any(table.occupancy > table.capacity_rows):
            raise AssertionError("admission exceeded capacity")
        if month >= q.burn_in:
            applied += new
            waited += int(np.sum(~ok & (since == month)))
        rows, home, since = rows[~ok], home[~ok], since[~ok]
    return waited / applied


# -- the patterns -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """How a validate row of targets.csv is measured: `statistic` of one run (None: not testable
    yet), or `standalone` of a seed (no model run: a mechanism in isolation); `detail`: a line
    of figures beside it; `if_missed`: the mechanism most likely behind a miss."""

    name: str
    statistic: Callable[[Observation], float] | None = None
    standalone: Callable[[int], float] | None = None
    detail: Callable[[Observation], str] | None = None
    if_missed: str = ""


def _detail_multimorbidity(o: Observation) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in o.medical_by_age.items())


def _detail_incidence(o: Observation) -> str:
    broad = incidence(o, at_risk_below=2)
    return f"into state 2+ (unhealthy or worse) from 0-1: {broad:.1f} per 1000 person-years"


def _detail_institution(o: Observation) -> str:
    c = o.cohort
    share = np.mean(c.health[c.in_bed] >= DEPENDENT) if c.in_bed.any() else float("nan")
    adjusted = mortality_hr_institution(o, by_state=True)
    return (
        f"share dependent of those in beds {share:.2f}; the ratio adjusted for the health "
        f"state too {adjusted:.2f}"
    )


def _detail_or(o: Observation) -> str:
    c = o.cohort
    sel = (c.age >= 65) & ~c.in_bed & c.present & c.in_bed_end
    worse = np.mean((c.health_end > c.health)[sel]) if sel.any() else float("nan")
    return f"of the 65+ in a bed at the follow-up, {worse:.2f} had worsened"


def _detail_vacancy(o: Observation) -> str:
    w = _window(o.city, "2019-01", "2019-12")
    empty = (w["empty_beds"] / (w["empty_beds"] + w["residents_in_institutions"])).mean()
    return f"beds empty {empty:.2f}, dependents with unmet need {w['unmet_need_share'].mean():.2f}"


def _detail_rates(o: Observation) -> str:
    young, old = (_admission_rate(o.cohort, lo, hi) for lo, hi in ((70, 79), (80, 200)))
    return f"admissions per person-year at home: 70-79 {young:.4f}, 80+ {old:.4f}"


def _detail_queue(o: Observation | None) -> str:
    value = erlang_c(QUEUE.beds, QUEUE.load * QUEUE.beds)
    return f"Erlang C (continuous time, M/M/{QUEUE.beds}): {value:.3f}"


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "living_alone_share",
        lambda o: o.living_alone_2016,
        if_missed="living alone = no spouse and no co-resident child: the assumed marriage shares "
        "by age (households.married_share_by_age) and the co-resident share (1 - the fitted "
        "empty-nest share) decide it",
    ),
    Pattern(
        "residential_intention_60plus",
        lambda o: o.intention_2020,
        if_missed="the residential constants are fitted to use; intention above stated "
        "willingness would mean the choice over-weights need",
    ),
    Pattern(
        "living_alone_80plus_2020",
        lambda o: o.census["living_alone_80plus"],
        if_missed="the co-resident child share is one number for every age "
        "(households.coresident_child_share, an input), so co-residence cannot rise at the "
        "oldest ages; the married shares at 80-84 and 85+ (assumed) and the widowhood of the "
        "spouse links decide the rest. At a coarse scale fewer spouses find a partner row (they "
        "count as married to someone outside the population), so the share is lower there",
    ),
    Pattern(
        "empty_nest_share_2020",
        lambda o: o.census["empty_nest"],
        if_missed="children are static in the model (where the nearest child lives never "
        "changes, stream CHILD_MOVE unused) and entrants draw co-residence at the 2015 share, "
        "so the empty-nest share cannot rise as children move out",
    ),
    Pattern(
        "bed_exit_death_share",
        bed_exit_death_share,
        if_missed="exits alive need a decision to leave against the switching "
        "cost (assumed) or a move out of Taiyuan; the other kinds of discharge in the Japanese "
        "figure (to hospital, home or another facility) have no counterpart in the model: "
        "hospital admissions are expected values, not events that end a stay, and there are no "
        "transfers between homes",
    ),
    Pattern(
        "bed_stay_months_mean",
        bed_stay_months,
        if_missed="stays are set by who enters (those with care need only: no self-caring "
        "residents in beds) and their mortality by state; stays that began before the care "
        "system's spin-up (2010-11) are cut there",
    ),
    Pattern(
        "institutionalisation_ratio_80_vs_70",
        institutionalisation_ratio,
        detail=_detail_rates,
        if_missed="entry needs a care need (the need gap and "
        "dependency terms of the choice), and dependency rises steeply with age (the census "
        "gradient the health stage is fitted to: unable to self-care 1.3% at 70-74, 6.6% at "
        "75+), so admissions rise with age as dependency does",
    ),
    Pattern(
        "institutionalisation_or_health_decline",
        institutionalisation_or,
        detail=_detail_or,
        if_missed="only residents with a care need decide and "
        "enter beds (states 0-1 can choose family care only; state 2 needs 12 h a month), so "
        "entry follows a worsening of health in most cases (see beside); the published odds "
        "ratio, per decline and adjusted, makes a decline one reason among others. The model "
        "has no other reason to enter a bed (no family at hand without a need, housing, "
        "company)",
    ),
    Pattern(
        "mortality_hr_dependent",
        mortality_hr_dependent,
        if_missed="the state relative risks are the death rates by state of the CLHLS Markov "
        "tables (an input, by age band and sex only), with full dependency at 1.5 times "
        "partial (assumed); the published HR is fully adjusted (for more than age and sex), "
        "which absorbs part of the gradient, while the model's ratio is adjusted for age and sex "
        "only",
    ),
    Pattern(
        "mortality_hr_institution",
        mortality_hr_institution,
        detail=_detail_institution,
        if_missed="selection: about half of the residents in beds are "
        "dependent (see beside), against a few per cent at home, and dependency carries the "
        "CLHLS death rates; adjusted for the health state as well the ratio is about 1, since a "
        "bed changes no hazard in the model (the integrated-care ratio is 1.0). The published "
        "HR is adjusted for covariates the abstract does not list",
    ),
    Pattern(
        "dependency_incidence_65plus",
        incidence,
        detail=_detail_incidence,
        if_missed="the model's dependency is the census's 'unable to self-care' (2.1% of the "
        "60+, fitted), far narrower than CLHLS's ADL disability (help with any of six ADLs, "
        "17% of the 65+ in 2018), so onset into it is several times rarer; onset into the "
        "broader state 2+ (beside) is of CLHLS's order",
    ),
    Pattern(
        "multimorbidity_85_vs_75_84",
        multimorbidity_oldest,
        detail=_detail_multimorbidity,
        if_missed="the chronic-condition flag depends on the health state only (its odds by "
        "state assumed) and does not raise mortality, so there is no survivor effect: its "
        "prevalence rises with age because dependency does",
    ),
    Pattern(
        "queue_wait_probability",
        standalone=lambda seed: simulate_queue(seed),
        detail=_detail_queue,
        if_missed="admission leaves free beds unfilled, admits out of order or above capacity "
        "(a fault of sim.care.admission.admit)",
    ),
    Pattern(
        "vacancy_paradox",
        vacancy_paradox,
        detail=_detail_vacancy,
        if_missed="either the beds fill (use rises with supply) or dependents at home get "
        "enough care (family and home services cover the hours)",
    ),
    Pattern("occupancy_shanghai_2030_zhu2022"),
    Pattern("dependency_incidence_trend"),
)
BY_NAME = {p.name: p for p in PATTERNS}
# Patterns the CI runs at a coarse scale (tests/test_validation.py): their statistics are stable
# with few rows. The bed flows need more rows than a coarse run has, and living alone at 80+
# depends on the spouse pairing, which happens among rows (fewer partners at a coarse scale).
FAST_SUBSET = (
    "living_alone_share",
    "residential_intention_60plus",
    "empty_nest_share_2020",
    "mortality_hr_dependent",
    "dependency_incidence_65plus",
    "multimorbidity_85_vs_75_84",
    "queue_wait_probability",
    "vacancy_paradox",
)


def validation_rows(path: Path = TARGETS_PATH) -> pd.DataFrame:
    """The 'validate' rows of the targets file, each with its why_fair line and a pattern."""
    try:
        targets = load_targets(path)
    except CalibrationError as err:
        raise ValidationError(str(err)) from None
    if "why_fair" not in targets.columns:
        raise ValidationError(f"{path}: missing column why_fair")
    rows = targets[targets["role"] == "validate"]
    for name, row in rows.iterrows():
        if not isinstance(row["why_fair"], str) or not row["why_fair"].strip():
            raise ValidationError(f"{path}: target {name}: a validate row needs why_fair")
        if name not in BY_NAME:
            raise ValidationError(f"{path}: target {name}: no pattern measures it")
        testable = row["check"] != "not_testable"
        pattern = BY_NAME[name]
        if testable != (pattern.statistic is not None or pattern.standalone is not None):
            raise ValidationError(
                f"{path}: target {name}: check {row['check']} does not match its pattern"
            )
    return rows


# -- the suite ----------------------------------------------------------------------------------
def _join_details(seeds: list[int], details: list[str]) -> str:
    """The line beside a pattern: the same for every seed, or the first seed's."""
    if len(set(details)) <= 1:
        return details[0] if details else ""
    return f"seed {seeds[0]}: {details[0]}"


def status(row: pd.Series, simulated: float) -> str:
    """pass / miss for a testable row (a NaN statistic misses), or not testable yet."""
    if row["check"] == "not_testable":
        return NOT_TESTABLE
    if not np.isfinite(simulated):
        return MISS
    return PASS if met(row, simulated) else MISS


def run_suite(
    params: Params,
    seeds: list[int],
    scale: float,
    names: list[str] | None = None,
    targets: Path = TARGETS_PATH,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Every pattern (or `names`) over `seeds`: one row per pattern with the simulated value of
    each seed, their mean, min and max, the target and the status (of the mean)."""
    rows = validation_rows(targets)
    if names is not None:
        unknown = sorted(set(names) - set(rows.index))
        if unknown:
            raise ValidationError(f"unknown pattern {unknown[0]!r}")
        rows = rows.loc[[n for n in rows.index if n in names]]
    patterns = [BY_NAME[n] for n in rows.index]
    values: dict[str, list[float]] = {p.name: [] for p in patterns}
    details: dict[str, list[str]] = {p.name: [] for p in patterns}
    for seed in seeds:
        obs = observe(params, seed, scale, progress) if needs_run(list(rows.index)) else None
        for p in patterns:
            if p.statistic is not None:
                values[p.name].append(p.statistic(obs))
            elif p.standalone is not None:
                values[p.name].append(p.standalone(seed))
            if p.detail is not None and (obs is not None or p.standalone is not None):
                details[p.name].append(p.detail(obs))
    out = []
    for p in patterns:
        row = rows.loc[p.name]
        v = np.array(values[p.name], dtype=float)
        finite = v[np.isfinite(v)]  # a seed with no events to measure (a coarse scale) is left out
        mean = float(np.mean(finite)) if finite.size else float("nan")
        result = status(row, mean)
        explanation = p.if_missed if np.isfinite(mean) else NO_EVENTS
        out.append(
            {
                "pattern": p.name,
                "status": result,
                "simulated": mean,
                "sim_min": float(np.min(finite)) if finite.size else float("nan"),
                "sim_max": float(np.max(finite)) if finite.size else float("nan"),
                "seed_values": " ".join(f"{x:.6g}" for x in v),
                "check": row["check"],
                "target": float(row["value"]),
                "tolerance": float(row["tolerance"]),
                "unit": row["unit"],
                "detail": _join_details(seeds, details[p.name]),
                "explanation": explanation if result == MISS else "",
                "stage": row["stage"],
                "date": row["date"],
                "statistic": row["statistic"],
                "source": row["source"],
                "why_fair": row["why_fair"],
            }
        )
    return pd.DataFrame(out)


# -- outputs ------------------------------------------------------------------------------------
STATUS_COLUMNS = ["pattern", "status", "simulated", "sim_min", "sim_max", "check", "target",
                  "tolerance"]  # fmt: skip
# Candidates read and left out, with why (inputs or fitted values are no test of validity).
LEFT_OUT = (
    "Hospital admissions of older people with chronic disease (CHARLS, 0.276-0.339 a year): an "
    "input of the hospital-admission KPI, not an outcome.",
    "The effect of integrated-care pilots on admissions (CHARLS difference-in-differences, "
    "-15% to -22%) and of unmet need on death (CLHLS about +10%, NLTCS 1.37-1.96): inputs of "
    "the care consequences (docs/ODD.md section 3.5).",
    "Death rates by the number of ADL disabilities (NLTCS 8.7-27.3% a year): the ratio of full "
    "to partial dependency is an assumed input (full_dependency_mortality_ratio).",
    "Disability-free life expectancy at 65 (CLHLS 14.27 years, 86% of life expectancy): follows "
    "from the fitted prevalence of dependency and the mortality inputs (Sullivan's method), and "
    "uses the ADL concept, not the census's.",
    "Prevalence of disability or ADL impairment (18.3% in the 2015 survey of the aged, 17.1% "
    "CLHLS 2018, meta-analyses 20-26%): the model's dependency is the census's 'unable to "
    "self-care', fitted to 2.1%; another concept, not a test.",
    "Multimorbidity levels from other surveys (CHARLS 65.6% in 2018, CLHLS 30.8-33.7% in 2018): "
    "the level is fitted to the 2015 survey of the aged (50.5%); the others count other lists "
    "of conditions.",
    "The '90/7/3' split of care (home / community / institution): a policy heuristic, not a "
    "measurement (national_reference.csv).",
)


def status_frame(table: pd.DataFrame, scale: float, seeds: list[int]) -> pd.DataFrame:
    """What the CI compares with: each pattern's status at the committed scale and seeds."""
    out = table[STATUS_COLUMNS].copy()
    out["scale"] = scale
    out["seeds"] = " ".join(str(s) for s in seeds)
    return out


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "-"
    return f"{x:,.4g}" if abs(x) >= 100 else f"{x:.4g}"


def _criterion(r) -> str:
    if r.check == "not_testable":
        return f"{_fmt(r.target)} (not measured)"
    if r.check == "at_most":
        return f"at most {_fmt(r.target + r.tolerance)}"
    if r.check == "at_least":
        return f"at least {_fmt(r.target - r.tolerance)}"
    lo, hi = _fmt(r.target - r.tolerance), _fmt(r.target + r.tolerance)
    return f"{_fmt(r.target)} ± {_fmt(r.tolerance)} ({lo} to {hi})"


def _simulated(r) -> str:
    if r.status == NOT_TESTABLE or not np.isfinite(r.simulated):
        return "-"
    if r.sim_min == r.sim_max:
        return _fmt(r.simulated)
    return f"{_fmt(r.simulated)} ({_fmt(r.sim_min)} to {_fmt(r.sim_max)})"


def console_table(table: pd.DataFrame) -> str:
    """The pass / miss table the command prints."""
    rows = [
        {
            "#": i,
            "pattern": r.pattern,
            "simulated (range over seeds)": _simulated(r),
            "target": _criterion(r),
            "status": r.status,
        }
        for i, r in enumerate(table.itertuples(), start=1)
    ]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        return pd.DataFrame(rows).to_string(index=False)


def figure(table: pd.DataFrame, path: Path) -> None:
    """One panel per pattern: the target (value, tolerance band or bound) in grey, each seed's
    value as a dot and the mean as a bar, green for a pass, red for a miss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(table)
    cols = 4
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(13, 2.1 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for i, (ax, r) in enumerate(zip(axes.ravel(), table.itertuples(), strict=False), start=1):
        ax.set_title(f"{i}. {r.pattern}", fontsize=8)
        ax.set_yticks([])
        if r.status == NOT_TESTABLE:
            ax.text(0.5, 0.5, "not testable yet", ha="center", va="center", color="0.4",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_xticks([])
            continue
        values = [float(v) for v in str(r.seed_values).split() if np.isfinite(float(v))]
        lo, hi = r.target - r.tolerance, r.target + r.tolerance
        span = [lo, hi, *values]
        width = max(max(span) - min(span), abs(r.target) * 0.2, 1e-3)
        left, right = min(span) - 0.25 * width, max(span) + 0.25 * width
        if r.check == "at_most":
            ax.axvspan(left, hi, color="0.88")
        elif r.check == "at_least":
            ax.axvspan(lo, right, color="0.88")
        else:
            ax.axvspan(lo, hi, color="0.88")
        ax.axvline(r.target, color="0.3", lw=1)
        colour = "tab:green" if r.status == PASS else "tab:red"
        ax.scatter(values, np.zeros(len(values)), color=colour, s=18, zorder=3)
        ax.axvline(r.simulated, color=colour, lw=2.5, ymin=0.3, ymax=0.7)
        ax.set_xlim(left, right)
        ax.set_ylim(-1, 1)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        "Validation patterns: target (line) and pass region (grey); simulated per seed (dots) "
        "and mean (bar), green = pass, red = miss",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def markdown(table: pd.DataFrame, note: str, figure_name: str) -> str:
    """calibration/validation.md: the summary table, then every pattern with its number,
    status, source, why it is a fair test and, for a miss, the likely mechanism."""
    counts = table["status"].value_counts()
    lines = [
        "# Validation report",
        "",
        note,
        "",
        "Validation patterns (pattern-oriented modelling, Grimm et al. 2005) are the "
        "`validate` rows of [targets.csv](targets.csv): no fit reads them "
        "(`calibrate.fit_value` refuses them; the fitted values are in "
        "[report.md](report.md), an in-sample check). Each is measured on model runs of the "
        "plan as written with the fitted parameters and compared with its published value; "
        "nothing was tuned to pass. A pattern passes when the mean over seeds meets its check; "
        "the range is the lowest and highest seed. A pattern the model cannot measure yet is "
        "listed as not testable, with why.",
        "",
        f"**{counts.get(PASS, 0)} pass, {counts.get(MISS, 0)} miss, "
        f"{counts.get(NOT_TESTABLE, 0)} not testable yet** (of {len(table)}).",
        "",
        f"![validation patterns]({figure_name})",
        "",
        "| # | pattern | simulated (range over seeds) | target | status |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(table.itertuples(), start=1):
        shown = f"**{r.status}**" if r.status == MISS else r.status
        lines.append(
            f"| {i} | [{r.pattern}](#{i}-{r.pattern}) | {_simulated(r)} | "
            f"{_criterion(r)} | {shown} |"
        )
    lines += ["", "## The patterns", ""]
    for i, r in enumerate(table.itertuples(), start=1):
        if r.status == NOT_TESTABLE:
            measured = f"Not measured; the published value is {_fmt(r.target)} {r.unit} ({r.date})"
            why = f"- Why: {r.why_fair}."
        else:
            measured = f"Simulated {_simulated(r)} {r.unit}; target {_criterion(r)} ({r.date})"
            why = f"- Why a fair test: {r.why_fair}."
        lines += [
            f"### {i}. {r.pattern}",
            "",
            f"- **Status: {r.status}.** {measured}.",
            f"- Statistic: {r.statistic}.",
        ]
        if r.detail:
            lines.append(f"- Beside it: {r.detail}.")
        lines += [f"- Source: {r.source}.", why]
        if r.status == MISS:
            lines.append(f"- **Why it misses (the likely mechanism):** {r.explanation}.")
        lines.append("")
    lines += ["## Considered and left out", ""]
    lines += [f"- {text}" for text in LEFT_OUT]
    return "\n".join(lines) + "\n"


def write_outputs(
    table: pd.DataFrame, out: Path, scale: float, seeds: list[int], note: str
) -> list[Path]:
    """Write `out` (the report), its figure (.png) and status file (.csv) beside it, each
    atomically; returns the paths."""
    from sim.experiments.results import write_atomic, write_csv_atomic, write_text_atomic

    png, csv = out.with_suffix(".png"), out.with_suffix(".csv")
    write_atomic(png, lambda tmp: figure(table, tmp))
    write_csv_atomic(status_frame(table, scale, seeds), csv)
    write_text_atomic(out, markdown(table, note, png.name))
    return [out, png, csv]


def committed_status(path: Path = STATUS_PATH) -> pd.DataFrame:
    """The status file `eldercare validate` wrote last (what the CI compares with)."""
    return pd.read_csv(path).set_index("pattern")
