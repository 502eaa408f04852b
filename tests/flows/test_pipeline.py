"""End to end: the pipeline flow on the bundled sample ads, under a Prefect test server."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows import datasets
from flows.settings import PipelineSettings

pytestmark = pytest.mark.slow
PROVENANCE = ["run_id", "ingested_at"]

# Ads of the bundled sample (flows/sample_data/README.md, "known ads") and the
# concepts each one names.
KNOWN = {
    "jl-0001": {"python", "django", "postgresql", "docker", "git"},
    "jl-0002": {"medoc", "ms_excel"},
    "jl-0003": {"sql", "power_bi", "ms_excel"},
    "jl-0004": {"javascript", "react", "git", "figma"},
}


def _snapshot(root: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("postings", "mentions", "demand", "quarantine"):
        frame = datasets.read_dataset(root, name)
        frame = frame.drop(columns=[c for c in PROVENANCE if c in frame])
        out[name] = frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)
    return out


def test_pipeline_counts_reconcile(sample_run) -> None:
    root, summary = sample_run
    counts = summary["counts"]
    assert counts["read"] == counts["kept"] + counts["duplicates"] + counts["quarantined"] + counts["out_of_range"]
    assert counts["read"] >= 150 and counts["duplicates"] >= 6 and counts["quarantined"] >= 8
    postings = datasets.read_dataset(root, "postings")
    assert len(postings) == counts["kept"] + counts["duplicates"]
    assert int(postings["duplicate_of"].notna().sum()) == counts["duplicates"]
    quarantine = datasets.read_dataset(root, "quarantine")
    assert len(quarantine) == counts["quarantined"]
    assert quarantine["reason"].str.len().min() > 10
    assert {"sample-jsonl", "sample-csv"} == set(quarantine["source"].astype(str))
    runs = datasets.read_dataset(root, "runs")
    row = runs[runs["run_id"] == summary["run_id"]].iloc[0]
    assert row["status"] == "succeeded" and row["read"] == counts["read"] and row["kept"] == counts["kept"]


def test_pipeline_known_ads_yield_their_concepts(sample_run) -> None:
    root, _ = sample_run
    postings = datasets.read_dataset(
        root, "postings", columns=["posting_id", "source_id", "language", "country", "city"]
    )
    mentions = datasets.read_dataset(root, "mentions")
    by_source_id = postings.set_index("source_id")
    for source_id, concepts in KNOWN.items():
        pid = by_source_id.loc[source_id, "posting_id"]
        found = set(mentions.loc[mentions["posting_id"] == pid, "concept_id"])
        assert concepts <= found, (source_id, found)
    driver = by_source_id.loc["jl-0005", "posting_id"]
    assert not (mentions["posting_id"] == driver).any()
    assert by_source_id.loc["jl-0001", ["language", "country", "city"]].tolist() == ["ru", "BY", "Minsk"]
    first = mentions.iloc[0]
    text = postings.set_index("posting_id")  # evidence: offsets point into the stored text
    full = datasets.read_dataset(root, "postings", columns=["posting_id", "text"]).set_index("posting_id")["text"]
    assert full[first["posting_id"]][first["start_char"] : first["end_char"]] == first["surface"]
    assert len(text) > 0


def test_pipeline_outputs_open_with_pandas_and_duckdb(sample_run) -> None:
    root, summary = sample_run
    frame = pd.read_parquet(root / "mentions")
    assert len(frame) == summary["mentions"] > 0
    count = duckdb.sql(f"SELECT count(*) FROM '{root}/mentions/**/*.parquet'").fetchall()[0][0]
    assert count == len(frame)
    months = sorted(p.name for p in (root / "reports").iterdir())
    assert months == summary["months"] and len(months) >= 4
    html = (root / "reports" / months[-1] / "index.html").read_text(encoding="utf-8")
    assert "Top competences" in html and "Demand by country" in html
    demand = pd.read_parquet(root / "demand")
    total = demand[demand["level"] == "total"].groupby("month", observed=True)["postings_total"].sum()
    kept = pd.read_parquet(root / "postings").query("duplicate_of.isna()").groupby("month", observed=True).size()
    assert total.to_dict() == kept.to_dict()


def test_pipeline_second_run_gives_identical_datasets(sample_run) -> None:
    from flows.pipeline import pipeline_flow

    root, first_summary = sample_run
    before = _snapshot(root)
    # incremental (the default): nothing new in the sources, nothing read, nothing changes
    second = pipeline_flow(PipelineSettings(out_dir=str(root)))
    assert second["counts"]["read"] == 0 and second["months"] == []
    # full refresh: everything read again and every month rewritten, with the same content
    third = pipeline_flow(PipelineSettings(out_dir=str(root), full_refresh=True))
    assert third["counts"] == first_summary["counts"]
    after = _snapshot(root)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_like=False)
    runs = datasets.read_dataset(root, "runs")
    assert len(runs) == 3 and set(runs["status"]) == {"succeeded"}


def test_pipeline_completes_months_a_killed_run_left_unfinished(sample_run) -> None:
    from flows.pipeline import pipeline_flow

    root, _ = sample_run
    months = datasets.partitions(root, "postings")
    # as if a run had been killed after ingest: one month has no demand and no report yet
    datasets.delete_partition(root, "demand", months[1])
    (root / "reports" / months[1] / "index.html").unlink()
    assert datasets.stale_months(root) == [months[1]]
    summary = pipeline_flow(PipelineSettings(out_dir=str(root)))
    assert summary["counts"]["read"] == 0 and summary["months"] == [months[1]]
    assert datasets.stale_months(root) == []
    assert (root / "reports" / months[1] / "index.html").is_file()


def test_pipeline_publishes_summary_artifacts(sample_run) -> None:  # noqa: ARG001 (needs a run)
    from prefect.artifacts import Artifact

    run_summary = Artifact.get("skillpulse-run-summary")
    assert run_summary is not None and (run_summary.description or "").startswith("skillpulse run ")
    for key in (
        "skillpulse-ingest-summary",
        "skillpulse-extract-summary",
        "skillpulse-aggregate-summary",
        "skillpulse-report-summary",
    ):
        artifact = Artifact.get(key)
        assert artifact is not None, key
        assert artifact.data, key


def test_stage_artifacts_have_one_row_per_month(sample_run) -> None:
    import json

    from prefect.artifacts import Artifact

    _, summary = sample_run
    for key, column in (
        ("skillpulse-extract-summary", "mention_rows"),
        ("skillpulse-aggregate-summary", "demand_rows"),
        ("skillpulse-report-summary", "page"),
    ):
        artifact = Artifact.get(key)
        assert artifact is not None, key
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        # the latest run of the session wrote it (another test re-runs one month): its months, in order
        months = [r["month"] for r in rows]
        assert months and months == sorted(set(months)) and set(months) <= set(summary["months"]), key
        assert all(r[column] not in (None, "") for r in rows), key
        if key == "skillpulse-extract-summary":
            assert all(int(r[column]) > 0 for r in rows)
