from __future__ import annotations

import pandas as pd

from flows.demand import ANY_LABEL, compute_demand


def _postings() -> pd.DataFrame:
    rows = [
        ("p1", "UA", "UA-30", None), ("p2", "UA", "UA-30", None), ("p3", "UA", "UA-30", None),
        ("p4", "MD", "MD-CU", None), ("p5", "UA", "UA-30", "p1"),  # p5 is a duplicate: never counted
    ]
    frame = pd.DataFrame(rows, columns=["posting_id", "country", "region", "duplicate_of"])
    frame["occupation"] = None
    return frame


def _mentions() -> pd.DataFrame:
    rows = [
        # p1 asks for SQL (two competences) and Excel; p2 for Excel twice; p4 for Python; p5 (duplicate) for SQL
        ("p1:0:3:sql", "p1", "digcomp", "digcomp:1", "digcomp:1.3"),
        ("p1:0:3:sql", "p1", "ecf", "ecf:B", "ecf:B.1"),
        ("p1:9:14:ms_excel", "p1", "digcomp", "digcomp:1", "digcomp:1.3"),
        ("p2:0:5:ms_excel", "p2", "digcomp", "digcomp:1", "digcomp:1.3"),
        ("p2:20:25:ms_excel", "p2", "digcomp", "digcomp:1", "digcomp:1.3"),
        ("p4:0:6:python", "p4", "digcomp", "digcomp:3", "digcomp:3.4"),
        ("p5:0:3:sql", "p5", "digcomp", "digcomp:1", "digcomp:1.3"),
    ]
    return pd.DataFrame(rows, columns=["mention_id", "posting_id", "framework", "area_id", "competence_id"])


def test_demand_counts_postings_not_mentions(toy_taxonomy) -> None:
    demand = compute_demand(_postings(), _mentions(), toy_taxonomy)
    ua = demand[demand["country"] == "UA"].set_index(["level", "competence_id"], drop=False)
    total = demand[(demand["country"] == "UA") & (demand["level"] == "total")].iloc[0]
    assert (total["postings_with"], total["postings_total"], total["mentions"], total["label"]) == (2, 3, 4, ANY_LABEL)
    dc13 = ua.loc[("competence", "digcomp:1.3")]
    assert (dc13["postings_with"], dc13["postings_total"], dc13["mentions"]) == (2, 3, 4)
    assert abs(dc13["share"] - 2 / 3) < 1e-12
    assert dc13["label"] == "Managing data, information and digital content"
    assert bool(dc13["low_count"]) is True


def test_demand_keeps_cells_without_any_mention(toy_taxonomy) -> None:
    postings = _postings()
    postings.loc[len(postings)] = ["p6", "GE", "GE-TB", None, None]
    demand = compute_demand(postings, _mentions(), toy_taxonomy)
    ge = demand[demand["country"] == "GE"]
    assert list(ge["level"]) == ["total"]
    assert (ge["postings_with"].iloc[0], ge["postings_total"].iloc[0], ge["share"].iloc[0]) == (0, 1, 0.0)


def test_demand_cells_add_up_to_the_month(toy_taxonomy) -> None:
    demand = compute_demand(_postings(), _mentions(), toy_taxonomy)
    totals = demand[demand["level"] == "total"]
    assert totals["postings_total"].sum() == 4
    framework = demand[(demand["level"] == "framework") & (demand["framework"] == "digcomp")]
    assert framework["postings_with"].sum() == 3
    areas = demand[demand["level"] == "area"].set_index(["country", "area_id"])["postings_with"]
    assert areas[("UA", "digcomp:1")] == 2 and areas[("MD", "digcomp:3")] == 1


def test_demand_is_the_same_with_mention_ids_as_categories(toy_taxonomy) -> None:
    """aggregate reads mention_id as a categorical (large months); the counts must not change."""
    mentions = _mentions()
    categorical = mentions.assign(mention_id=mentions["mention_id"].astype("category"))
    plain = compute_demand(_postings(), mentions, toy_taxonomy)
    pd.testing.assert_frame_equal(compute_demand(_postings(), categorical, toy_taxonomy), plain)
    assert plain["mentions"].sum() > 0


def test_aggregate_reads_the_demand_columns_of_mentions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flows import datasets
    from flows.demand import MENTION_COLUMNS

    rows = _mentions().assign(sentence="s", start_char=0, end_char=3, sentence_index=0, surface="x",
                              concept_id="c", concept_label="C", esco_uri=None, proficiency=None,
                              competence_label="L", method="matcher", score=1.0, taxonomy_version="t",
                              model_version="m", run_id="r")
    datasets.write_partition(tmp_path, "mentions", "2026-01", datasets.to_table(rows, datasets.MENTIONS))
    read = datasets.read_partition(tmp_path, "mentions", "2026-01", columns=MENTION_COLUMNS,
                                   categorical=["mention_id"])
    assert list(read.columns) == MENTION_COLUMNS
    assert isinstance(read["mention_id"].dtype, pd.CategoricalDtype)
    assert read["mention_id"].astype(str).tolist() == rows["mention_id"].tolist()
