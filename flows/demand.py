"""Demand: postings × mentions → counts and shares per cell and competence.

A cell is (country, region, occupation) within a month. For each cell there is one
row per level:

- ``total``: postings that ask for any digital skill of the taxonomy;
- ``framework``: postings that ask for any competence of a framework;
- ``area`` and ``competence``: postings that ask for that area / competence.

``share = postings_with / postings_total``, where ``postings_total`` counts every
original (non-duplicate) posting in the cell. Cells are disjoint, so summing
``postings_with`` and ``postings_total`` over cells gives correct shares for any
coarser grouping (for example by country).
"""

from __future__ import annotations

import pandas as pd

from taxonomy.model import FRAMEWORKS, Taxonomy

CELL = ["country", "region", "occupation"]
MENTION_COLUMNS = ["posting_id", "mention_id", "framework", "area_id", "competence_id"]  # what demand reads
LOW_COUNT = 5
ANY_LABEL = "Any digital skill"


def compute_demand(postings: pd.DataFrame, mentions: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Demand rows for one month (see the module docstring for the definition)."""
    cells = postings.loc[postings["duplicate_of"].isna(), ["posting_id", *CELL]]
    totals = cells.groupby(CELL, dropna=False).size().rename("postings_total").reset_index()
    joined = mentions[MENTION_COLUMNS].merge(cells, on="posting_id")
    levels = {
        "competence": ["framework", "area_id", "competence_id"],
        "area": ["framework", "area_id"],
        "framework": ["framework"],
        "total": [],
    }
    parts = []
    for level, keys in levels.items():
        grouped = (
            joined.groupby(CELL + keys, dropna=False)
            .agg(postings_with=("posting_id", "nunique"), mentions=("mention_id", "nunique"))
            .reset_index()
        )
        if level == "total":
            grouped = totals.merge(grouped, on=CELL, how="left").fillna({"postings_with": 0, "mentions": 0})
        else:
            grouped = grouped.merge(totals, on=CELL, how="left")
        grouped["level"] = level
        parts.append(grouped)
    demand = pd.concat(parts, ignore_index=True)
    for col in ("framework", "area_id", "competence_id"):
        if col not in demand:
            demand[col] = None
    demand["label"] = [
        _label(taxonomy, row) for row in demand[["level", "framework", "area_id", "competence_id"]].itertuples()
    ]
    demand["postings_with"] = demand["postings_with"].astype("int64")
    demand["mentions"] = demand["mentions"].astype("int64")
    demand["postings_total"] = demand["postings_total"].astype("int64")
    demand["share"] = demand["postings_with"] / demand["postings_total"]
    demand["low_count"] = demand["postings_total"] < LOW_COUNT
    order = {"total": 0, "framework": 1, "area": 2, "competence": 3}
    demand["_order"] = demand["level"].map(order)
    demand = demand.sort_values(
        ["country", "region", "occupation", "_order", "framework", "area_id", "competence_id"],
        na_position="first",
        kind="stable",
    )
    return demand.drop(columns="_order").reset_index(drop=True)


def _label(taxonomy: Taxonomy, row: object) -> str:
    level = row.level
    if level == "total":
        return ANY_LABEL
    if level == "framework":
        fw = str(row.framework)
        return FRAMEWORKS.get(fw, fw)
    key = row.competence_id if level == "competence" else row.area_id
    comp = taxonomy.competences.get(str(key))
    return comp.label if comp else str(key)
