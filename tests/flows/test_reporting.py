from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from flows.demand import compute_demand
from flows.report import previous_month
from flows.reporting import report_tables, safe_cell, write_report


def _demand(toy_taxonomy, country: str = "UA") -> pd.DataFrame:
    postings = pd.DataFrame({"posting_id": ["p1", "p2"], "country": [country, country], "region": [None, None],
                             "occupation": [None, None], "duplicate_of": [None, None]})
    mentions = pd.DataFrame({"mention_id": ["m1"], "posting_id": ["p1"], "framework": ["digcomp"],
                             "area_id": ["digcomp:1"], "competence_id": ["digcomp:1.3"]})
    return compute_demand(postings, mentions, toy_taxonomy)


def test_reporting_tables_and_files(toy_taxonomy, tmp_path: Path) -> None:
    data = report_tables("2026-09", _demand(toy_taxonomy), _demand(toy_taxonomy).assign(postings_with=0))
    data.previous_month = "2026-08"
    top = data.tables["top_competences"]
    assert list(top["competence_id"]) == ["digcomp:1.3"]
    assert top["share"].iloc[0] == 0.5 and top["change_pp"].iloc[0] == 50.0
    assert data.summary == {"postings": 2, "postings_with_digital": 1, "share_digital": 0.5, "countries": 1}
    files = write_report(data, tmp_path / "2026-09")
    assert {f.name for f in files} == {"index.html", "top_competences.csv", "competences.csv", "areas.csv", "by_country.csv"}
    html = (tmp_path / "2026-09" / "index.html").read_text(encoding="utf-8")
    assert "Managing data, information and digital content" in html and "50.0%" in html and "+50.0 pp" in html
    with (tmp_path / "2026-09" / "by_country.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["country"] == "UA" and rows[0]["postings_total"] == "2"


def test_reporting_escapes_text_from_ads(toy_taxonomy, tmp_path: Path) -> None:
    demand = _demand(toy_taxonomy, country="<script>alert(1)</script>")
    write_report(report_tables("2026-09", demand, None), tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_reporting_neutralises_formulas() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+7 999", "-x", "@SUM(A1)", "SQL", 3)] == ["'=1+1", "'+7 999", "'-x", "'@SUM(A1)", "SQL", 3]


def test_report_previous_month() -> None:
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-10") == "2026-09"
