"""Print the joint fit of entry share and migration, its identification, the variants to 2035
and e60 (WPP 2024 table, this schedule, the model's current schedule).

    python scripts/fit_demography.py

Dates: "2020-11-01" is the census day (stock on the first day of 2020-11); "end YYYY" is the
stock after the last month of YYYY (on YYYY+1-01-01). 65+ in 2020 is a prediction of the cohort
logic: it is printed, never compared with anything.
"""

from __future__ import annotations

from dataclasses import replace

from sim.population import lifetable
from sim.population.projection import ProjectionParams
from sim.population.projection_fit import VARIANTS, fit_entry_and_migration, variant


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def print_fit() -> None:
    print("== Joint fit: entry_share and net_migration_rate (rate per person-year, all ages 60+)")
    print("   targets: 60+ on 2020-11-01 = 854,501; deaths 60+ in 2021 = share x 30,967")
    for share in (0.75, 0.80, 0.85):
        r = fit_entry_and_migration(death_share=share)
        p, proj = r.params, r.projection
        print(
            f"   death share {share:.2f}: target deaths {_fmt(r.target_deaths_2021)}; "
            f"entry_share = {p.entry_share:.6f}, net_migration_rate = "
            f"{p.net_migration_rate * 1000:+.2f} per 1,000 per year; fitted 60+ "
            f"{_fmt(r.fitted_60plus_2020)}, deaths {_fmt(r.fitted_deaths_2021)}"
        )
        on = proj.on(2020, 11)
        end = proj.on(2036, 1)
        print(
            f"      implied 2020-11-01: 60+ {_fmt(on['60+'])}, 65+ {_fmt(on['65+'])} (prediction), "
            f"80+ {_fmt(on['80+'])}; end 2035: 60+ {_fmt(end['60+'])}, 80+ {_fmt(end['80+'])}"
        )
        print(
            f"      identification: d(migration rate)/d(1,000 target deaths) = "
            f"{r.sensitivity * 1000:+.2f} per 1,000 per year; relative condition number "
            f"{r.condition:.1f}; Jacobian d(60+, deaths)/d(share, rate) = "
            f"{[[round(float(v)) for v in row] for row in r.jacobian]}"
        )
    print("   sensitivity of the central fit (death share 0.80) to fixed assumptions:")
    for label, base in (
        ("mortality_scale 0.90", replace(ProjectionParams(), mortality_scale=0.9)),
        ("mortality_scale 1.10", replace(ProjectionParams(), mortality_scale=1.1)),
        ("migration_age_decline 0.05", replace(ProjectionParams(), migration_age_decline=0.05)),
        ("initial_old_age_tilt -0.02", replace(ProjectionParams(), initial_old_age_tilt=-0.02)),
        ("initial_old_age_tilt +0.02", replace(ProjectionParams(), initial_old_age_tilt=0.02)),
    ):
        r = fit_entry_and_migration(base, death_share=0.80)
        on, end = r.projection.on(2020, 11), r.projection.on(2036, 1)
        at_bound = " (at its bound)" if r.params.net_migration_rate in (-0.02, 0.04) else ""
        print(
            f"      {label}: entry_share {r.params.entry_share:.6f}, migration "
            f"{r.params.net_migration_rate * 1000:+.2f}/1,000{at_bound}; 2020-11-01 65+ "
            f"{_fmt(on['65+'])}; end 2035 60+ {_fmt(end['60+'])}, 80+ {_fmt(end['80+'])}; "
            f"deaths fitted {_fmt(r.fitted_deaths_2021)} of {_fmt(r.target_deaths_2021)}"
        )


def print_variants() -> None:
    print("== Variants (end of year; 60+ / 80+)")
    for name in VARIANTS:
        r = variant(name)
        p = r.params
        cells = []
        for year in (2025, 2030, 2035):
            on = r.projection.on(year + 1, 1)
            cells.append(f"{year}: {_fmt(on['60+'])} / {_fmt(on['80+'])}")
        print(
            f"   {name:8s} entry_share {p.entry_share:.6f} (x{p.entry_share_after_2020} from "
            f"2021), migration {p.net_migration_rate * 1000:+.2f}/1,000, improvement "
            f"x{p.mortality_improvement}: " + "; ".join(cells)
        )


def print_e60() -> None:
    from sim.params.sections import DemographyParams
    from sim.population.demography import hazard_for_year
    from sim.population.health import sex_hazard_factor

    d = DemographyParams()
    factor = sex_hazard_factor(d.female_share_by_age)
    print("== e60 (years): men / women / both")
    print(
        "   WPP 2024 table (5-year mx, constant within group, 100+ closed with l/m; 2015 "
        "log-linear between the 2010 and 2020 tables):"
    )
    for year in (2010, 2015, 2020, 2030):
        e = [lifetable.table_life_expectancy(year, s) for s in range(3)]
        print(f"      {year}: {e[0]:.2f} / {e[1]:.2f} / {e[2]:.2f}")
    print("   this single-age schedule (lifetable.hazard_table at mid-year):")
    for year in (2010, 2015, 2020, 2030):
        e = [lifetable.e60(year + 0.5, s) for s in range(3)]
        print(f"      {year}: {e[0]:.2f} / {e[1]:.2f} / {e[2]:.2f}")
    print(
        "   model's current schedule (demography.hazard_for_year x health.sex_hazard_factor, "
        f"max_hazard {d.max_hazard}; both = the both-sex hazard), mortality_scale 1.0 and 0.970:"
    )
    for year in (2010, 2015, 2020):
        base = hazard_for_year(year + 0.5, d.max_hazard)
        for scale in (1.0, 0.970292):
            e = [lifetable.life_expectancy(scale * base * factor[s]) for s in range(2)]
            e.append(lifetable.life_expectancy(scale * base))
            print(f"      {year} (scale {scale:.3f}): {e[0]:.2f} / {e[1]:.2f} / {e[2]:.2f}")


if __name__ == "__main__":
    print_fit()
    print_variants()
    print_e60()
