"""Extract: postings/ → mentions/ for each month, with the spaCy skill pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.mentions import MODEL_VERSION, extract_mentions
from flows import datasets, progress
from flows.lock import output_lock
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy


def month_mentions(postings: pd.DataFrame, taxonomy_spec: str, batch_size: int, run_id: str) -> pd.DataFrame:
    """Mention rows of one month's original (non-duplicate) postings."""
    taxonomy = load_taxonomy(taxonomy_spec)
    originals = postings[postings["duplicate_of"].isna()]
    triples = zip(originals["posting_id"], originals["text"], originals["language"], strict=True)
    rows = list(extract_mentions(triples, taxonomy, taxonomy_spec, batch_size=batch_size))
    frame = pd.DataFrame(rows, columns=[f.name for f in datasets.MENTIONS])
    frame["taxonomy_version"] = taxonomy.version
    frame["model_version"] = MODEL_VERSION
    frame["run_id"] = run_id
    return frame.sort_values(["posting_id", "start_char", "concept_id", "competence_id"], kind="stable")


@task(name="extract-month", cache_policy=NO_CACHE)
def extract_month_task(settings: PipelineSettings, month: str, run_id: str) -> int:
    """Extract one month's mentions and replace its mentions partition."""
    root = Path(settings.out_dir)
    postings = datasets.read_partition(
        root, "postings", month, columns=["posting_id", "text", "language", "duplicate_of"]
    )
    mentions = month_mentions(postings, settings.taxonomy, settings.batch_size, run_id)
    datasets.write_partition(root, "mentions", month, datasets.to_table(mentions, datasets.MENTIONS))
    get_run_logger().info("Extracted %d mention rows from %d postings in %s", len(mentions), len(postings), month)
    return len(mentions)


@flow(name="extract")
def extract_flow(
    settings: PipelineSettings | None = None, run_id: str | None = None, months: list[str] | None = None
) -> dict[str, Any]:
    """Extract mentions for the given months (default: every month in postings/)."""
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    load_taxonomy(settings.taxonomy)  # fail early, with a clear message, on a bad taxonomy
    months = months or [
        m
        for m in datasets.partitions(Path(settings.out_dir), "postings")
        if not settings.months or m in settings.months
    ]
    counts = {}
    with output_lock(Path(settings.out_dir), run_id):
        for i, month in enumerate(months, 1):
            progress.report("extract", f"{month} ({i}/{len(months)} months)")
            counts[month] = extract_month_task(settings, month, run_id)
    progress.publish_table(
        key="skillpulse-extract-summary",
        table=[{"month": m, "mention_rows": n} for m, n in counts.items()],
        description=f"Mentions written by run {run_id} (taxonomy {settings.taxonomy})",
    )
    return {"months": months, "mentions": sum(counts.values()), "by_month": counts}
