"""The monthly coalition report: tables from demand/, rendered to HTML and CSV.

Pure functions: `report_tables` turns demand rows into the report's tables,
`render_html` renders them with the Jinja template (autoescaped), `write_report`
writes the folder.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from flows.demand import CELL, LOW_COUNT

TEMPLATES = Path(__file__).parent / "templates"
TOP_N = 15
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ReportData:
    month: str
    previous_month: str | None
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    method: dict[str, Any] = field(default_factory=dict)


def rollup(demand: pd.DataFrame, level: str, by: list[str]) -> pd.DataFrame:
    """Sum a level's cells over everything but `by`, and recompute the share.

    The denominator is the number of postings in the same group of cells (the
    month's total when `by` holds no cell dimension).
    """
    rows = demand[demand["level"] == level]
    totals = demand[demand["level"] == "total"]
    cell_keys = [k for k in by if k in CELL]
    grouped = (rows.groupby(by, dropna=False)
               .agg(postings_with=("postings_with", "sum"), mentions=("mentions", "sum")).reset_index())
    if cell_keys:
        denom = totals.groupby(cell_keys, dropna=False)["postings_total"].sum().rename("postings_total").reset_index()
        grouped = grouped.merge(denom, on=cell_keys, how="left")
    else:
        grouped["postings_total"] = int(totals["postings_total"].sum())
    grouped["share"] = grouped["postings_with"] / grouped["postings_total"].where(grouped["postings_total"] > 0)
    grouped["low_count"] = grouped["postings_total"] < LOW_COUNT
    return grouped


def _labels(demand: pd.DataFrame, key: str) -> dict[str, str]:
    rows = demand.dropna(subset=[key])
    return dict(zip(rows[key], rows["label"], strict=False))


def report_tables(month: str, demand: pd.DataFrame, previous: pd.DataFrame | None) -> ReportData:
    """Build the report's tables for `month` from its demand rows (and last month's)."""
    total = demand[demand["level"] == "total"]
    postings = int(total["postings_total"].sum())
    with_any = int(total["postings_with"].sum())
    comp_labels = _labels(demand, "competence_id")
    area_labels = {k: v for k, v in _labels(demand[demand["level"] == "area"], "area_id").items()}

    comps = rollup(demand, "competence", ["framework", "competence_id"])
    comps["competence"] = comps["competence_id"].map(comp_labels)
    if previous is not None and len(previous):
        prev = rollup(previous, "competence", ["framework", "competence_id"])[["competence_id", "share"]]
        comps = comps.merge(prev.rename(columns={"share": "share_previous"}), on="competence_id", how="left")
        comps["share_previous"] = comps["share_previous"].fillna(0.0)
        comps["change_pp"] = (comps["share"] - comps["share_previous"]) * 100
    comps = comps.sort_values(["share", "competence_id"], ascending=[False, True])

    areas = rollup(demand, "area", ["framework", "area_id"])
    areas["area"] = areas["area_id"].map(area_labels)
    areas = areas.sort_values(["framework", "share"], ascending=[True, False])

    countries = _by_country(demand)

    summary = {
        "postings": postings,
        "postings_with_digital": with_any,
        "share_digital": (with_any / postings) if postings else 0.0,
        "countries": int(total["country"].nunique(dropna=True)),
    }
    data = ReportData(month=month, previous_month=None, summary=summary)
    data.tables = {
        "top_competences": comps.head(TOP_N).reset_index(drop=True),
        "competences": comps.reset_index(drop=True),
        "areas": areas.reset_index(drop=True),
        "by_country": countries,
    }
    return data


def _by_country(demand: pd.DataFrame) -> pd.DataFrame:
    total = demand[demand["level"] == "total"]
    out = total.groupby("country", dropna=False).agg(postings_total=("postings_total", "sum"),
                                                     postings_with=("postings_with", "sum")).reset_index()
    out["share"] = out["postings_with"] / out["postings_total"]
    comp = demand[demand["level"] == "competence"]
    top = (comp.groupby(["country", "label"], dropna=False)["postings_with"].sum().reset_index()
           .sort_values(["country", "postings_with", "label"], ascending=[True, False, True])
           .groupby("country", dropna=False).head(3))
    tops = top.groupby("country", dropna=False)["label"].apply(lambda s: "; ".join(s)).rename("top_competences")
    out = out.merge(tops.reset_index(), on="country", how="left")
    out["country"] = out["country"].fillna("unknown")
    out["low_count"] = out["postings_total"] < LOW_COUNT
    return out.sort_values(["postings_total", "country"], ascending=[False, True]).reset_index(drop=True)


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV/XLSX injection).

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("Excel")
    ("'=HYPERLINK(1)", 'Excel')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(frame.columns)
        for row in frame.itertuples(index=False):
            writer.writerow([safe_cell(v) if not (isinstance(v, float) and pd.isna(v)) else "" for v in row])
    os.replace(tmp, path)


def render_html(data: ReportData) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["pct"] = lambda v: "–" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"
    env.filters["pp"] = lambda v: "–" if v is None or pd.isna(v) else f"{float(v):+.1f} pp"
    template = env.get_template("report.html.j2")
    tables = {name: frame.to_dict("records") for name, frame in data.tables.items()}
    return template.render(data=data, tables=tables, low_count=LOW_COUNT)


def write_report(data: ReportData, folder: Path) -> list[Path]:
    """Write index.html and one CSV per table into `folder`; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in data.tables.items():
        path = folder / f"{name}.csv"
        write_csv(frame, path)
        written.append(path)
    html = folder / "index.html"
    tmp = html.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, html)
    return [html, *written]
