"""Running one scenario, writing output folders safely, reading run and batch folders back.

A run folder (`eldercare run`) holds metrics.parquet, manifest.json and report.html. A batch
folder (`eldercare batch`) holds manifest.json, runs/point=<i>_seed=<s>.parquet and summary.csv.
Both are read by `load_runs` as one frame with `point` and `seed` columns.

Every run file records its identity (`RunIdentity`: the hash of the resolved parameters, the
code digest, seed, scale and last month) in its Parquet metadata, so a file from another model
is never taken for a run of this one; it is trusted only if it reads back whole. A command
replaces only an output folder it wrote itself (`check_writable`), and every temporary file or
folder it leaves when killed is named after its host and process, so the next command removes
it once that process is gone (`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.engine.calendar import FIRST_MONTH, month_index
from sim.engine.numba_cache import source_digest
from sim.kpis.registry import in_view
from sim.params.sections import Params

KEY_KPIS = in_view("key")
# What each command writes into its output folder: it replaces such a folder, nothing else.
OUTPUT_FILES = {
    "run": frozenset({"manifest.json", "metrics.parquet", "report.html"}),
    "sensitivity": frozenset(
        {"manifest.json", "sensitivity.csv", "samples.csv", "sensitivity.png"}
    ),
    "site": frozenset(
        {"manifest.json", "sites.csv", "coverage.csv", "site.toml", "site.html", "site.png"}
    ),
}
IDENTITY_KEY = b"eldercare.run"
HOST = socket.gethostname()
STALE_AFTER_S = 3600  # a temporary of another host is removed once it is this old


class OutputError(OSError):
    """An output folder that cannot be written, or a folder that cannot be read back (exit 2)."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def __reduce__(self) -> tuple:  # raised in workers: must unpickle with both arguments
        return (type(self), (self.path, self.message))


class IdentityError(RuntimeError):
    """Runs would come from other parameters or code than expected (exit 2 in the CLI)."""


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
    """`git describe --always --dirty` of the source tree, else the package version (for people;
    `code_digest` is what identifies the code)."""
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


@functools.cache
def code_digest() -> str:
    """Digest of every module of the `sim` package: the code version, with or without git."""
    return source_digest()


def params_hash(params: Params) -> str:
    """Hash of the resolved parameters (canonical JSON of `Params.to_dict()`)."""
    text = json.dumps(params.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunIdentity:
    """What makes two runs the same run; stored in every run file."""

    params_hash: str
    code_digest: str
    seed: int
    scale: float
    until: str

    @classmethod
    def of(cls, params: Params, seed: int, scale: float, until: str) -> RunIdentity:
        """The identity of a run made here, in this process's environment."""
        return cls(params_hash(params), code_digest(), int(seed), float(scale), until)

    def differences(self, expected: RunIdentity) -> str:
        """'params_hash a (expected b), ...' for the fields that differ ('' if none)."""
        mine, want = asdict(self), asdict(expected)
        return ", ".join(f"{k} {mine[k]} (expected {want[k]})" for k in mine if mine[k] != want[k])


# -- output folders --------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest.json as a dict; None if there is none; OutputError if unreadable."""
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OutputError(folder, "has an unreadable manifest.json") from None
    if not isinstance(data, dict):
        raise OutputError(folder, "has a manifest.json that is not an eldercare manifest")
    return data


def check_writable(out: str | Path, kind: str | None = None) -> Path:
    """Fail early (OutputError) unless `out` can be written: missing or empty, or, for a `kind`
    in OUTPUT_FILES, an earlier output of that kind (its manifest says so and the folder holds
    only that command's files), which is then replaced. Nothing else is ever replaced."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names:
        tail = "; choose another --out (nothing was changed)"
        old = read_manifest(out)
        if old is None or "kind" not in old:
            raise OutputError(out, f"exists, is not empty and is not an eldercare output{tail}")
        if old["kind"] != kind or kind not in OUTPUT_FILES:
            raise OutputError(out, f"holds an eldercare {old['kind']} output{tail}")
        if not names <= OUTPUT_FILES[kind]:
            others = ", ".join(sorted(names - OUTPUT_FILES[kind])[:3])
            raise OutputError(out, f"holds files that `{kind}` did not write ({others}){tail}")
    existing = next(d for d in out.resolve().parents if d.exists())
    if not existing.is_dir():
        raise OutputError(out, f"cannot be created ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(out, f"output folder is not writable (no write access to {existing})")
    return out


def holds_output(out: str | Path) -> bool:
    """Whether `out` is a folder with something in it (to check before resuming into it); False
    for a missing or empty folder, which must then be writable (OutputError otherwise, also for
    a file in its place)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        check_writable(out)
        return False
    return True


def missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, outermost first (what a mkdir creates)."""
    return [d for d in (path, *path.parents) if not d.exists()][::-1]


def undo(created: list[Path]) -> None:
    """Remove what a command created, last first; a folder only if empty (never anything else)."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()


def temp_path(target: Path, tag: str = "tmp") -> Path:
    """A hidden sibling of `target` named after this host and process (see remove_stale_temps)."""
    return target.with_name(f".{target.name}.{tag}-{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


_TEMP = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<owner>.+)")


def _is_stale(path: Path, owner: str) -> bool:
    """Whether a temporary belongs to no living writer: its process on this host is gone, or
    (another host's, or of unknown owner) it is older than STALE_AFTER_S."""
    parts = owner.split("-")
    host, pid = ("-".join(parts[:-2]), parts[-2]) if len(parts) >= 3 else (HOST, parts[0])
    if host == HOST and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, another user's
            return False
        return False
    try:
        return time.time() - path.lstat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temps(folder: Path, name: str | None = None) -> int:
    """Remove the temporaries (of the file or folder `name`, or of any) that writers since killed
    left in `folder`; returns how many."""
    removed = 0
    for path in folder.iterdir():
        match = _TEMP.fullmatch(path.name)
        if not match or name not in (None, match["name"]) or not _is_stale(path, match["owner"]):
            continue
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_dir(out: str | Path, kind: str) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `out` (an earlier output of the
    same `kind` only, see check_writable) in one rename."""
    out = check_writable(out, kind)
    target = out.resolve()
    created = missing_dirs(target.parent)
    tmp = temp_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target.parent, target.name)
        tmp.mkdir(mode=0o755)
    except OSError as err:
        undo(created)
        raise OutputError(out, f"output folder is not writable ({err.strerror})") from None
    try:
        yield tmp
        if target.exists():
            old = temp_path(target, "old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        undo(created)
        if isinstance(err, OSError) and not isinstance(err, OutputError):  # e.g. a full disk
            reason = err.strerror or str(err)
            raise OutputError(
                out, f"cannot write the output ({reason}); nothing was changed"
            ) from None
        raise


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` to a temporary sibling, flush it to disk, then rename it over `path`; an
    OSError names `path` (pyarrow's for a full disk names no file)."""
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror or str(err), str(path)) from None
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    _replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    _replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` a file of any kind (e.g. a figure), then rename it over `path`."""
    _replace_atomically(path, write)


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    _replace_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_run(frame: pd.DataFrame, path: Path, identity: RunIdentity) -> None:
    """Write a run's metrics atomically, with its identity and page checksums."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), IDENTITY_KEY: json.dumps(asdict(identity)).encode()}
    table = table.replace_schema_metadata(meta)
    _replace_atomically(path, lambda tmp: pq.write_table(table, tmp, write_page_checksum=True))


def read_run_table(path: Path, expected: RunIdentity | None = None) -> pa.Table:
    """A run file read back whole (page checksums verified); if it records its identity, with
    every month through its `until`; if `expected` is given, made by that run. OutputError
    otherwise. (Files without an identity come from older versions.)"""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        recorded = (table.schema.metadata or {}).get(IDENTITY_KEY)
        identity = RunIdentity(**json.loads(recorded)) if recorded else None
        months = len(table.column("month").unique())
        complete = identity is None or months == month_index(identity.until) - FIRST_MONTH + 1
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        raise OutputError(path, "unreadable run file (truncated, corrupt or not a run)") from None
    if not complete:
        raise OutputError(path, f"incomplete run file (not every month to {identity.until})")
    if expected is not None and identity != expected:
        made = identity.differences(expected) if identity else "no identity recorded"
        raise OutputError(path, f"made by another run ({made})")
    return table


def read_run(path: Path, expected: RunIdentity | None = None) -> pd.DataFrame:
    """A run file as a frame (see read_run_table)."""
    return read_run_table(path, expected).to_pandas()


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
        "params_hash": params_hash(params),
        "versions": package_versions(),
        "code_version": code_version(),
        "code_digest": code_digest(),
        **extra,
    }


# -- reading -------------------------------------------------------------------------------------
def load_runs(folder: str | Path) -> pd.DataFrame:
    """All runs in a run or batch folder, with `point` and `seed` columns; OutputError (one
    line) for a folder that is not one, or a run file that does not read back whole."""
    folder = Path(folder)
    man = read_manifest(folder)
    if man is None or man.get("kind") not in ("run", "batch"):
        raise OutputError(folder, "not a run or batch folder (no eldercare manifest.json)")
    if man["kind"] == "batch":
        files = sorted((folder / "runs").glob("point=*_seed=*.parquet"))
        if not files:
            raise OutputError(folder, "batch folder has no finished runs in runs/")
        return pd.concat([read_run(f) for f in files], ignore_index=True)
    frame = read_run(folder / "metrics.parquet")
    seed = man.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OutputError(folder, "manifest.json has no whole-number seed")
    frame.insert(0, "seed", seed)
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
