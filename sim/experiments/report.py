"""HTML report of one run with embedded PNG charts (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from sim.kpis.frame import CITY
from sim.kpis.registry import PLAN_TARGETS, REASON_NAMES

DISTRICT_KPIS = (
    "beds_per_1000",
    "medical_care_demand_met",
    "unmet_need_share",
    "occupancy_private",
)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _months(city: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.to_datetime(city["month"], format="%Y-%m")


def chart_targets(frame: pd.DataFrame) -> str:
    city = frame[frame["district"] == CITY]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5))
    for ax, kpi in zip(axes.flat, PLAN_TARGETS, strict=True):
        if kpi.name in city:
            ax.plot(_months(city), city[kpi.name], color="C0", label="model")
        ax.axhline(kpi.target, color="C3", ls="--", label=f"plan 2020 target {kpi.target:g}")
        ax.set_title(kpi.label_en, fontsize=10)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("City KPIs against the plan's 2020 targets")
    fig.autofmt_xdate()
    return _png(fig)


def chart_districts(frame: pd.DataFrame) -> str:
    last = frame[frame["month"] == frame["month"].max()].set_index("district")
    fig, axes = plt.subplots(1, len(DISTRICT_KPIS), figsize=(14, 4.5), sharey=True)
    for ax, kpi in zip(axes, DISTRICT_KPIS, strict=True):
        if kpi in last:
            vals = last[kpi].fillna(0.0)
            colors = ["C3" if d == CITY else "C0" for d in vals.index]
            ax.barh(vals.index, vals.to_numpy(), color=colors)
        ax.set_title(kpi, fontsize=9)
    fig.suptitle(f"Districts in {frame['month'].max()} (red: city)")
    return _png(fig)


def chart_care_mix(frame: pd.DataFrame) -> str:
    city = frame[frame["district"] == CITY]
    shares = [c for c in city.columns if c.startswith("share_")]
    fig, ax = plt.subplots(figsize=(10, 4))
    if shares:
        ax.stackplot(
            _months(city),
            *[city[c].fillna(0.0).to_numpy() for c in shares],
            labels=[c.removeprefix("share_") for c in shares],
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_ylabel("share of those in need")
    ax.set_title("Care mix of the elderly in need (city)")
    return _png(fig)


def chart_reasons(frame: pd.DataFrame) -> str:
    last = frame[(frame["month"] == frame["month"].max()) & (frame["district"] != CITY)]
    last = last.set_index("district")
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5), sharey=True)
    for ax, prefix, title in (
        (axes[0], "empty_reason_", "why beds stand empty (beds)"),
        (axes[1], "unmet_reason_", "why needs go unmet (persons)"),
    ):
        left = pd.Series(0.0, index=last.index)
        for k, r in enumerate(REASON_NAMES):
            col = prefix + r
            if col not in last:
                continue
            vals = last[col].fillna(0.0)
            ax.barh(last.index, vals.to_numpy(), left=left.to_numpy(), color=f"C{k}", label=r)
            left = left + vals
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Reasons by district, {frame['month'].max()}")
    return _png(fig)


def _target_table(frame: pd.DataFrame) -> str:
    city = frame[frame["district"] == CITY].set_index("month")
    rows = []
    for kpi in PLAN_TARGETS:
        val = city[kpi.name].iloc[-1] if kpi.name in city else float("nan")
        rows.append(
            f"<tr><td>{html.escape(kpi.label_en)}</td><td>{val:,.3f}</td><td>{kpi.target:,g}</td></tr>"
        )
    return (
        "<table><tr><th>KPI</th><th>model, last month</th><th>plan 2020 target</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render(frame: pd.DataFrame, manifest: dict) -> str:
    """The report as one self-contained HTML page."""
    sc = manifest.get("scenario", {})
    title = f"Taiyuan elderly care: {sc.get('name', '')}"
    charts = [
        ("KPIs against the plan's targets", chart_targets(frame)),
        ("Districts in the last month", chart_districts(frame)),
        ("Care mix", chart_care_mix(frame)),
        ("Empty beds and unmet needs by reason", chart_reasons(frame)),
    ]
    body = "".join(
        f"<h2>{html.escape(h)}</h2><img alt='{html.escape(h)}' src='data:image/png;base64,{b}'>"
        for h, b in charts
    )
    meta = (
        f"<p>{html.escape(sc.get('description', ''))}</p>"
        f"<p>seed {manifest.get('seed')}, scale {manifest.get('scale')}, "
        f"through {html.escape(str(manifest.get('until')))}, code "
        f"{html.escape(str(manifest.get('code_version')))}</p>"
    )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{meta}"
        f"{_target_table(frame)}{body}</body></html>"
    )
