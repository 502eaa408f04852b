"""Report: demand/ → reports/YYYY-MM/ (index.html, CSV tables and report.xlsx) for each month."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import datasets, progress, storage
from flows.lock import output_lock
from flows.reporting import proficiency_table, report_tables, write_report
from flows.runners import run_months
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy


def previous_month(month: str) -> str:
    """>>> previous_month("2026-01")
    '2025-12'
    """
    year, mon = (int(x) for x in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def skillpulse_version() -> str:
    # From the installed metadata: under pytest `flows` can resolve to the tests/flows namespace package,
    # so `from flows import __version__` is not reliable there.
    try:
        return version("skillpulse")
    except PackageNotFoundError:
        return ""


def quarantined_in_run(root: storage.Location, month: str, run_id: str | None) -> tuple[int | None, str | None]:
    """Records quarantined by the run that ingested the data, and that run's id.

    Quarantine is per source, not per month, so this is a run-level count. When
    `run_id` is a pipeline run (it has a row in runs/), its quarantine rows are
    counted; otherwise (the report stage run alone) the latest succeeded run that
    wrote `month` gives its recorded count. (None, None) when neither is known.
    """
    runs = datasets.read_dataset(root, "runs")
    if run_id and run_id in set(runs["run_id"]):
        quarantine = datasets.read_dataset(root, "quarantine", columns=["run_id"])
        return int((quarantine["run_id"] == run_id).sum()), run_id
    done = runs[(runs["status"] == "succeeded") & runs["months"].fillna("").str.split(",").apply(lambda m: month in m)]
    if not len(done):
        return None, None
    last = done.sort_values("started_at").iloc[-1]
    return int(last["quarantined"]), str(last["run_id"])


def month_run_info(postings: pd.DataFrame, quarantined: int | None) -> dict[str, Any]:
    """The counts behind a month's report: postings read (duplicates included), duplicates, rate, quarantine."""
    total = len(postings)
    duplicates = int(postings["duplicate_of"].notna().sum()) if total else 0
    info: dict[str, Any] = {
        "postings": total,
        "originals": total - duplicates,
        "duplicates": duplicates,
        "duplicate_rate": duplicates / total if total else 0.0,
    }
    if quarantined is not None:
        info["quarantined"] = quarantined
    return info


@task(name="report-month", cache_policy=NO_CACHE)
def report_month_task(settings: PipelineSettings, month: str, run_id: str | None = None) -> str:
    """Write one month's report folder and return the HTML page's path."""
    root = storage.root(settings.out_dir)
    demand = datasets.read_partition(root, "demand", month)
    prev_month = previous_month(month)
    has_previous = prev_month in datasets.partitions(root, "demand")
    previous = datasets.read_partition(root, "demand", prev_month) if has_previous else None
    taxonomy = load_taxonomy(settings.taxonomy)
    mentions = datasets.read_partition(root, "mentions", month, columns=["posting_id", "proficiency", "model_version"])
    postings = datasets.read_partition(root, "postings", month, columns=["posting_id", "source", "duplicate_of"])
    proficiency = proficiency_table(mentions, postings) if len(postings) else None
    data = report_tables(
        month,
        demand,
        previous,
        taxonomy=taxonomy,
        lang=settings.report_lang,
        proficiency=proficiency,
        previous_month=prev_month if previous is not None else None,
    )
    quarantined, source_run = quarantined_in_run(root, month, run_id)
    taxonomy_versions = sorted(demand["taxonomy_version"].dropna().unique()) if len(demand) else []
    data.method = {
        "sources": sorted(postings["source"].dropna().unique().tolist()),
        "taxonomy_version": ", ".join(taxonomy_versions) or taxonomy.version,
        "model_version": ", ".join(sorted(mentions["model_version"].dropna().unique())) or None,
        "skillpulse_version": skillpulse_version(),
        "run_id": source_run or run_id,
        "run_info": month_run_info(postings, quarantined),
    }
    files = write_report(data, root / "reports" / datasets.check_month(month))
    get_run_logger().info("Wrote the %s report to %s", month, files[0])
    return str(files[0])


@flow(name="report")
def report_flow(
    settings: PipelineSettings | None = None, run_id: str | None = None, months: list[str] | None = None
) -> dict[str, Any]:
    """Write the monthly reports (default: every month in demand/)."""
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    months = months or datasets.months_for(settings, "demand")
    with output_lock(storage.root(settings.out_dir), run_id):
        # reports stay in this process: they are small, and each reads the month before it
        pages = run_months("report", report_month_task, settings.model_copy(update={"runner": "local"}), months, run_id)
    progress.publish_month_counts("skillpulse-report-summary", pages, "page", f"Reports written by run {run_id}")
    return {"months": months, "pages": list(pages.values())}
