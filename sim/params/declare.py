"""Parameter declarations with their range and source, and validation of overrides.

Every model parameter is a dataclass field declared with `param(...)`: the default, the plausible
or allowed range, the unit and where the value comes from (a data row, "derived: ...", or
"assumed"). A parameter that is a policy lever also carries its `Lever` metadata (group, labels,
how its slider shows it, and whether it acts through behaviour, supply or spending only). Where
[lo, hi] is only what the code allows (a technical bound) or a tuple's common bound, `plausible`
gives the range the value is believed to lie in (per element for a tuple): the range parameter
uncertainty is drawn from (`sim.experiments.uncertainty`).
Scenario files, the app's sliders, `eldercare levers`, sensitivity analysis and calibration all
read them from here, so each is written once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal


class ParamError(ValueError):
    """A parameter override that is unknown, of the wrong type or out of range."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Lever:
    """How a parameter shows as a policy lever. `group`: the plan's group it belongs to
    (`sim.params.levers.GROUPS`). `mode` 'value': the parameter itself; 'total': a yearly tuple
    shown as the stock it reaches (`base`, the parameter of the starting stock, plus the tuple's
    sum); 'sum': a yearly tuple shown as its sum. `acts`: how the model responds to it:
    'supply' (capacity), 'behaviour' (a price, budget or eligibility the choice reads) or
    'spending' (it only moves public spending; no behaviour reads it)."""

    group: str
    label_zh: str
    label_en: str
    mode: Literal["value", "total", "sum"] = "value"
    base: str | None = None
    acts: Literal["supply", "behaviour", "spending"] = "behaviour"


def param(
    default: Any,
    lo: float,
    hi: float,
    source: str,
    unit: str = "",
    doc: str = "",
    *,
    lever: Lever | None = None,
    any_length: bool = False,
    plausible: tuple[Any, Any] | None = None,
) -> Any:
    """Declare a parameter field; tuples are checked element by element against [lo, hi].
    `any_length`: a tuple that takes a list of any length (e.g. the sites of facilities), its
    elements of the type of `lo`; other tuples keep the length of their default.
    `plausible`: (low, high) within [lo, hi] where the allowed range is wider than what is
    believed; for a tuple, two tuples: one end and the other, element by element (the elements
    move together from one to the other, so an element may fall while another rises, e.g.
    shares that sum to one)."""
    if plausible is not None:
        _check_plausible(default, lo, hi, plausible)
    meta = {"lo": lo, "hi": hi, "source": source, "unit": unit, "doc": doc, "lever": lever,
            "any_length": any_length, "plausible": plausible}  # fmt: skip
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda d=tuple(default): d, metadata=meta)
    return field(default=default, metadata=meta)


def _check_plausible(default: Any, lo: float, hi: float, plausible: tuple[Any, Any]) -> None:
    """A declaration error (at import) unless `plausible` is inside [lo, hi] (low <= high for a
    number) and shaped like the default."""
    low, high = plausible
    if isinstance(default, (list, tuple)):
        ok = isinstance(low, tuple) and isinstance(high, tuple)
        ok = ok and len(low) == len(high) == len(default)
        ok = ok and all(lo <= v <= hi for v in (*low, *high))
    else:
        ok = lo <= low <= high <= hi
    if not ok:
        raise ValueError(f"plausible range {plausible!r} is not within [{lo}, {hi}]")


@dataclass(frozen=True)
class ParamInfo:
    """Description of one leaf parameter, for scenario checks, sliders and sensitivity runs."""

    path: str
    default: Any
    lo: float
    hi: float
    unit: str
    source: str
    doc: str
    lever: Lever | None = None
    any_length: bool = False  # a list of any length (e.g. sites), possibly empty
    plausible: tuple[Any, Any] | None = None

    @property
    def assumed(self) -> bool:
        return "assumed" in self.source.lower()


def describe(obj: Any, prefix: str = "") -> list[ParamInfo]:
    """All leaf parameters of a nested parameter dataclass, with dotted paths."""
    out: list[ParamInfo] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if is_dataclass(value):
            out.extend(describe(value, path + "."))
        elif "lo" in f.metadata:
            m = f.metadata
            out.append(
                ParamInfo(path, value, m["lo"], m["hi"], m["unit"], m["source"], m["doc"],
                          m["lever"], m["any_length"], m.get("plausible"))
            )  # fmt: skip
    return out


def to_dict(obj: Any) -> dict[str, Any]:
    """Nested plain dict (tuples as lists) for manifests and TOML export."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def apply_overrides(obj: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """A copy of `obj` with nested `overrides` applied; raises ParamError naming the field."""
    if not isinstance(overrides, dict):
        raise ParamError(prefix.rstrip(".") or "<root>", "expected a table of parameters")
    by_name = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in by_name:
            hint = difflib.get_close_matches(key, list(by_name), n=1)
            allowed = f"did you mean '{prefix}{hint[0]}'?" if hint else _allowed_names(by_name)
            raise ParamError(path, f"unknown parameter; {allowed}")
        current = getattr(obj, key)
        if is_dataclass(current):
            changes[key] = apply_overrides(current, value, path + ".")
        else:
            changes[key] = _checked(by_name[key], path, current, value)
    return replace(obj, **changes) if changes else obj


def _allowed_names(by_name: dict) -> str:
    return "allowed: " + ", ".join(sorted(by_name))


def _checked(f, path: str, current: Any, value: Any) -> Any:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    unit = f" {f.metadata['unit']}" if f.metadata.get("unit") else ""
    if isinstance(current, tuple):
        if f.metadata.get("any_length"):
            if not isinstance(value, (list, tuple)):
                raise ParamError(path, f"expected a list of numbers in [{lo}, {hi}]")
            return tuple(_scalar(path, lo, v, lo, hi, unit) for v in value)
        if not isinstance(value, (list, tuple)) or len(value) != len(current):
            raise ParamError(path, f"expected a list of {len(current)} numbers in [{lo}, {hi}]")
        return tuple(_scalar(path, current[0], v, lo, hi, unit) for v in value)
    return _scalar(path, current, value, lo, hi, unit)


def _scalar(path: str, current: Any, value: Any, lo: Any, hi: Any, unit: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ParamError(path, "expected true or false")
        return value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ParamError(path, "expected a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(path, f"expected a number in [{lo}, {hi}]{unit}, got {value!r}")
    if isinstance(current, int) and not float(value).is_integer():
        raise ParamError(path, f"expected a whole number in [{lo}, {hi}]{unit}, got {value!r}")
    if value != value or not lo <= value <= hi:
        raise ParamError(path, f"{value!r} is out of range; allowed [{lo}, {hi}]{unit}")
    return int(value) if isinstance(current, int) else float(value)


__all__ = [
    "Lever",
    "ParamError",
    "ParamInfo",
    "apply_overrides",
    "describe",
    "param",
    "to_dict",
]
