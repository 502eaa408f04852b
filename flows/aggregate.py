"""Aggregate: postings/ + mentions/ → demand/ for each month."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import datasets, memory, progress, storage
from flows.demand import MENTION_COLUMNS, compute_demand
from flows.lock import output_lock
from flows.runners import check_runner, run_months
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy


@task(name="aggregate-month", cache_policy=NO_CACHE)
def aggregate_month_task(settings: PipelineSettings, month: str, run_id: str) -> int:
    """Compute one month's demand and replace its demand partition."""
    root = storage.root(settings.out_dir)
    taxonomy = load_taxonomy(settings.taxonomy)
    postings = datasets.read_partition(
        root, "postings", month, columns=["posting_id", "country", "region", "occupation", "duplicate_of"]
    )
    # only what demand counts; mention ids (one per mention, the bulk of a large month) held once each
    mentions = datasets.read_partition(root, "mentions", month, columns=MENTION_COLUMNS, categorical=["mention_id"])
    demand = compute_demand(postings, mentions, taxonomy)
    demand["taxonomy_version"] = taxonomy.version
    demand["run_id"] = run_id
    datasets.write_partition(root, "demand", month, datasets.to_table(demand, datasets.DEMAND))
    del postings, mentions
    memory.release()
    get_run_logger().info("Wrote %d demand rows for %s", len(demand), month)
    return len(demand)


@flow(name="aggregate")
def aggregate_flow(
    settings: PipelineSettings | None = None, run_id: str | None = None, months: list[str] | None = None
) -> dict[str, Any]:
    """Aggregate demand for the given months (default: every month in postings/)."""
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    check_runner(settings)
    months = months or datasets.months_for(settings, "postings")
    with output_lock(storage.root(settings.out_dir), run_id):
        by_month = run_months("aggregate", aggregate_month_task, settings, months, run_id)
    progress.publish_month_counts(
        "skillpulse-aggregate-summary", by_month, "demand_rows", f"Demand rows written by run {run_id}"
    )
    return {"months": months, "demand_rows": sum(by_month.values())}
