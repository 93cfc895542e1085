"""Care-choice parameters, all in one place so calibration can fit them together.

Utilities are multinomial-logit terms; `constants` has one entry per care option, in the order
of the options table (`sim.care.kinds.CARE_OPTIONS`: family care only, home services, community /
day care, public nursing home, private nursing home, integrated medical-care bed).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.params.declare import param


@dataclass(frozen=True)
class ChoiceParams:
    """Multinomial-logit coefficients of the care-arrangement choice."""

    constants: tuple[float, ...] = param(
        (0.0, -0.8, -1.2, -1.0, -1.3, -1.5),
        -8.0,
        4.0,
        "assumed, hand-set so about 1% of the 60+ live in institutions by 2020 (the '9073' "
        "pattern: 3% nationally, national_reference.csv); calibration targets: willingness to "
        "enter a nursing home 11-13% (CRCA 2010, Gallup 2017; behaviour_reference.csv)",
        doc="family care only is the reference (0); the residential constants (3-5) are fitted "
        "(calibration stage 'choice'); the home and community constants (1-2) are assumed, "
        "plausible within one utility unit of their value (odds x e either way); -8..4 is "
        "only a bound",
        plausible=((0.0, -1.8, -2.2, -8.0, -8.0, -8.0), (0.0, 0.2, -0.2, 4.0, 4.0, 4.0)),
    )
    need_gap: float = param(
        2.5, 0.0, 6.0, "assumed: pull of formal care per unit of need share the family cannot cover"
    )
    dependency_institution: float = param(
        0.9, 0.0, 3.0, "assumed: extra pull of residential care per care-need level above 1"
    )
    medical_capable: float = param(
        1.5, 0.0, 4.0, "assumed: pull of a medically capable option for those with medical need"
    )
    living_alone_institution: float = param(
        0.6,
        0.0,
        2.0,
        "assumed: extra pull of residential care for those living alone (Wang et al. 2022, "
        "behaviour_reference.csv: qualitative)",
    )
    price_per_1000: float = param(
        -0.6, -3.0, 0.0, "assumed: utility per 1,000 yuan/month of net price"
    )
    unaffordable: float = param(
        -4.0, -10.0, 0.0, "assumed: utility per unit of (net price - budget) / budget above budget"
    )
    distance_per_km: float = param(-0.25, -2.0, 0.0, "assumed: utility per km to the facility")
    wait_per_month: float = param(-0.25, -2.0, 0.0, "assumed: utility per expected month of wait")
    child_in_city_distance: float = param(
        0.5,
        0.2,
        1.0,
        "assumed: for a resident whose nearest child lives elsewhere in the city, the weight of a "
        "facility's distance from the resident's home (children often choose, and a place near "
        "their own home serves as well; where in the city they live is not modelled; range "
        "0.2-1)",
    )
    switching_cost: float = param(
        2.0,
        0.0,
        5.0,
        "assumed: utility lost by leaving a bed or day place in use for another arrangement "
        "(moving out, the upheaval, a new routine); no source measures it (range 0-5); long-term "
        "residential care is left mostly by death (validity_reference.csv, Japan 2016) and this "
        "is what keeps stays so, so its sensitivity is reported",
    )
    new_place_radius_km: float = param(
        2.0,
        0.5,
        5.0,
        "assumed: a nursing home or integrated bed opening within this distance prompts those in "
        "need nearby (not in a bed) to reconsider (range 0.5-5)",
        "km",
    )
    too_far_km: float = param(
        8.0,
        2.0,
        30.0,
        "assumed: beyond this a facility counts as out of reach in the binding-reason diagnostic "
        "(not in the utilities)",
        "km",
    )
