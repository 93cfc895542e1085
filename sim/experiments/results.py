"""Running one scenario, writing run folders atomically, reading run and batch folders back.

A run folder (`eldercare run`) holds metrics.parquet, manifest.json and report.html. A batch
folder (`eldercare batch`) holds manifest.json, runs/point=<i>_seed=<s>.parquet and summary.csv.
Both are read by `load_runs` as one frame with `point` and `seed` columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from sim.kpis.registry import in_view
from sim.params.sections import Params

KEY_KPIS = in_view("key")


class OutputError(OSError):
    """An output folder that cannot be written (exit status 2 in the CLI)."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")


# -- provenance ------------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    out = {}
    for name in ("numpy", "pandas", "mesa", "numba", "taiyuan-eldercare"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_version() -> str:
    """`git describe --always --dirty` of the source tree, else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return package_versions()["taiyuan-eldercare"]


# -- atomic output -------------------------------------------------------------------------------
def check_writable(out: str | Path, *, allow_existing_run: bool = True) -> Path:
    """Fail early (OutputError) if `out` cannot be created or would clobber a non-run folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    is_run = allow_existing_run and (out / "manifest.json").is_file()
    if out.is_dir() and any(out.iterdir()) and not is_run:
        raise OutputError(out, "exists, is not empty and is not an eldercare output folder")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(out, f"cannot create the parent folder ({err.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(out, f"output folder is not writable (no write access to {parent})")
    return out


@contextlib.contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `out` in one rename."""
    out = check_writable(out)
    parent = out.resolve().parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as err:
        raise OutputError(out, f"output folder is not writable ({err.strerror})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            old = parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# -- running -------------------------------------------------------------------------------------
def simulate(
    params: Params,
    seed: int,
    scale: float,
    until: str,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Run the model month by month through `until`; returns model.metrics()."""
    from sim import CareModel

    model = CareModel(seed=seed, scale=scale, params=params)
    model.run_until(until, progress=progress)
    return model.metrics()


def manifest(scenario, params: Params, seed: int, scale: float, until: str, **extra) -> dict:
    return {
        "kind": "run",
        "scenario": scenario.manifest(),
        "seed": seed,
        "scale": scale,
        "until": until,
        "params": params.to_dict(),
        "versions": package_versions(),
        "code_version": code_version(),
        **extra,
    }


# -- reading -------------------------------------------------------------------------------------
def load_runs(folder: str | Path) -> pd.DataFrame:
    """All runs in a run or batch folder, with `point` and `seed` columns."""
    folder = Path(folder)
    if (folder / "runs").is_dir():
        files = sorted((folder / "runs").glob("point=*_seed=*.parquet"))
        if not files:
            raise OutputError(folder, "batch folder has no finished runs in runs/")
        frames = []
        for f in files:
            frame = pd.read_parquet(f)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)
    metrics = folder / "metrics.parquet"
    if not metrics.is_file():
        raise OutputError(folder, "not a run folder (no metrics.parquet) nor a batch (no runs/)")
    frame = pd.read_parquet(metrics)
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    frame.insert(0, "seed", int(man.get("seed", 0)))
    frame.insert(0, "point", 0)
    return frame


def interval_summary(values: pd.DataFrame, by: list[str], kpis: list[str]) -> pd.DataFrame:
    """Mean and 5%/95% quantiles (a 90% interval across replications) of each KPI."""
    g = values.groupby(by, sort=True)[kpis]
    mean = g.mean().add_suffix("_mean")
    lo = g.quantile(0.05).add_suffix("_p05")
    hi = g.quantile(0.95).add_suffix("_p95")
    n = g.size().rename("replications")
    out = pd.concat([n, mean, lo, hi], axis=1)
    cols = ["replications"] + [f"{k}_{s}" for k in kpis for s in ("mean", "p05", "p95")]
    return out[cols].reset_index()
