"""Report: demand/ → reports/YYYY-MM/ (index.html and CSV tables) for each month."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import datasets, progress
from flows.reporting import report_tables, write_report
from flows.settings import PipelineSettings
from taxonomy.load import load_taxonomy


def previous_month(month: str) -> str:
    """>>> previous_month("2026-01")
    '2025-12'
    """
    year, mon = (int(x) for x in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


@task(name="report-month", cache_policy=NO_CACHE)
def report_month_task(settings: PipelineSettings, month: str) -> str:
    """Write one month's report folder and return the HTML page's path."""
    root = Path(settings.out_dir)
    demand = datasets.read_partition(root, "demand", month)
    prev_month = previous_month(month)
    previous = datasets.read_partition(root, "demand", prev_month) if prev_month in datasets.partitions(root, "demand") else None
    data = report_tables(month, demand, previous)
    data.previous_month = prev_month if previous is not None else None
    data.method = {"taxonomy_version": load_taxonomy(settings.taxonomy).version}
    files = write_report(data, root / "reports" / datasets.check_month(month))
    get_run_logger().info("Wrote the %s report to %s", month, files[0])
    return str(files[0])


@flow(name="report")
def report_flow(settings: PipelineSettings, run_id: str, months: list[str] | None = None) -> dict[str, Any]:
    """Write the monthly reports (default: every month in demand/)."""
    months = months or [m for m in datasets.partitions(Path(settings.out_dir), "demand")
                        if not settings.months or m in settings.months]
    pages = []
    for i, month in enumerate(months, 1):
        progress.report("report", f"{month} ({i}/{len(months)} months)")
        pages.append(report_month_task(settings, month))
    return {"months": months, "pages": pages}
