"""Extract: postings/ → mentions/ for each month, with the spaCy skill pipeline.

With ``workers`` > 1 the original postings of each month are cut into chunks that a pool
of worker processes (started with 'spawn', so they share nothing with Prefect) turns into
mention rows; each process builds its pipelines once. Rows are sorted the same way in
both cases, so the datasets are identical to a one-process run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.mentions import MODEL_VERSION
from extractors.nlp import mention_frame
from flows import datasets, progress, storage
from flows.lock import output_lock
from flows.runners import check_runner, run_months
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy

# Automatic workers: a worker process needs 20-90 s (busy machine) to start and build its
# pipelines, and at 10,000 ads two workers were slower than one on the 2-core machine
# (benchmarks/throughput.py), so a second process is only used for large runs.
AUTO_MIN_ADS = 50_000
CHUNK_MIN, CHUNK_MAX = 200, 1_000
_pool: Executor | None = None


def resolve_workers(settings: PipelineSettings, ads: int) -> int:
    """Extract processes for a run over `ads` postings (settings.workers, or automatic when 0)."""
    if settings.runner == "dask":
        return 1  # Dask spreads the months; each task runs in one process
    if settings.workers:
        return settings.workers
    return 2 if (os.cpu_count() or 1) >= 2 and ads >= AUTO_MIN_ADS else 1


def chunks(items: list[Any], workers: int) -> list[list[Any]]:
    """Consecutive chunks, about four per worker, of CHUNK_MIN..CHUNK_MAX items."""
    size = min(CHUNK_MAX, max(CHUNK_MIN, math.ceil(len(items) / (4 * workers))))
    return [items[i:i + size] for i in range(0, len(items), size)]


@contextmanager
def extract_pool(workers: int) -> Iterator[Executor | None]:
    """A pool of `workers` extract processes for the block (None for one process)."""
    global _pool
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    _pool = pool
    try:
        yield pool
    finally:
        _pool = None
        pool.shutdown(wait=True, cancel_futures=True)


def month_mentions(
    postings: pd.DataFrame, taxonomy_spec: str, batch_size: int, run_id: str, pool: Executor | None = None
) -> pd.DataFrame:
    """Mention rows of one month's original (non-duplicate) postings (in `pool` when given)."""
    taxonomy = load_taxonomy(taxonomy_spec)
    originals = postings[postings["duplicate_of"].isna()]
    triples = list(zip(originals["posting_id"], originals["text"], originals["language"], strict=True))
    columns = [f.name for f in datasets.MENTIONS]
    # with a pool, even a small month goes to the workers: they have its pipelines already
    parts = chunks(triples, getattr(pool, "_max_workers", 1)) if pool is not None else []
    if parts:
        frames = list(pool.map(mention_frame, parts, repeat(taxonomy_spec), repeat(batch_size), repeat(columns)))
        frames = [f for f in frames if len(f)] or frames[:1]
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = mention_frame(triples, taxonomy_spec, batch_size, columns)
    frame["taxonomy_version"] = taxonomy.version
    frame["model_version"] = MODEL_VERSION
    frame["run_id"] = run_id
    return frame.sort_values(["posting_id", "start_char", "concept_id", "competence_id"], kind="stable")


@task(name="extract-month", cache_policy=NO_CACHE)
def extract_month_task(settings: PipelineSettings, month: str, run_id: str) -> int:
    """Extract one month's mentions and replace its mentions partition."""
    root = storage.root(settings.out_dir)
    postings = datasets.read_partition(
        root, "postings", month, columns=["posting_id", "text", "language", "duplicate_of"]
    )
    mentions = month_mentions(postings, settings.taxonomy, settings.batch_size, run_id, _pool)
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
    check_runner(settings)
    load_taxonomy(settings.taxonomy)  # fail early, with a clear message, on a bad taxonomy
    root = storage.root(settings.out_dir)
    months = months or datasets.months_for(settings, "postings")
    workers = resolve_workers(settings, sum(datasets.partition_rows(root, "postings", m) for m in months))
    with output_lock(root, run_id), extract_pool(workers):
        counts = run_months("extract", extract_month_task, settings, months, run_id)
    progress.publish_month_counts(
        "skillpulse-extract-summary",
        counts,
        "mention_rows",
        f"Mentions written by run {run_id} (taxonomy {settings.taxonomy}, {workers} extract processes)",
    )
    return {"months": months, "mentions": sum(counts.values()), "by_month": counts, "workers": workers}
