"""Span precision/recall of the extraction pipeline against SkillSpan-style CoNLL gold."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import evaluate as ev

# token <TAB> skill tag <TAB> knowledge tag; blank line between sentences.
CONLL = """\
Experience\tO\tO
with\tO\tO
Python\tO\tB-Knowledge
and\tO\tO
structured\tO\tB-Knowledge
query\tO\tI-Knowledge
language\tO\tI-Knowledge

write\tB-Skill\tO
SQL\tI-Skill\tB-Knowledge
queries\tI-Skill\tO
daily\tO\tO

We\tO\tO
offer\tO\tO
coffee\tO\tO

stray\tI-Skill\tO
tag\tI-Skill\tO
"""


@pytest.fixture()
def conll(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_dev.conll"
    path.write_text(CONLL, encoding="utf-8")
    return path


def test_read_conll_spans_pools_skill_and_knowledge_columns(conll: Path) -> None:
    rows = ev.read_conll_spans(conll)
    assert [tokens[:2] for tokens, _ in rows] == [["Experience", "with"], ["write", "SQL"], ["We", "offer"],
                                                  ["stray", "tag"]]
    assert rows[0][1] == {(2, 3), (4, 7)}
    assert rows[1][1] == {(0, 3), (1, 2)}  # a knowledge span nested in a skill span
    assert rows[2][1] == set()
    assert rows[3][1] == {(0, 2)}  # an I- tag without B- opens a span


def test_span_scores_exact_and_partial() -> None:
    gold = [{(2, 3), (4, 7)}, {(0, 3)}, set()]
    predicted = [{(2, 3), (5, 7)}, {(1, 2)}, {(0, 1)}]
    scores = ev.span_scores(gold, predicted)
    assert (scores["gold"], scores["predicted"], scores["sentences"]) == (3, 4, 3)
    # exact: only (2, 3) → P 1/4, R 1/3
    assert scores["exact"] == {"P": 25.0, "R": 33.33, "F1": 28.57}
    # partial: predicted (2,3), (5,7), (1,2) overlap gold (3/4); every gold span is touched (3/3)
    assert scores["partial"] == {"P": 75.0, "R": 100.0, "F1": 85.71}


def test_span_scores_with_nothing_predicted_is_zero_not_an_error() -> None:
    scores = ev.span_scores([{(0, 1)}], [set()])
    assert scores["exact"] == {"P": 0.0, "R": 0.0, "F1": 0.0}


def test_evaluate_spans_runs_the_real_pipeline_on_gold_tokens(conll: Path, tmp_path: Path,
                                                              toy_taxonomy_dir: Path) -> None:
    folder = tmp_path / "shared" / ev.SKILLSPAN_DIR
    folder.mkdir(parents=True)
    (folder / "skillspan_tiny_dev.conll").write_text(conll.read_text(encoding="utf-8"), encoding="utf-8")
    result = ev.evaluate_skillspan_spans(tmp_path / "shared", [str(toy_taxonomy_dir)], subsets=("tiny",))
    scores = result["taxonomies"][str(toy_taxonomy_dir)]["subsets"]["tiny"]
    # The toy taxonomy knows Python, SQL and "structured query language": the matcher finds
    # Python (2,3), "structured query language" (4,7) and SQL (1,2) on the gold tokens.
    assert scores["gold"] == 5 and scores["predicted"] == 3
    assert scores["exact"] == {"P": 100.0, "R": 60.0, "F1": 75.0}
    assert scores["partial"]["R"] == 80.0  # (0,3) "write SQL queries" overlaps SQL; "stray tag" does not
