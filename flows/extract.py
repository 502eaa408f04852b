"""Extract: postings/ → mentions/ for each month, with the spaCy skill pipeline.

A month is streamed, so memory holds a few chunks of it, never the whole month: its
original (non-duplicate) postings are read in posting_id order, a chunk of ads at a time,
each chunk becomes its mention rows, sorted, and the rows are written as row groups into
a file beside the old partition, renamed over it at the end. Because the chunks follow
posting_id order, the file holds exactly the rows, in the same order, as sorting the
month's rows whole (by posting_id, start_char, concept_id, competence_id).

With ``workers`` > 1 the chunks go to a pool of worker processes (`flows.extract_worker`,
which imports no Prefect), at most IN_FLIGHT_PER_WORKER chunks per worker at a time, and
come back as Arrow tables of rows (never Docs), in order. The pool uses the 'forkserver'
start method where the platform has it: the forkserver is a fresh interpreter (not a fork
of this Prefect process) that builds the run's pipelines once, and workers are forked from
it, sharing those pipelines copy-on-write; elsewhere 'spawn', each worker building its own.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.nlp import warm_up
from flows import datasets, extract_worker, memory, progress, storage
from flows.lock import output_lock
from flows.runners import check_runner, run_months
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy

# Automatic workers. With the forkserver the pipelines are built once for all workers (not
# once per worker), but a pool still costs that build in the forkserver, a second copy of the
# interpreter and its imports, and moving texts and rows between processes; at 10,000 ads the
# whole pipeline with 2 workers was slower than with one (benchmarks/pipeline.py on 2 busy
# cores, benchmarks/README.md), so a second process is only used for large runs.
AUTO_MIN_ADS = 50_000
CHUNK_MIN, CHUNK_MAX = 200, 1_000  # ads per chunk sent to a worker
SOLO_CHUNK = 5_000  # ads per chunk in one process
IN_FLIGHT_PER_WORKER = 2  # chunks given to the pool and not yet written, per worker
MENTION_ROW_GROUP = 50_000  # rows per row group of a mentions partition
SORT_BUCKET_MIN = 10_000  # ads per bucket when a postings partition is not in posting_id order
POSTING_COLUMNS = ["posting_id", "text", "language", "duplicate_of"]
Triple = tuple[str, str, str]
START_METHOD = "forkserver"  # of extract pools; "spawn" (each worker builds its pipelines) for comparisons
# A worker's memory grows with the words it has seen (spaCy's vocabulary, string store and
# tokenizer cache keep every new one: ~5 MiB per 1,000 generated ads after the first 1,000):
# with a forkserver, once a pool has been given RENEW_ADS ads, the next chunk goes to a fresh
# pool forked from the forkserver while the old workers finish the chunks they hold and exit.
RENEW_ADS = 20_000
_pool: Executor | None = None
_pool_setup: tuple[int, Any] | None = None  # (workers, context) of _pool
_pool_ads = 0  # ads extracted by the current workers
renewals = 0  # pools replaced (for tests)
_forkserver_preload: str | None = None


def resolve_workers(settings: PipelineSettings, ads: int) -> int:
    """Extract processes for a run over `ads` postings (settings.workers, or automatic when 0)."""
    if settings.runner == "dask":
        return 1  # Dask spreads the months; each task runs in one process
    if settings.workers:
        return settings.workers
    return 2 if (os.cpu_count() or 1) >= 2 and ads >= AUTO_MIN_ADS else 1


def chunk_size(ads: int, workers: int) -> int:
    """Ads per chunk for a month of `ads` postings: SOLO_CHUNK in one process, else about four
    chunks per worker of CHUNK_MIN..CHUNK_MAX ads."""
    if workers <= 1:
        return SOLO_CHUNK
    return min(CHUNK_MAX, max(CHUNK_MIN, math.ceil(ads / (4 * workers))))


def _stop_forkserver() -> None:
    """Stop the extract forkserver (its pipelines are hundreds of MiB), if one of ours runs.

    Uses multiprocessing's private ``_stop`` (guarded): the standard library has no public
    way to end a forkserver before the process exits.
    """
    global _forkserver_preload
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if _forkserver_preload is not None and hasattr(server, "_stop"):
        server._stop()
    _forkserver_preload = None


def _context(taxonomy_spec: str, languages: list[str]) -> Any:
    """The multiprocessing context of extract pools: a forkserver preloaded with these pipelines, or spawn."""
    global _forkserver_preload
    if START_METHOD != "forkserver" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    spec = extract_worker.preload_spec(taxonomy_spec, languages)
    if spec != _forkserver_preload:
        _stop_forkserver()  # started for other pipelines: start afresh (no pool of ours is using it)
        context = multiprocessing.get_context("forkserver")
        # '__main__' as the default preload has it: workers then do not each import the main script again
        context.set_forkserver_preload(["__main__", extract_worker.__name__])
        os.environ[extract_worker.PRELOAD_ENV] = spec  # read by the forkserver when it imports extract_worker
        try:
            forkserver.ensure_running()
        finally:
            os.environ.pop(extract_worker.PRELOAD_ENV, None)
        _forkserver_preload = spec
    return multiprocessing.get_context("forkserver")


@contextmanager
def extract_pool(workers: int, taxonomy_spec: str = "builtin", languages: Iterable[str] = ()) -> Iterator[
        Executor | None]:
    """A pool of `workers` extract processes for the block (None for one process).

    The workers start with the pipelines of `taxonomy_spec` for `languages` (built once in
    the forkserver); they build any other pipeline they need themselves.
    """
    global _pool, _pool_setup, _pool_ads
    if workers <= 1:
        yield None
        return
    context = _context(taxonomy_spec, sorted(set(languages)))
    _pool, _pool_setup, _pool_ads = ProcessPoolExecutor(max_workers=workers, mp_context=context), (workers, context), 0
    try:
        yield _pool
    finally:
        pool, _pool, _pool_setup = _pool, None, None
        pool.shutdown(wait=True, cancel_futures=True)
        _stop_forkserver()  # its memory is of no use to aggregate and report


def _renewed(pool: Executor, ads: int) -> Executor:
    """The pool to give the next chunk of `ads` ads to: `pool`, or a fresh one (see RENEW_ADS).

    Only the pool of ``extract_pool`` with a forkserver is renewed (a spawned worker would
    build its pipelines again). The old pool is shut down without waiting: the chunks it
    holds complete, then its workers exit.
    """
    global _pool, _pool_ads, renewals
    if pool is not _pool or _pool_setup is None:
        return pool
    workers, context = _pool_setup
    if _pool_ads >= RENEW_ADS and context.get_start_method() == "forkserver":
        old, _pool = _pool, ProcessPoolExecutor(max_workers=workers, mp_context=context)
        old.shutdown(wait=False)
        _pool_ads, renewals = 0, renewals + 1
    _pool_ads += ads
    return _pool


def start_workers(pool: Executor | None, taxonomy_spec: str, languages: list[str]) -> float:
    """Make the pipelines ready (every worker started, with them); returns the seconds it took."""
    t0 = time.perf_counter()
    if pool is None:
        warm_up(languages, taxonomy_spec)
    else:
        workers = getattr(pool, "_max_workers", 1)
        list(pool.map(warm_up, [languages] * workers, [taxonomy_spec] * workers))
    return time.perf_counter() - t0


def _strictly_increasing(ids: pa.ChunkedArray) -> bool:
    if len(ids) < 2:
        return True
    ids = ids.combine_chunks()
    return bool(pc.all(pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py())


def _sorted_buckets(file: Any, ids: pa.ChunkedArray, rows: int, scratch: os.PathLike[str]) -> Iterator[pa.Table]:
    """The rows of a postings file that is not in posting_id order, in that order, through local bucket files.

    Each row goes to the bucket of its place in posting_id order (equal ids to the same
    bucket, in file order); each bucket is then read and sorted alone.
    """
    keys = ids.to_numpy(zero_copy_only=False)
    ordered = keys[np.argsort(keys, kind="stable")]
    bucket = np.searchsorted(ordered, keys, side="left") // max(rows, SORT_BUCKET_MIN)
    del keys, ordered
    os.makedirs(scratch, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract-sort-", dir=scratch) as tmp:
        writers: dict[int, Any] = {}
        start = 0
        try:
            for batch in file.iter_batches(batch_size=SORT_BUCKET_MIN, columns=POSTING_COLUMNS):
                where = bucket[start:start + batch.num_rows]
                start += batch.num_rows
                for k in np.unique(where).tolist():
                    if k not in writers:
                        writers[k] = pa.ipc.new_file(os.path.join(tmp, f"{k}.arrow"), batch.schema)
                    writers[k].write_batch(batch.filter(pa.array(where == k)))
        finally:
            for writer in writers.values():
                writer.close()
        for k in sorted(writers):
            with pa.OSFile(os.path.join(tmp, f"{k}.arrow"), "rb") as source:
                table = pa.ipc.open_file(source).read_all()
            table = table.sort_by("posting_id")  # a stable sort: equal ids keep their file order
            for offset in range(0, table.num_rows, rows):
                yield table.slice(offset, rows)


def original_postings(root: storage.Location, month: str, rows: int) -> Iterator[list[Triple]]:
    """A month's original postings as (posting_id, text, language), in posting_id order, about `rows` at a time.

    Ingest writes a month in posting_id order; that is checked (on the posting_id column
    alone), and a partition that is not in order is put in order through local bucket files.
    """
    path = datasets.partition_file(root, "postings", month)
    if not path.exists():
        return
    file = storage.parquet_file(path)
    ids = file.read(columns=["posting_id"]).column("posting_id")
    if _strictly_increasing(ids):
        del ids
        tables: Iterable[Any] = file.iter_batches(batch_size=rows, columns=POSTING_COLUMNS)
    else:
        tables = _sorted_buckets(file, ids, rows, storage.scratch_dir(storage.root(root)))
    for table in tables:
        table = table.filter(pc.is_null(table.column("duplicate_of")))
        if table.num_rows:
            yield list(zip(*(table.column(c).to_pylist() for c in POSTING_COLUMNS[:3]), strict=True))


def mention_tables(chunks: Iterable[list[Triple]], taxonomy_spec: str, taxonomy_version: str, batch_size: int,
                   run_id: str, pool: Executor | None = None) -> Iterator[pa.Table]:
    """The sorted mention rows of each chunk, in the order of the chunks (in `pool` when given)."""
    if pool is None:
        for chunk in chunks:
            yield extract_worker.mention_table(chunk, taxonomy_spec, taxonomy_version, batch_size, run_id)
        return
    window = IN_FLIGHT_PER_WORKER * getattr(pool, "_max_workers", 1)
    pending: deque[Future[pa.Table]] = deque()
    try:
        for chunk in chunks:
            pool = _renewed(pool, len(chunk))
            pending.append(pool.submit(extract_worker.mention_table, chunk, taxonomy_spec, taxonomy_version,
                                       batch_size, run_id))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def month_mentions(postings: pd.DataFrame, taxonomy_spec: str, batch_size: int, run_id: str,
                   pool: Executor | None = None, chunk: int | None = None) -> pd.DataFrame:
    """Mention rows of one month's postings held in memory (benchmarks), sorted as the mentions dataset."""
    taxonomy = load_taxonomy(taxonomy_spec)
    originals = postings[postings["duplicate_of"].isna()]
    triples = list(zip(originals["posting_id"], originals["text"], originals["language"], strict=True))
    size = chunk or chunk_size(len(triples), getattr(pool, "_max_workers", 1) if pool is not None else 1)
    parts = [triples[i:i + size] for i in range(0, len(triples), size)]
    tables = list(mention_tables(parts, taxonomy_spec, taxonomy.version, batch_size, run_id, pool))
    frame = pa.concat_tables(tables or [datasets.MENTIONS.empty_table()]).to_pandas()
    return frame.sort_values(list(extract_worker.SORT_KEYS), kind="stable", ignore_index=True)


def extract_month(root: storage.Location, month: str, taxonomy_spec: str, batch_size: int, run_id: str,
                  pool: Executor | None = None, chunk: int | None = None) -> tuple[int, int]:
    """Stream one month's postings to its mentions partition; returns (original postings, mention rows)."""
    version = load_taxonomy(taxonomy_spec).version
    workers = getattr(pool, "_max_workers", 1) if pool is not None else 1
    size = chunk or chunk_size(datasets.partition_rows(root, "postings", month), workers)
    counts = [0, 0]

    def chunks() -> Iterator[list[Triple]]:
        for part in original_postings(root, month, size):
            counts[0] += len(part)
            yield part

    def tables() -> Iterator[pa.Table]:
        for table in mention_tables(chunks(), taxonomy_spec, version, batch_size, run_id, pool):
            counts[1] += table.num_rows
            yield table

    datasets.write_partition_streamed(root, "mentions", month, tables(), MENTION_ROW_GROUP, coalesce=True)
    return counts[0], counts[1]


@task(name="extract-month", cache_policy=NO_CACHE)
def extract_month_task(settings: PipelineSettings, month: str, run_id: str) -> int:
    """Extract one month's mentions and replace its mentions partition."""
    root = storage.root(settings.out_dir)
    ads, rows = extract_month(root, month, settings.taxonomy, settings.batch_size, run_id, _pool)
    memory.release()
    get_run_logger().info("Extracted %d mention rows from %d original postings in %s", rows, ads, month)
    return rows


def run_languages(root: storage.Location, months: list[str]) -> list[str]:
    """The ad languages of the months' postings (the pipelines extract will need)."""
    found: set[str] = set()
    for month in months:
        path = datasets.partition_file(root, "postings", month)
        if path.exists():
            column = storage.parquet_file(path).read(columns=["language"]).column("language")
            found.update(v for v in pc.unique(column).to_pylist() if v)
    return sorted(found)


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
    languages = run_languages(root, months) if settings.runner != "dask" else []
    with output_lock(root, run_id), extract_pool(workers, settings.taxonomy, languages) as pool:
        startup = start_workers(pool, settings.taxonomy, languages) if settings.runner != "dask" else 0.0
        get_run_logger().info("Pipelines ready in %.1f s (%d extract processes, languages %s)", startup,
                              workers, ", ".join(languages) or "none")
        counts = run_months("extract", extract_month_task, settings, months, run_id)
    progress.publish_month_counts(
        "skillpulse-extract-summary",
        counts,
        "mention_rows",
        f"Mentions written by run {run_id} (taxonomy {settings.taxonomy}, {workers} extract processes)",
    )
    return {"months": months, "mentions": sum(counts.values()), "by_month": counts, "workers": workers,
            "startup_seconds": startup}
