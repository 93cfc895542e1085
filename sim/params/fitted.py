"""The fitted parameter file (calibration/fitted.toml) that `Params()` applies by default.

`python calibration/calibrate.py` writes it with its provenance. A scenario can still override any
fitted value. Set ELDERCARE_FITTED to another file, or to 'none' to use the declared defaults.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

FITTED_PATH = Path(__file__).resolve().parents[2] / "calibration" / "fitted.toml"


class FittedFileError(ValueError):
    """The fitted parameter file is unreadable or does not match the parameters."""


def fitted_path() -> Path | None:
    """The fitted file in use, or None (declared defaults)."""
    chosen = os.environ.get("ELDERCARE_FITTED", "")
    if chosen.lower() == "none":
        return None
    path = Path(chosen) if chosen else FITTED_PATH
    return path if path.is_file() else None


@cache
def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise FittedFileError(f"{path}: cannot read the fitted parameters ({err})") from err
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise FittedFileError(f"{path}: [params] must be a table of parameter sections")
    return data


def fitted_overrides() -> dict[str, Any]:
    """The [params] tables of the fitted file (empty if there is none)."""
    return _read(fitted_path()).get("params", {})


def fitted_provenance() -> dict[str, Any]:
    """The [provenance] table of the fitted file (empty if there is none)."""
    return _read(fitted_path()).get("provenance", {})
