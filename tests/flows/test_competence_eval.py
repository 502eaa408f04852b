"""Competence-level evaluation: the metric on a tiny hand-made labelled file."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractors.errors import SourceError
from flows.competence_eval import (
    choose_threshold,
    evaluate_competences,
    micro,
    predictions_at,
    read_labelled,
    score_table,
)

CSV = """id,lang,split,kind,sentence,competences
t-1,en,test,explicit,Strong SQL skills are required.,ecf:D.7;digcomp:1.3
t-2,en,test,none,We offer a friendly team and free coffee.,
t-3,ru,test,explicit,Опыт работы с Excel.,digcomp:1.3
d-1,en,dev,implicit,Prepare weekly sales reports.,digcomp:1.3
"""


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_read_labelled_splits_and_gold_sets(labelled: Path) -> None:
    rows = read_labelled(labelled, "test")
    assert [r["id"] for r in rows] == ["t-1", "t-2", "t-3"]
    assert rows[0]["gold"] == {"ecf:D.7", "digcomp:1.3"}
    assert rows[1]["gold"] == set()
    assert [r["id"] for r in read_labelled(labelled, "dev")] == ["d-1"]
    with pytest.raises(SourceError, match="not found"):
        read_labelled(labelled.with_name("missing.csv"))


def test_micro_counts_pairs_by_hand() -> None:
    gold = [{"a", "b"}, set(), {"c"}]
    predicted = [{"a", "x"}, {"y"}, {"c"}]
    # TP: a, c = 2; FP: x, y = 2; FN: b = 1  → P = 2/4, R = 2/3, F1 = 2PR/(P+R) = 4/7
    m = micro(gold, predicted)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 2, 1)
    assert m["P"] == 50.0 and m["R"] == 66.7 and m["F1"] == round(100 * 4 / 7, 1)
    assert micro([set()], [set()])["F1"] == 0.0


def test_score_table_groups_by_language_and_kind(labelled: Path) -> None:
    rows = read_labelled(labelled, "test")
    table = score_table(rows, {"matcher": [{"ecf:D.7"}, set(), {"digcomp:1.3", "ecf:B.1"}]})
    m = table["matcher"]
    assert (m["overall"]["tp"], m["overall"]["fp"], m["overall"]["fn"]) == (2, 1, 1)
    assert m["by_lang"]["ru"]["P"] == 50.0 and m["by_lang"]["ru"]["R"] == 100.0
    assert m["by_lang"]["en"]["P"] == 100.0 and m["by_lang"]["en"]["R"] == 50.0
    assert m["by_kind"]["none"]["sentences"] == 1 and m["by_kind"]["none"]["fp"] == 0


def test_threshold_choice_uses_combined_f1() -> None:
    rows = [{"gold": {"a"}}, {"gold": {"b"}}, {"gold": set()}]
    matched = [{"a"}, set(), set()]
    probs = [{"a": 0.9}, {"b": 0.45, "c": 0.35}, {"d": 0.65}]
    pred = predictions_at(matched, probs, 0.4)
    assert pred["classifier"] == [{"a"}, {"b"}, {"d"}]
    assert pred["combined"] == [{"a"}, {"b"}, {"d"}]
    best, scores = choose_threshold(rows, matched, probs, (0.3, 0.4, 0.5, 0.7))
    # F1: 0.3 → a b c d (P 2/4, R 1) 0.667; 0.4 → a b d 0.8; 0.5 → a d 0.5; 0.7 → a (P 1, R 1/2) 0.667
    assert scores["0.40"]["combined"]["F1"] == 80.0
    assert best == 0.4


def test_evaluate_competences_runs_the_real_pipeline(labelled: Path) -> None:
    result = evaluate_competences(labelled, threshold=0.5)
    assert result["sentences"] == 3 and result["threshold"] == 0.5
    matcher = result["methods"]["matcher"]
    # the matcher finds SQL and Excel: every gold competence of the explicit sentences it maps to
    assert matcher["by_kind"]["explicit"]["R"] == 100.0
    assert matcher["by_kind"]["none"]["fp"] == 0
    combined = result["methods"]["combined"]["overall"]
    assert combined["tp"] >= matcher["overall"]["tp"]
    chosen = evaluate_competences(labelled)
    assert chosen["dev"]["sentences"] == 1 and set(chosen["dev"]["candidates"]) == {
        "0.30", "0.40", "0.50", "0.60", "0.70"}
