from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from flows.demand import compute_demand
from flows.report import month_run_info, previous_month
from flows.reporting import (
    fmt_pct,
    fmt_pp,
    month_label,
    place_name,
    proficiency_table,
    render_html,
    report_tables,
    safe_cell,
    write_report,
    write_xlsx,
)

MONTH, PREV = "2026-09", "2026-08"


def _demand(toy_taxonomy, country: str = "UA") -> pd.DataFrame:
    postings = pd.DataFrame({"posting_id": ["p1", "p2"], "country": [country, country], "region": [None, None],
                             "occupation": [None, None], "duplicate_of": [None, None]})
    mentions = pd.DataFrame({"mention_id": ["m1"], "posting_id": ["p1"], "framework": ["digcomp"],
                             "area_id": ["digcomp:1"], "competence_id": ["digcomp:1.3"]})
    return compute_demand(postings, mentions, toy_taxonomy)


def _postings(occupation: str | None = None) -> pd.DataFrame:
    """Eight originals (six in Kyiv, two in Chișinău) and one duplicate of p1."""
    ids = [f"p{i}" for i in range(1, 10)]
    return pd.DataFrame({
        "posting_id": ids,
        "country": ["UA"] * 6 + ["MD"] * 2 + ["UA"],
        "region": ["UA-30"] * 6 + ["MD-CU"] * 2 + ["UA-30"],
        "occupation": [occupation] * 9,
        "duplicate_of": [None] * 8 + ["p1"],
        "source": ["board-a"] * 9,
    })


def _mentions(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    rows = []
    for i, (posting, competence) in enumerate(pairs):
        framework, code = competence.split(":")
        area = f"{framework}:{code.split('.')[0]}"
        rows.append({"mention_id": f"m{i}", "posting_id": posting, "framework": framework, "area_id": area,
                     "competence_id": competence})
    return pd.DataFrame(rows)


def _month(toy_taxonomy, occupation: str | None = None) -> pd.DataFrame:
    # p1, p3: digcomp:1.3; p2: digcomp:3.4 + ecf:B.1; p7: digcomp:3.4; p9 (a duplicate) is left out.
    pairs = [("p1", "digcomp:1.3"), ("p3", "digcomp:1.3"), ("p2", "digcomp:3.4"), ("p2", "ecf:B.1"),
             ("p7", "digcomp:3.4"), ("p9", "digcomp:1.3")]
    return compute_demand(_postings(occupation), _mentions(pairs), toy_taxonomy)


def _previous(toy_taxonomy) -> pd.DataFrame:
    # last month: p1 digcomp:1.3, p4 digcomp:2.1 (not asked for this month)
    return compute_demand(_postings(), _mentions([("p1", "digcomp:1.3"), ("p4", "digcomp:2.1")]), toy_taxonomy)


def test_reporting_tables_and_files(toy_taxonomy, tmp_path: Path) -> None:
    data = report_tables("2026-09", _demand(toy_taxonomy), _demand(toy_taxonomy).assign(postings_with=0))
    data.previous_month = "2026-08"
    top = data.tables["top_competences"]
    assert list(top["competence_id"]) == ["digcomp:1.3"]
    assert top["share"].iloc[0] == 0.5 and top["change_pp"].iloc[0] == 50.0
    assert data.summary == {"postings": 2, "postings_with_digital": 1, "share_digital": 0.5, "countries": 1,
                            "share_digital_previous": 0.0, "share_digital_change_pp": 50.0}
    files = write_report(data, tmp_path / "2026-09")
    assert {f.name for f in files} == {"index.html", "headline.csv", "top_competences.csv", "competences.csv",
                                       "areas.csv", "by_region_area.csv", "by_country.csv", "report.xlsx"}
    html = (tmp_path / "2026-09" / "index.html").read_text(encoding="utf-8")
    assert "Managing data, information and digital content" in html and "50.0%" in html and "+50.0\u00a0pp" in html
    with (tmp_path / "2026-09" / "by_country.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["country"] == "UA" and rows[0]["country_name"] == "Ukraine" and rows[0]["postings_total"] == "2"


def test_report_tables_numbers(toy_taxonomy) -> None:
    data = report_tables(MONTH, _month(toy_taxonomy), _previous(toy_taxonomy), taxonomy=toy_taxonomy,
                         previous_month=PREV)
    assert data.summary == {"postings": 8, "postings_with_digital": 4, "share_digital": 0.5, "countries": 2,
                            "share_digital_previous": 0.25, "share_digital_change_pp": 25.0}

    comps = data.tables["competences"].set_index("competence_id")
    assert comps.loc["digcomp:1.3", ["postings_with", "postings_total"]].tolist() == [2, 8]
    assert comps.loc["digcomp:1.3", "share"] == 0.25 and comps.loc["digcomp:1.3", "change_pp"] == pytest.approx(12.5)
    assert comps.loc["digcomp:3.4", "change_pp"] == pytest.approx(25.0)
    assert comps.loc["ecf:B.1", "share"] == 0.125
    # asked for last month only: kept, at zero, as a fall
    assert comps.loc["digcomp:2.1", "postings_with"] == 0
    assert comps.loc["digcomp:2.1", "change_pp"] == pytest.approx(-12.5)
    top = data.tables["top_competences"]
    assert list(top["competence_id"]) == ["digcomp:1.3", "digcomp:3.4", "ecf:B.1"]  # zero rows left out
    assert top["competence"].iloc[1] == "Programming"

    areas = data.tables["areas"].set_index("area_id")
    assert areas.loc["digcomp:1", "share"] == 0.25 and areas.loc["digcomp:3", "postings_with"] == 2

    grid = data.tables["by_region_area"]
    assert set(grid["area_id"]) == {"digcomp:1", "digcomp:2", "digcomp:3"}  # every DigComp area, zeros included
    kyiv = grid[grid["region"] == "UA-30"].set_index("area_id")
    assert kyiv.loc["digcomp:1", ["postings_with", "postings_total"]].tolist() == [2, 6]
    assert kyiv.loc["digcomp:1", "share"] == pytest.approx(2 / 6) and kyiv.loc["digcomp:2", "share"] == 0.0
    assert kyiv["any_share"].iloc[0] == pytest.approx(3 / 6) and not kyiv["low_count"].any()
    assert kyiv["region_name"].iloc[0] == "Kyiv" and kyiv["country_name"].iloc[0] == "Ukraine"
    chisinau = grid[grid["region"] == "MD-CU"].set_index("area_id")
    assert chisinau.loc["digcomp:3", "share"] == 0.5 and chisinau["low_count"].all()
    assert list(grid["region"].drop_duplicates()) == ["UA-30", "MD-CU"]  # biggest first

    by_country = data.tables["by_country"].set_index("country")
    assert by_country.loc["UA", ["postings_total", "postings_with"]].tolist() == [6, 3]
    assert by_country.loc["MD", "top_competences"] == "Programming" and by_country.loc["MD", "low_count"]
    assert "occupations" not in data.tables  # no occupation data yet: no section


def test_report_page_sections(toy_taxonomy, tmp_path: Path) -> None:
    data = report_tables(MONTH, _month(toy_taxonomy), _previous(toy_taxonomy), taxonomy=toy_taxonomy,
                         previous_month=PREV)
    data.method = {"taxonomy_version": "toy@123", "model_version": "matcher-1", "sources": ["board-a"],
                   "run_info": {"postings": 9, "duplicates": 1, "duplicate_rate": 1 / 9, "quarantined": 3}}
    html = render_html(data)
    assert '<html lang="en">' in html
    assert html.count('class="chart-bar"') >= 3 + 3  # top competences and changes
    assert 'id="region-areas"' in html and "UA-30" in html and "Kyiv" in html and "Chișinău" in html
    assert "11.1%" in html and ">3</b>" in html and "toy@123" in html and "board-a" in html  # dup rate, quarantine
    assert "Largest rise: Programming (+25.0\u00a0pp)." in html
    assert "Largest fall: Interacting through digital technologies (−12.5\u00a0pp)." in html
    assert 'class="badge-low"' in html  # Chișinău rests on 2 ads
    assert 'id="occupations"' not in html and 'id="levels"' not in html
    # self-contained: nothing fetched from elsewhere
    for needle in ("<script", "<link", "src=", "@import", "url(", "https://"):
        assert needle not in html
    assert html.count("http://") == html.count('xmlns="http://www.w3.org/2000/svg"')

    with_occ = report_tables(MONTH, _month(toy_taxonomy, occupation="2512"), None)
    page = render_html(with_occ)
    assert list(with_occ.tables["occupations"]["occupation"]) == ["2512"] and 'id="occupations"' in page
    assert "There is no data for the previous month" in page


def test_reporting_escapes_text_from_ads(toy_taxonomy, tmp_path: Path) -> None:
    demand = _demand(toy_taxonomy, country="<script>alert(1)</script>")
    write_report(report_tables("2026-09", demand, None), tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_reporting_escapes_labels_and_regions(toy_taxonomy, tmp_path: Path) -> None:
    demand = _month(toy_taxonomy)
    demand["region"] = demand["region"].replace("UA-30", '"><img src=x onerror=alert(1)>')
    demand["country"] = demand["country"].replace("MD", "javascript:alert(1)")
    demand.loc[demand["competence_id"] == "digcomp:1.3", "label"] = "<script>alert(2)</script>"
    demand.loc[demand["competence_id"] == "digcomp:3.4", "label"] = "javascript:alert(3)"
    data = report_tables(MONTH, demand, None)  # no taxonomy: labels come from the demand rows
    write_report(data, tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html and "href" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html  # in the tables and in the SVG chart
    assert html.count("&lt;script&gt;alert(2)&lt;/script&gt;") >= 2
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "javascript:alert(3)" in html  # shown as text only, never as a link
    with (tmp_path / "top_competences.csv").open(encoding="utf-8") as fh:
        assert {r["competence"] for r in csv.DictReader(fh)} >= {"<script>alert(2)</script>", "javascript:alert(3)"}


def test_reporting_neutralises_formulas() -> None:
    cells = ("=1+1", "+7 999", "-x", "@SUM(A1)", "SQL", 3)
    assert [safe_cell(v) for v in cells] == ["'=1+1", "'+7 999", "'-x", "'@SUM(A1)", "SQL", 3]


def test_xlsx_sheets_and_formula_injection(toy_taxonomy, tmp_path: Path) -> None:
    demand = _month(toy_taxonomy)
    demand["country"] = demand["country"].replace("MD", '=HYPERLINK("http://evil.example","click")')
    demand.loc[demand["competence_id"] == "ecf:B.1", "label"] = "+cmd|' /C calc'!A0"
    no_mentions = pd.DataFrame(columns=["posting_id", "proficiency"])
    data = report_tables(MONTH, demand, _previous(toy_taxonomy), previous_month=PREV,
                         proficiency=proficiency_table(no_mentions, _postings()))
    write_report(data, tmp_path)
    book = load_workbook(tmp_path / "report.xlsx")
    assert book.sheetnames == ["headline", "top_competences", "competences", "areas", "by_region_area", "by_country",
                               "proficiency"]
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in texts and "'+cmd|' /C calc'!A0" in texts
    assert not any(t.startswith(("=", "+", "@")) for t in texts)

    top = book["top_competences"]
    header = [c.value for c in top[1]]
    first = dict(zip(header, [c.value for c in top[2]], strict=True))
    assert first["competence_id"] == "digcomp:1.3" and first["postings_with"] == 2 and first["share"] == 0.25
    assert top.cell(row=2, column=header.index("share") + 1).number_format == "0.0%"
    headline = {r[0].value: r[1].value for r in book["headline"].iter_rows(min_row=2)}
    assert headline["postings"] == 8 and headline["month"] == MONTH and headline["previous_month"] == PREV
    with (tmp_path / "by_country.csv").open(encoding="utf-8") as fh:
        assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in {r["country"] for r in csv.DictReader(fh)}


def test_write_xlsx_keeps_strings_as_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": ["=1+1", "ok\x01text", "@SUM(A1)"], "share": [0.5, float("nan"), 1.0]})
    write_xlsx({"t": frame}, tmp_path / "t.xlsx")
    sheet = load_workbook(tmp_path / "t.xlsx")["t"]
    assert [c.value for c in sheet["A"]] == ["label", "'=1+1", "oktext", "'@SUM(A1)"]
    assert [c.data_type for c in sheet["A"]][1:] == ["s", "s", "s"]
    assert [c.value for c in sheet["B"]] == ["share", 0.5, None, 1.0]


def test_report_in_russian(toy_taxonomy) -> None:
    data = report_tables(MONTH, _month(toy_taxonomy), _previous(toy_taxonomy), taxonomy=toy_taxonomy, lang="ru",
                         previous_month=PREV)
    html = render_html(data)
    assert '<html lang="ru">' in html
    for heading in ("Самые востребованные компетенции", "Области DigComp по регионам", "Спрос по странам",
                    "Методика и оговорки", "Изменение по сравнению с предыдущим месяцем (август 2026 г.)"):
        assert heading in html
    assert "Спрос на цифровые навыки в вакансиях — сентябрь 2026 г." in html
    assert "Программирование" in html and "Информационная грамотность" in html  # translated taxonomy labels
    assert "Managing data, information and digital content" in html  # no Russian title yet: English
    assert "Киев" in html and "Украина" in html  # pycountry names in Russian
    assert "50,0\u00a0%" in html and "+25,0\u00a0п. п." in html
    assert "Top competences" not in html
    assert data.tables["top_competences"]["competence"].tolist()[:2] == [
        "Managing data, information and digital content", "Программирование"]
    with pytest.raises(ValueError, match="report language"):
        report_tables(MONTH, _month(toy_taxonomy), None, lang="de")


@pytest.mark.parametrize("lang, heading", [("uk", "Найзатребуваніші компетентності"),
                                           ("ro", "Cele mai cerute competențe")])
def test_report_other_languages(toy_taxonomy, lang: str, heading: str) -> None:
    html = render_html(report_tables(MONTH, _month(toy_taxonomy), None, taxonomy=toy_taxonomy, lang=lang))
    assert f'<html lang="{lang}">' in html and heading in html


def test_formatting_and_names() -> None:
    assert (fmt_pct(0.25), fmt_pct(0.25, "ru"), fmt_pct(0.25, "ro")) == ("25.0%", "25,0\u00a0%", "25,0%")
    assert (fmt_pp(-1.25), fmt_pp(0.0), fmt_pp(3, "uk")) == ("−1.2\u00a0pp", "±0.0\u00a0pp", "+3,0\u00a0в. п.")
    assert month_label("2026-01", "uk") == "січень 2026 р." and month_label("2026-12", "ro") == "decembrie 2026"
    assert place_name("MD", "en") == "Moldova" and place_name("MD-CU", "uk") == "Кишинів"
    assert place_name("<script>", "en") == "" and place_name(None) == ""


def test_proficiency_table() -> None:
    postings = pd.DataFrame({"posting_id": ["p1", "p2", "p3", "p4", "p5"],
                             "duplicate_of": [None, None, None, None, "p2"]})
    mentions = pd.DataFrame({"posting_id": ["p1", "p1", "p2", "p3", "p5", "p5"],
                             "proficiency": ["basic", "advanced", "specialist", None, "specialist", "basic"]})
    table = proficiency_table(mentions, postings).set_index("proficiency")
    assert table["postings"].to_dict() == {"specialist": 1, "advanced": 1, "intermediate": 0, "basic": 0,
                                           "unspecified": 1, "none": 1}
    assert table["share"].to_dict()["advanced"] == 0.25 and (table["postings_total"] == 4).all()
    assert table["low_count"].all()  # 4 postings < 5
    empty = proficiency_table(mentions.iloc[0:0], postings.iloc[0:0])
    assert empty["postings"].sum() == 0 and (empty["share"] == 0).all()


def test_report_with_proficiency(toy_taxonomy, tmp_path: Path) -> None:
    mentions = pd.DataFrame({"posting_id": ["p1", "p2", "p3", "p7"],
                             "proficiency": ["basic", "specialist", "intermediate", "specialist"]})
    prof = proficiency_table(mentions, _postings())
    data = report_tables(MONTH, _month(toy_taxonomy), None, proficiency=prof)
    assert data.summary["share_specialist"] == 0.25
    html = render_html(data)
    assert 'id="levels"' in html and 'class="chart stacked"' in html
    assert "25.0% of ads ask for specialist-level skills; 12.5% ask for basic skills at most." in html
    files = {f.name for f in write_report(data, tmp_path)}
    assert "proficiency.csv" in files
    write_report(report_tables(MONTH, _month(toy_taxonomy), None), tmp_path)
    assert not (tmp_path / "proficiency.csv").exists()  # a table no longer produced is not left behind


def test_month_run_info() -> None:
    info = month_run_info(_postings(), quarantined=4)
    assert info == {"postings": 9, "originals": 8, "duplicates": 1, "duplicate_rate": 1 / 9, "quarantined": 4}
    assert "quarantined" not in month_run_info(_postings(), None)


def test_report_previous_month() -> None:
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-10") == "2026-09"
