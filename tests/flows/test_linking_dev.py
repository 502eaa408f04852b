"""The annotated linking dev set: its reader, the rule that chooses on it, and the shipped file."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from extractors.errors import SourceError
from flows import evaluate as ev

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "benchmarks" / "linking_dev"


def _tool(name: str) -> ModuleType:
    sys.path.insert(0, str(TOOLS))  # check.py imports esco_find
    try:
        spec = importlib.util.spec_from_file_location(f"linking_dev_{name}", TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(TOOLS))
    return module


def _rows() -> list[dict[str, str]]:
    with ev.LINKING_DEV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_reader_groups_by_subset_and_skips_the_special_labels(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,subset,sentence,span,sub_span,label,note\n"
                    "tech-0,tech,Know SQL and Java,SQL,,SQL,x\n"
                    "tech-0,tech,Know SQL and Java,Java,,Java (computer programming),x\n"
                    "tech-1,tech,Be great,great,,UNDERSPECIFIED,x\n"
                    "house-0,house,Use React,React,,LABEL NOT PRESENT,x\n"
                    "house-1,house,Manage budgets well,budgets,,manage budgets,x\n", encoding="utf-8")
    assert ev.read_linking_dev(path) == {
        "tech": [("Know SQL and Java", {"SQL", "Java (computer programming)"})],
        "house": [("Manage budgets well", {"manage budgets"})]}
    path.write_text("id,subset,sentence,span,sub_span,label,note\nx,TECH,S,s,,SQL,\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"\[S013\] .*a\.csv, line 2: needs a subset"):
        ev.read_linking_dev(path)
    with pytest.raises(SourceError, match=r"\[S001\]"):
        ev.read_linking_dev(tmp_path / "missing.csv")


def _m(rp5: float, mrr: float = 50.0) -> dict[str, float]:
    return {"RP@5": rp5, "MRR": mrr}


def test_the_rule_chooses_on_the_annotated_sets_and_reports_the_silver_choice() -> None:
    sets = ("tech-annotated", "house-annotated", "tech", "house", "paraphrase")
    result = {
        "none": {n: _m(v) for n, v in zip(sets, (60, 50, 98, 95, 62), strict=True)},
        "variants": {
            "label_desc+0": {"sets": {
                "tech-annotated": {"0.25": _m(62), "1": _m(70)}, "house-annotated": {"0.25": _m(51), "1": _m(55)},
                "tech": {"0.25": _m(98), "1": _m(97)}, "house": {"0.25": _m(95), "1": _m(92)},
                "paraphrase": {"0.25": _m(63.6), "1": _m(59)}}},
            "label_alts+0": {"sets": {n: {"0.25": _m(99), "1": _m(99)} for n in sets}},
        },
    }
    out = ev.apply_embedding_rule(result)
    assert out["choose_on"] == ["tech-annotated", "house-annotated"]
    assert out["means"]["none"] == {"RP@5": 55.0, "MRR": 50.0}
    assert out["means"]["label_desc+0@1"]["RP@5"] == 62.5
    assert out["eligible"] == ["label_desc+0@0.25", "label_desc+0@1"]  # label_alts is never eligible
    assert out["chosen"] == "label_desc+0@1"
    # the silver view: 0.25 is best there (85.53 vs 85.00) but only +0.53 over none (85.0): chosen
    assert out["means_silver"]["label_desc+0@0.25"]["RP@5"] == pytest.approx(85.53)
    assert out["chosen_silver"] == "label_desc+0@0.25"
    with pytest.raises(SourceError, match=r"\[S014\] no dev set named tech-gold"):
        ev.apply_embedding_rule(result, ("tech-gold",))


def test_checker_finds_missing_spans_unknown_labels_and_mixed_specials() -> None:
    check = _tool("check")
    batch = [{"id": "t-1", "spans": ["SQL", "team work"]}]
    preferred = {"SQL", "work in teams"}
    assert check.problems(batch, [{"id": "t-1", "span": "SQL", "labels": ["SQL"]},
                                  {"id": "t-1", "span": "team work", "labels": ["work in teams"]}], preferred) == []
    found = check.problems(batch, [{"id": "t-1", "span": "SQL", "labels": ["SQL", "LABEL NOT PRESENT"]},
                                   {"id": "t-1", "span": "Java", "labels": ["Java"]}], preferred)
    assert any("must stand alone" in p for p in found)
    assert any("no such (id, span)" in p for p in found)
    assert any("'Java' is not an ESCO preferred label" in p for p in found)
    assert "missing: ('t-1', 'team work')" in found


def test_shipped_set_is_complete_and_well_formed() -> None:
    rows = _rows()
    assert list(rows[0]) == ["id", "subset", "sentence", "span", "sub_span", "label", "note"]
    sentences = {r["id"]: (r["subset"], r["sentence"]) for r in rows}
    assert Counter(s for s, _ in sentences.values()) == {"tech": 90, "house": 90}
    assert all(r["id"].startswith(r["subset"] + "-") for r in rows)
    by_span: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        assert r["label"].strip() and r["note"].strip(), r
        by_span.setdefault((r["id"], r["span"]), []).append(r["label"])
    for labels in by_span.values():  # a special value stands alone, no label twice
        assert len(set(labels)) == len(labels)
        assert len(labels) == 1 or not set(labels) & ev.SKIP_LABELS
    data = ev.read_linking_dev()
    # both halves are big enough to choose with (as big as the validation splits: 75 / 61)
    assert len(data["tech"]) >= 40 and len(data["house"]) >= 40


def test_shipped_set_is_the_seeded_draw_from_skillspan_dev_linked_to_esco(shared_dir: Path) -> None:
    drawn = _tool("sample").draw(shared_dir, 90)
    rows = _rows()
    spans: dict[str, list[str]] = {}
    for r in rows:
        if r["span"] not in spans.setdefault(r["id"], []):
            spans[r["id"]].append(r["span"])
    assert {d["id"]: (d["sentence"], d["spans"]) for d in drawn} == {
        r["id"]: (r["sentence"], spans[r["id"]]) for r in rows}
    preferred = {r["preferredLabel"] for r in _tool("esco_find").skills(shared_dir)}
    assert {r["label"] for r in rows} - ev.SKIP_LABELS <= preferred
    validation = ev.benchmark_sentences(shared_dir)
    assert not {" ".join(r["sentence"].split()) for r in rows} & validation
