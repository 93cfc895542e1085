"""Scenario files: TOML overrides of the plan as written, validated on load.

A scenario file (see scenarios/*.toml) has the top-level keys

    name = "..."                 # short name (default: the file stem)
    description = "..."          # one paragraph
    extends = "plan_2016_2020"   # optional: a scenario name in scenarios/ or a path
    until = "2020-12"            # optional: last month, inclusive (default 2020-12)
    seed = 1                     # optional (default 1)
    scale = 1                    # optional: persons per row (default 1)

    [params.policy]              # overrides of Params, section by section
    voucher_amount = 400.0

`extends` is resolved first and the file's own values are deep-merged over it. Every problem
raises `ScenarioError(file, field, message)`; nothing else escapes `load_scenario`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.engine.calendar import until_index
from sim.params.declare import ParamError
from sim.params.sections import Params

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
DEFAULT_UNTIL = "2020-12"
SEED_LIMIT = 2**63  # seeds are whole numbers in [0, SEED_LIMIT): the keyed RNG mixes them as uint64
SEED_RULE = "a whole number >= 0 and < 2**63"
SCALE_MAX = 1e6  # persons per row, in files and on the command line
SCALE_RULE = "persons per row, a number in [1, 1e6]"
MAX_DEPTH = 16  # nesting of tables and arrays in a file (parameters are 3 deep)
TOP_KEYS = ("name", "description", "extends", "until", "seed", "scale", "params")


class ScenarioError(ValueError):
    """A bad scenario or batch file: names the file, the field and what is allowed."""

    def __init__(self, file: str | Path, field: str, message: str):
        self.file = _one_line(str(file))
        self.field = _one_line(field)
        self.message = _one_line(message)
        where = f"{self.file}: {self.field}" if field else self.file
        super().__init__(f"{where}: {self.message}")


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Scenario:
    """A loaded, validated scenario."""

    name: str
    description: str
    params: Params
    until: str = DEFAULT_UNTIL
    seed: int = 1
    scale: float = 1.0
    source: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "until": self.until,
            "seed": self.seed,
            "scale": self.scale,
            "overrides": self.overrides,
        }


def available() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def resolve_path(ref: str | Path, relative_to: Path | None = None, what: str = "scenario") -> Path:
    """A scenario reference (file stem in scenarios/, or a path) as an existing file path."""
    text = str(ref)
    candidates = []
    path = Path(text)
    if relative_to is not None and not path.is_absolute():
        candidates.append(relative_to / path)
    candidates.append(path)
    if path.suffix != ".toml" and "/" not in text:
        candidates.append(SCENARIO_DIR / f"{text}.toml")
    for c in candidates:
        if c.is_file():
            return c
    names = available()
    hint = difflib.get_close_matches(path.stem, names, n=1)
    allowed = f"did you mean '{hint[0]}'?" if hint else "known scenarios: " + ", ".join(names)
    raise ScenarioError(text, what, f"no such {what} file or shipped scenario; {allowed}")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; any read or syntax problem as a ScenarioError naming the file."""
    try:
        return loads_toml(path.read_text(encoding="utf-8"), path)
    except OSError as err:
        raise ScenarioError(path, "", f"cannot read file ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise ScenarioError(path, "", "not a UTF-8 text file") from None


def loads_toml(text: str, source: str | Path) -> dict[str, Any]:
    """Parse TOML text; a syntax error or nesting deeper than MAX_DEPTH is a ScenarioError."""
    too_deep = ScenarioError(source, "toml", f"tables or arrays nested deeper than {MAX_DEPTH}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = str(err).splitlines()[0] if str(err) else "syntax error"
        raise ScenarioError(source, "toml", f"malformed TOML: {msg}") from None
    except RecursionError:  # the parser recurses into nested arrays and inline tables
        raise too_deep from None
    if _depth(data) > MAX_DEPTH:  # shallower than the parser's limit, deeper than any use
        raise too_deep
    return data


def _depth(value: Any) -> int:
    """Nesting depth of tables and arrays (iterative: the value may be deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth + 1)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def unknown_key(source: str | Path, key: str, allowed: tuple[str, ...], prefix: str = "") -> None:
    hint = difflib.get_close_matches(str(key), list(allowed), n=1)
    tail = f"did you mean '{prefix}{hint[0]}'?" if hint else "allowed: " + ", ".join(allowed)
    raise ScenarioError(source, f"{prefix}{key}", f"unknown key; {tail}")


def check_until(source: str | Path, value: Any, field_name: str = "until") -> str:
    if not isinstance(value, str):
        raise ScenarioError(source, field_name, f"expected a month 'YYYY-MM', got {value!r}")
    try:
        until_index(value)
    except ValueError as err:
        raise ScenarioError(source, field_name, str(err)) from None
    return value


def check_seed(source: str | Path, value: Any, field_name: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ScenarioError(source, field_name, f"expected {SEED_RULE}, got {value!r}")
    return int(value)


def check_scale(source: str | Path, value: Any, field_name: str = "scale") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 1 <= value <= SCALE_MAX:
        raise ScenarioError(source, field_name, f"expected {SCALE_RULE}, got {value!r}")
    return float(value)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, tables recursively, other values replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_params(source: str | Path, overrides: Any, prefix: str = "params") -> Params:
    """Params().with_overrides with every failure as a ScenarioError naming the field."""
    if not isinstance(overrides, dict):
        raise ScenarioError(source, prefix, "expected a table of parameter sections")
    try:
        return Params().with_overrides(overrides)
    except ParamError as err:
        raise ScenarioError(source, f"{prefix}.{err.path}", err.message) from None
    except (TypeError, ValueError, OverflowError, AttributeError) as err:
        raise ScenarioError(source, prefix, f"invalid value ({err})") from None


def scenario_from_dict(
    data: Any, source: str | Path = "<scenario>", _chain: tuple[str, ...] = ()
) -> Scenario:
    """Validate a parsed scenario table (resolving `extends`) into a Scenario."""
    src = str(source)
    if not isinstance(data, dict):
        raise ScenarioError(src, "", "expected a TOML table at the top level")
    for key in data:
        if key not in TOP_KEYS:
            unknown_key(src, key, TOP_KEYS)
    base: dict[str, Any] = {}
    if "extends" in data:
        ref = data["extends"]
        if not isinstance(ref, str) or not ref:
            raise ScenarioError(src, "extends", "expected a scenario name or a path to a .toml")
        here = Path(src).parent if Path(src).is_file() else None
        try:
            path = resolve_path(ref, here)
        except ScenarioError as err:
            raise ScenarioError(src, "extends", err.message) from None
        key = str(path.resolve())
        if key in _chain:
            raise ScenarioError(src, "extends", f"circular 'extends' through {path}")
        parent = load_scenario(path, _chain=(*_chain, key))
        base = {
            "until": parent.until,
            "seed": parent.seed,
            "scale": parent.scale,
            "params": parent.overrides,
            "description": parent.description,
        }
    merged = deep_merge(base, {k: v for k, v in data.items() if k != "extends"})
    stem = Path(src).stem if src and not src.startswith("<") else "scenario"
    name = merged.get("name", stem)
    if not isinstance(name, str) or not name:
        raise ScenarioError(src, "name", "expected a non-empty string")
    description = merged.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(src, "description", "expected a string")
    until = check_until(src, merged.get("until", DEFAULT_UNTIL))
    seed = check_seed(src, merged.get("seed", 1))
    scale = check_scale(src, merged.get("scale", 1))
    overrides = merged.get("params", {})
    params = apply_params(src, overrides)
    return Scenario(name, description, params, until, seed, scale, src, overrides)


def dumps_scenario(
    name: str,
    description: str,
    until: str,
    seed: int,
    scale: float,
    overrides: dict[str, Any],
    comment: str = "",
) -> str:
    """A scenario file (TOML) that `load_scenario` reads back to these values; `comment` lines
    go first."""
    lines = [f"# {line}" for line in comment.splitlines()]
    top = {"name": name, "description": description, "until": until, "seed": int(seed),
           "scale": float(scale)}  # fmt: skip
    lines += [f"{k} = {_toml(v)}" for k, v in top.items()]

    def tables(prefix: str, table: dict[str, Any]) -> None:
        leaves = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if leaves:
            lines.extend(["", f"[{prefix}]"])
            lines.extend(f"{_key(k)} = {_toml(v)}" for k, v in leaves.items())
        for k, v in table.items():
            if isinstance(v, dict):
                tables(f"{prefix}.{_key(k)}", v)

    tables("params", overrides)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def loads_scenario(text: str, source: str | Path = "<scenario>") -> Scenario:
    """A scenario from TOML text."""
    return scenario_from_dict(loads_toml(text, source), source)


def load_scenario(ref: str | Path, *, _chain: tuple[str, ...] = ()) -> Scenario:
    """Load a scenario by name (a file in scenarios/) or by path; raises ScenarioError."""
    path = resolve_path(ref)
    key = str(path.resolve())
    return scenario_from_dict(read_toml(path), path, _chain or (key,))


__all__ = [
    "SCENARIO_DIR",
    "Scenario",
    "ScenarioError",
    "available",
    "deep_merge",
    "dumps_scenario",
    "load_scenario",
    "loads_scenario",
    "scenario_from_dict",
]
