"""The planners' app: a bad seed shows the allowed range, never the model's raw error."""

from __future__ import annotations

import os

import ipyvuetify as v
import solara

os.environ.setdefault("ELDERCARE_APP_WARMUP", "0")

from sim.app.components import seed_problem
from sim.app.i18n import tr


def test_seed_problem_names_the_allowed_range() -> None:
    assert seed_problem(0, 3, "en") == seed_problem(2**63 - 3, 3, "en") == ""
    assert seed_problem(-1, 3, "en") == "Seed: a whole number from 0 to 9,223,372,036,854,775,805"
    assert seed_problem(2**63 - 2, 3, "en")  # its third replication's seed would be 2**63
    assert seed_problem(2**64, 1, "zh").startswith("随机种子须为 0 至 9,223,372,036,854,775,807")


def _set_seed(rc, value: str) -> None:
    field = next(w for w in rc.find(v.TextField).widgets if "seed" in (w.class_ or "").split())
    field.v_model = value
    field.fire_event("focusout", value)  # what leaving the field does in the browser


def test_page_refuses_a_bad_seed_with_one_message() -> None:
    import app

    _, rc = solara.render(app.Page(), handle_error=False)
    run = next(b for b in rc.find(v.Btn).widgets if "run-button" in (b.class_ or "").split())
    for bad in ("-1", str(2**64)):
        _set_seed(rc, bad)
        alerts = [str(a.children) for a in rc.find(v.Alert).widgets]
        assert any("随机种子须为 0 至" in a for a in alerts), alerts
        assert not any("Error" in a for a in alerts), alerts  # no ValueError / OverflowError
        assert run.disabled
    _set_seed(rc, "7")
    assert not any(tr("seed_range", "zh")[:6] in str(a.children) for a in rc.find(v.Alert).widgets)
    assert not run.disabled
