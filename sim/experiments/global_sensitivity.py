"""Global sensitivity of the headline KPIs to every uncertain parameter: Sobol indices.

With some seventy factors, Saltelli's design needs N x (k + 2) runs (about 19,000 at N = 256):
too many. So the model runs on a Latin hypercube of the factors (`uncertainty.propagate`, one
seed for all points: common random numbers), a Gaussian-process emulator is fitted to each KPI
and year, and Sobol's first-order (S1) and total (ST) indices are computed on the emulator with
Saltelli's estimators (SALib). The emulator is screened: a GP with one length scale per factor
(ARD) on all factors ranks them, and GPs on the leading 6, 10, 15 and 25 are compared by
five-fold cross-validated R^2 (hyperparameters refitted in every fold); the best is kept and its
held-out R^2 reported (the GP on all factors only ranks them: cross-validating it is slow). Factors
left out get indices of zero ("screened out"); the variance the emulator misses (1 - R^2) is the
seed noise of one run plus what it cannot capture.

Confidence intervals (95%) combine SALib's bootstrap of the Saltelli sample with a bootstrap of
the design: the emulator refitted (its hyperparameters held) on the distinct runs of each
resample (about 63% of them, so the spread is if anything wide).
`direct_sobol` is the same estimator on a function cheap enough to call N x (k + 2) times (the
tests check both on the Ishigami function, whose indices are known).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SCREEN_SIZES = (6, 10, 15, 25)


def _problem(k: int, names: Sequence[str] | None = None) -> dict:
    return {
        "num_vars": k,
        "names": list(names) if names is not None else [f"x{i}" for i in range(k)],
        "bounds": [[0.0, 1.0]] * k,
    }


def _saltelli(k: int, n_base: int, seed: int) -> np.ndarray:
    from SALib.sample import sobol as sobol_sample

    with warnings.catch_warnings():  # SALib warns when n_base is not a power of 2
        warnings.simplefilter("ignore")
        return sobol_sample.sample(_problem(k), n_base, calc_second_order=False, seed=seed)


def _analyze(k: int, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from SALib.analyze import sobol as sobol_analyze

    res = sobol_analyze.analyze(_problem(k), y, calc_second_order=False, seed=seed)
    return {key: np.asarray(res[key]) for key in ("S1", "S1_conf", "ST", "ST_conf")}


def direct_sobol(
    func: Callable[[np.ndarray], np.ndarray],
    k: int,
    n_base: int = 4096,
    seed: int = 1,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """S1 and ST (with 95% half-widths) of `func` over [0, 1]^k by Saltelli's design."""
    x = _saltelli(k, n_base, seed)
    res = _analyze(k, np.asarray(func(x), dtype=float), seed)
    names = list(names) if names is not None else [f"x{i}" for i in range(k)]
    return pd.DataFrame({"factor": names, **res})


# -- the emulator ---------------------------------------------------------------------------------
@dataclass
class Emulator:
    """A Gaussian process on some of the factors (`columns` of the unit cube)."""

    gp: object
    columns: np.ndarray

    def predict(self, u: np.ndarray, chunk: int = 20_000) -> np.ndarray:
        u = np.asarray(u, dtype=float)[:, self.columns]
        return np.concatenate([self.gp.predict(u[i : i + chunk]) for i in range(0, len(u), chunk)])


def _kernel(m: int):
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    return ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(m, 0.5), (1e-2, 1e3)) + WhiteKernel(
        1e-2, (1e-8, 1.0)
    )


def fit_gp(u: np.ndarray, y: np.ndarray, columns: np.ndarray, seed: int, restarts: int = 1,
           kernel=None) -> Emulator:  # fmt: skip
    """A GP (constant x ARD squared-exponential + white noise, y normalised) on `columns`; with
    `kernel` given, its hyperparameters are kept (no optimisation)."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    gp = GaussianProcessRegressor(
        kernel=kernel if kernel is not None else _kernel(len(columns)),
        normalize_y=True,
        n_restarts_optimizer=restarts if kernel is None else 0,
        optimizer="fmin_l_bfgs_b" if kernel is None else None,
        random_state=seed,
    )
    with warnings.catch_warnings():  # convergence warnings at a bound: the CV R^2 judges the fit
        warnings.simplefilter("ignore")
        gp.fit(u[:, columns], y)
    return Emulator(gp, np.asarray(columns))


def cv_r2(u: np.ndarray, y: np.ndarray, columns: np.ndarray, seed: int, folds: int = 5) -> float:
    """Held-out R^2: k-fold cross-validation, the GP refitted (hyperparameters too) per fold."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    pred = np.empty(len(y))
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        pred[part] = fit_gp(u[train], y[train], columns, seed, restarts=0).predict(u[part])
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def relevance(emulator: Emulator) -> np.ndarray:
    """1 / length scale of each of the emulator's columns (the ARD ranking used to screen)."""
    params = emulator.gp.kernel_.get_params()
    scales = np.atleast_1d(params["k1__k2__length_scale"])
    return 1.0 / scales


@dataclass(frozen=True)
class EmulatorChoice:
    emulator: Emulator
    r2: float  # held-out (cross-validated) R^2 of the chosen emulator
    r2_all: float  # held-out R^2 of the GP on every factor
    ranking: np.ndarray  # factor indices by ARD relevance, most relevant first


def choose_emulator(
    u: np.ndarray, y: np.ndarray, seed: int = 1, check_all: bool = False
) -> EmulatorChoice:
    """Screen by the ARD GP on all factors, then keep the number of leading factors
    (SCREEN_SIZES, or all if there are fewer) with the best cross-validated R^2 (a larger one
    only if it gains more than 0.005). `check_all`: also cross-validate the GP on every factor
    (slow with many factors; NaN otherwise)."""
    k = u.shape[1]
    every = np.arange(k)
    full = fit_gp(u, y, every, seed, restarts=0)
    ranking = np.argsort(-relevance(full))
    r2_all = cv_r2(u, y, every, seed) if check_all or k <= SCREEN_SIZES[0] else float("nan")
    best = (r2_all, every) if k <= SCREEN_SIZES[0] else (-np.inf, every)
    for m in SCREEN_SIZES:
        if m >= k:
            continue
        cols = np.sort(ranking[:m])
        r2 = cv_r2(u, y, cols, seed)
        if r2 > best[0] + 0.005:
            best = (r2, cols)
    if check_all and r2_all > best[0] + 0.005:
        best = (r2_all, every)
    r2, cols = best
    return EmulatorChoice(fit_gp(u, y, cols, seed), r2, r2_all, ranking)


def emulated_sobol(
    u: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    n_base: int = 2048,
    bootstrap: int = 20,
    seed: int = 1,
) -> tuple[pd.DataFrame, EmulatorChoice]:
    """S1 and ST of the response `y` at design points `u` (in [0, 1]^k), computed on a GP
    emulator; 95% half-widths from SALib's bootstrap and a bootstrap of the design combined
    (the larger of the two). Returns the table (one row per factor; `in_emulator` False for a
    screened-out factor, indices 0) and the emulator chosen."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread: small matrices, often beside model runs
        return _emulated_sobol(u, y, names, n_base, bootstrap, seed)


def _emulated_sobol(
    u: np.ndarray, y: np.ndarray, names: Sequence[str], n_base: int, bootstrap: int, seed: int
) -> tuple[pd.DataFrame, EmulatorChoice]:
    u = np.asarray(u, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    u, y = u[ok], y[ok]
    k = u.shape[1]
    choice = choose_emulator(u, y, seed)
    cols = choice.emulator.columns
    m = len(cols)
    x = _saltelli(m, n_base, seed)
    full_x = np.zeros((len(x), k))
    full_x[:, cols] = x

    def indices(em: Emulator) -> dict[str, np.ndarray]:
        return _analyze(m, em.predict(full_x), seed)

    main = indices(choice.emulator)
    rng = np.random.default_rng(seed)
    boot = {"S1": [], "ST": []}
    for _ in range(bootstrap):
        rows = np.unique(rng.integers(0, len(y), len(y)))  # a bootstrap's distinct runs
        em = fit_gp(u[rows], y[rows], cols, seed, kernel=choice.emulator.gp.kernel_)
        res = indices(em)
        boot["S1"].append(res["S1"])
        boot["ST"].append(res["ST"])
    out = pd.DataFrame({"factor": list(names), "in_emulator": False, "S1": 0.0, "S1_conf": 0.0,
                        "ST": 0.0, "ST_conf": 0.0})  # fmt: skip
    for key in ("S1", "ST"):
        half = main[f"{key}_conf"]
        if bootstrap > 1:
            lo, hi = np.percentile(np.array(boot[key]), [2.5, 97.5], axis=0)
            half = np.maximum(half, (hi - lo) / 2)
        out.loc[cols, key] = main[key]
        out.loc[cols, f"{key}_conf"] = half
    out.loc[cols, "in_emulator"] = True
    return out, choice


# -- over the KPIs --------------------------------------------------------------------------------
def sobol_tables(
    values: pd.DataFrame,
    u: np.ndarray,
    factors: Sequence,
    kpis: Sequence[str],
    years: Sequence[int],
    n_base: int = 2048,
    bootstrap: int = 20,
    seed: int = 1,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(indices, emulators): Sobol indices of each KPI x year over the factors, and per KPI x
    year the emulator's held-out R^2 and size. `values` holds one run per draw (one seed)."""
    rows, fits = [], []
    names = [f.name for f in factors]
    for kpi in kpis:
        for year in years:
            v = values[values["year"] == year].groupby("draw")[kpi].mean()
            y = np.full(len(u), np.nan)
            y[v.index.to_numpy()] = v.to_numpy()
            if np.nanstd(y) == 0 or np.isfinite(y).sum() < 10:
                log(f"{kpi} {year}: no variation; skipped")
                continue
            table, choice = emulated_sobol(u, y, names, n_base, bootstrap, seed)
            table.insert(0, "year", year)
            table.insert(0, "kpi", kpi)
            table["kind"] = [f.kind for f in factors]
            rows.append(table)
            fits.append(
                {
                    "kpi": kpi,
                    "year": year,
                    "r2_heldout": choice.r2,
                    "r2_all_factors": choice.r2_all,
                    "factors_in_emulator": len(choice.emulator.columns),
                    "design_points": int(np.isfinite(y).sum()),
                    "mean": float(np.nanmean(y)),
                    "sd": float(np.nanstd(y, ddof=1)),
                }
            )
            log(f"{kpi} {year}: emulator on {len(choice.emulator.columns)} factors, held-out "
                f"R^2 {choice.r2:.3f} (all factors {choice.r2_all:.3f})")  # fmt: skip
    return pd.concat(rows, ignore_index=True), pd.DataFrame(fits)


def ranked(table: pd.DataFrame, kpi: str, year: int, top: int = 10) -> pd.DataFrame:
    t = table[(table["kpi"] == kpi) & (table["year"] == year)]
    return t.sort_values("ST", ascending=False).head(top)


def sobol_chart(table: pd.DataFrame, path: Path, top: int = 10,
                outputs: Sequence[tuple[str, int]] | None = None) -> None:  # fmt: skip
    """Bars of the total index (with its 95% interval) and the first-order index of the `top`
    factors, one panel per KPI and year."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = outputs or list(dict.fromkeys(zip(table["kpi"], table["year"], strict=True)))
    cols = 2
    rows = (len(pairs) + 1) // 2
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.6 * rows), squeeze=False)
    for ax, (kpi, year) in zip(axes.flat, pairs, strict=False):
        t = ranked(table, kpi, year, top)[::-1]
        colours = ["tab:orange" if k == "fitted" else "tab:blue" for k in t["kind"]]
        ax.barh(t["factor"], t["ST"], xerr=t["ST_conf"], color=colours, alpha=0.85,
                label="total (ST), 95% CI")  # fmt: skip
        ax.barh(t["factor"], t["S1"].clip(lower=0), height=0.35, color="k", alpha=0.55,
                label="first order (S1)")  # fmt: skip
        ax.set_title(f"{kpi}, December {year}", fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlim(0, max(1.0, float((t["ST"] + t["ST_conf"]).max())))
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes.flat[len(pairs) :]:
        ax.axis("off")
    fig.suptitle("Sobol indices on a GP emulator (blue: assumed or sourced; orange: fitted)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
