"""Ingest: sources → postings/ (by month) and quarantine/ (by source).

Every record read is counted once: kept, duplicate, quarantined or out of range
(outside the requested months). The flow checks that the counts reconcile.

Memory stays flat however many records a run reads:

1. **stage** — records are read one at a time and normalised (by worker processes, in
   batches, when the `workers` setting allows more than one: see `_Normaliser`; the
   results are taken in the records' order, so the output is the same); postings are
   buffered in small batches and spilled to one staging Parquet file per month under
   ``<out>/.staging/<run_id>/`` (on the local disk, in a temporary folder, when the
   output root is a URL; rejected records likewise, one file per source), with each
   posting's MinHash sketch (computed while normalising) in a raw file per month.
   Only the posting ids of the run stay in memory (a set: about 100 bytes an ad).
2. **write each month** — the month's staged postings, merged with the postings
   already in its partition (a posting id already there is replaced, not duplicated;
   only the partition's posting_id column is read to decide which), are deduplicated
   again over the whole month and the partition is rewritten. Nothing holds the
   month's rows at once: dedupe reads the ids, dates and content hashes (with the
   integer arrays it derives, about 150 bytes a row), streams the texts of the partition's rows once to compute
   one MinHash sketch per distinct content hash (256 bytes, plus 4 bytes per LSH band; the run's own rows take
   theirs from staging) and marks duplicates
   on arrays (flows/dedupe.py `mark_duplicate_rows`); then the rows are streamed into
   bucket files by their place in posting_id order, and each bucket, sorted, becomes
   one row group of the new partition file (ROW_GROUP_ROWS rows), written beside the
   old file and renamed over it. Peak memory is a bucket plus those arrays.
3. **quarantine**, then the **watermarks** (flows/watermarks.py) are moved, and the
   staging folder is deleted. A run that fails anywhere leaves the watermarks as they
   were, so the next run reads the same records again.

Incremental runs: each source's watermark says what earlier runs ingested, and a run
reads only what is new (see flows/watermarks.py). `full_refresh` (a setting) ignores the
watermarks, reads every source whole and replaces the months it writes instead of
merging into them. A run restricted to some months (`--months`) reads every source
whole and does not move the watermarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.occupations import classify_occupation, clear_caches
from flows import datasets, memory, progress, storage, watermarks
from flows.dedupe import NUM_PERM, mark_duplicate_rows, sketch
from flows.lock import output_lock
from flows.records import Posting, Rejection, normalise_batch, stable_id
from flows.settings import PipelineSettings, new_run_id
from flows.sources import RawRecord, SourceConfig, load_sources, read_records
from flows.watermarks import SourcePlan

STAGING = ".staging"
BATCH_ROWS = 2_000  # rows buffered (all months together) before they are spilled to staging
SKETCH_BATCH = 1_000  # rows whose texts are in memory at once while sketching a month (in memory)
READ_BATCH = 2_000  # rows read at once from a staging file or a partition while writing a month
ROW_GROUP_ROWS = 10_000  # rows of a month partition's row group, and of a bucket sorted in memory
NORMALISE_BATCH = 500  # records a normalising worker process gets at once
PARALLEL_AFTER = 1_000  # records a run normalises in its own process before starting worker processes


@dataclass
class Collected:
    """What reading the sources gave, in memory: postings by month, rejections, counts."""

    by_month: dict[str, list[Posting]] = field(default_factory=dict)
    quarantine: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class Staged:
    """What reading the sources gave, spilled to staging files: one per month and per source."""

    folder: Path
    months: dict[str, Path] = field(default_factory=dict)
    month_rows: Counter[str] = field(default_factory=Counter)
    sketches: dict[str, Path] = field(default_factory=dict)  # per month: its postings' dedupe sketches, in order
    quarantine: dict[str, Path | None] = field(default_factory=dict)  # every source read
    counts: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, int] = field(default_factory=dict)  # records ingested by earlier runs, per source
    partial: dict[str, bool] = field(default_factory=dict)  # sources read only in part (what is new)
    watermarks: list[dict[str, Any]] = field(default_factory=list)  # to save once the run's data are written


def quarantine_row(raw: RawRecord, reason: str, run_id: str) -> dict[str, Any]:
    key = hashlib.sha1(f"{raw.source}\x1f{raw.location}\x1f{raw.raw}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return {"record_key": key, "location": raw.location, "record": raw.raw, "reason": reason, "run_id": run_id}


def _events(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str, counts: Counter[str],
            plans: dict[str, SourcePlan] | None = None,
            pool: _Normaliser | None = None) -> Iterator[tuple[str, str, Any]]:
    """Read and normalise every record: ("source", name, None), ("posting", name, (Posting, sketch bytes)),
    ("rejected", name, row).

    Counts read, quarantined and out-of-range records in `counts`. With `plans`
    (watermarks), only what is new since the last run is read; records skipped are
    not counted as read. With `pool`, records are normalised by its worker processes,
    in batches, and their results taken in the records' order: the same events as in
    one process.
    """
    seen: set[str] = set()
    pool = pool or _Normaliser(1)
    for source in sources:
        plan = plans.get(source.name) if plans is not None else None
        yield "source", source.name, None
        records = plan.records() if plan is not None else read_records(source)
        for raw, normalised in pool.normalise(records, source):
            result, signature = normalised if normalised is not None else (Rejection(str(raw.error)), None)
            if plan is not None and isinstance(result, Posting) and not plan.keep(result.posted_date):
                continue  # older than the source's date watermark
            counts["read"] += 1
            if isinstance(result, Rejection):
                counts["quarantined"] += 1
                yield "rejected", source.name, quarantine_row(raw, result.reason, run_id)
                continue
            if months and result.month not in months:
                counts["out_of_range"] += 1
                continue
            if result.posting_id in seen:  # the same source id twice: keep both rows
                n = 2
                while (pid := stable_id(source.name, f"{result.source_id}#{n}", "")) in seen:
                    n += 1
                result = replace(result, posting_id=pid)
            seen.add(result.posting_id)
            yield "posting", source.name, (result, signature)
        progress.report("ingest", f"read {source.name}: {counts['read']} records so far")


def ingest_workers(setting: int = 0) -> int:
    """Processes that normalise records: `setting`, or when it is 0, 2 on a machine with 2+ cores, else 1."""
    return setting if setting > 0 else min(2, os.cpu_count() or 1)


class _Normaliser:
    """Normalises a stream of raw records, in this process or in `workers` worker processes.

    With 2+ workers, the first PARALLEL_AFTER records of a run are normalised here (a
    small input never pays for starting processes); the rest go, NORMALISE_BATCH at a
    time, to a pool of 'spawn' processes (fresh interpreters: nothing of the Prefect
    process is forked) that import only flows.records and flows.dedupe (no Prefect, no
    spaCy, no lemmatiser: a worker starts in about a second) and return (Posting or
    Rejection, dedupe sketch) per record (`flows.records.normalise_batch`). At most 2
    batches per worker are in flight, and results are taken in the records' order. The
    occupation, which needs the lemmatiser's dictionaries, is classified here.
    """

    def __init__(self, workers: int, parallel_after: int | None = None) -> None:
        self.workers = workers
        self.parallel_after = PARALLEL_AFTER if parallel_after is None else parallel_after
        self.done = 0  # records normalised so far (all sources)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Normaliser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def normalise(self, records: Iterable[RawRecord], source: SourceConfig) -> Iterator[tuple[RawRecord, Any]]:
        """(raw record, (Posting or Rejection, sketch) or None when it could not be read), in order."""
        mapping, defaults = source.mapping, source.defaults
        records = iter(records)
        if self.workers > 1:
            while self.done < self.parallel_after:  # the run's first records, here
                raw = next(records, None)
                if raw is None:
                    return
                self.done += 1
                yield raw, normalise_batch([None if raw.error else raw.record], source.name, mapping, defaults)[0]
            yield from self._parallel(records, source)
            return
        for raw in records:
            self.done += 1
            yield raw, normalise_batch([None if raw.error else raw.record], source.name, mapping, defaults)[0]

    def _parallel(self, records: Iterator[RawRecord], source: SourceConfig) -> Iterator[tuple[RawRecord, Any]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        pending: deque[tuple[list[RawRecord], Future[list[Any]]]] = deque()
        while True:
            batch = list(itertools.islice(records, NORMALISE_BATCH))
            if batch:
                self.done += len(batch)
                pending.append((batch, self._pool.submit(
                    normalise_batch, [None if raw.error else raw.record for raw in batch], source.name,
                    source.mapping, source.defaults)))
            if not pending:
                return
            if batch and len(pending) < 2 * self.workers:
                continue
            raws, future = pending.popleft()
            yield from zip(raws, future.result(), strict=True)


def collect(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str) -> Collected:
    """Read and normalise every record of every source, in memory (for tests and small inputs)."""
    out = Collected()
    for event, name, item in _events(sources, months, run_id, out.counts):
        if event == "source":
            out.quarantine.setdefault(name, [])
        elif event == "rejected":
            out.quarantine[name].append(item)
        else:
            out.by_month.setdefault(item[0].month, []).append(item[0])  # (posting, sketch)
    return out


# --- staging: spill batches to Parquet, read them back ------------------------------------------------

class _Spill:
    """Rows buffered per key (a month or a source) and spilled as row groups of one Parquet file per key."""

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema) -> None:
        self.folder, self.prefix, self.schema = folder, prefix, schema
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.paths: dict[str, Path] = {}
        self.buffered = 0

    def add(self, key: str, row: dict[str, Any]) -> None:
        self.buffers.setdefault(key, []).append(row)
        self.buffered += 1

    def flush(self) -> None:
        for key, rows in self.buffers.items():
            if not rows:
                continue
            if key not in self.writers:
                self.paths[key] = self.folder / f"{self.prefix}-{len(self.paths):04d}.parquet"
                self.writers[key] = pq.ParquetWriter(self.paths[key], self.schema, compression="zstd")
            self.writers[key].write_table(datasets.to_table(rows, self.schema))
            rows.clear()
        self.buffered = 0

    def close(self) -> dict[str, Path]:
        self.flush()
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
        return dict(self.paths)


def read_staged(path: Path | None, schema: pa.Schema) -> pa.Table:
    """A staging file as a table of `schema` (empty when there is none)."""
    if path is None or not Path(path).exists():
        return schema.empty_table()
    return pq.read_table(path, schema=schema)


def staging_folder(root: storage.Location, run_id: str) -> Path:
    """A run's staging files: under the output root when it is a local folder, else in a local temporary folder."""
    return storage.scratch_dir(storage.root(root)) / STAGING / run_id


def clear_staging(root: storage.Location, run_id: str | None = None) -> None:
    """Delete one run's staging folder, or every one (at the start of a run: left by runs that died)."""
    base = storage.scratch_dir(storage.root(root)) / STAGING
    shutil.rmtree(staging_folder(root, run_id) if run_id else base, ignore_errors=True)
    if base.is_dir() and not any(base.iterdir()):
        base.rmdir()
        if storage.is_remote(storage.root(root)):
            with contextlib.suppress(OSError):
                base.parent.rmdir()  # the remote root's local scratch folder, when empty


def posting_row(posting: Posting, run_id: str, now: datetime) -> dict[str, Any]:
    occupation = classify_occupation(posting.title, posting.text, posting.language).code
    return dict(posting.__dict__) | {"duplicate_of": None, "duplicate_kind": None, "occupation": occupation,
                              "run_id": run_id, "ingested_at": now}


def _flush_sketches(buffers: dict[str, list[bytes]], paths: dict[str, Path], folder: Path) -> None:
    """Append each month's buffered sketches to its staging file (raw uint32, NUM_PERM a row, in row order)."""
    for month, rows in buffers.items():
        if rows:
            path = paths.setdefault(month, folder / f"sketches-{month}.u32")
            with path.open("ab") as fh:
                fh.write(b"".join(rows))
            rows.clear()


def stage(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str, folder: Path,
          plans: dict[str, SourcePlan] | None = None, now: datetime | None = None,
          batch_rows: int = BATCH_ROWS, workers: int = 1, parallel_after: int | None = None) -> Staged:
    """Read and normalise every record, spilling postings (by month) and rejections (by source) to `folder`.

    `workers` processes normalise the records (see `_Normaliser`; the output is the same
    whatever their number); `parallel_after` records are normalised here first.
    """
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    out = Staged(folder)
    postings = _Spill(folder, "postings", datasets.POSTINGS)
    rejected = _Spill(folder, "quarantine", datasets.QUARANTINE)
    sources_read: list[str] = []
    signatures: dict[str, list[bytes]] = {}  # per month, the sketches of the postings buffered
    try:
        with _Normaliser(workers, parallel_after) as pool:
            for event, name, item in _events(sources, months, run_id, out.counts, plans, pool):
                if event == "source":
                    sources_read.append(name)
                    continue
                if event == "rejected":
                    rejected.add(name, item)
                else:
                    posting, signature = item
                    postings.add(posting.month, posting_row(posting, run_id, now))
                    signatures.setdefault(posting.month, []).append(signature)
                    out.month_rows[posting.month] += 1
                if postings.buffered + rejected.buffered >= batch_rows:
                    postings.flush()
                    rejected.flush()
                    _flush_sketches(signatures, out.sketches, folder)
    finally:
        out.months = postings.close()
        quarantined = rejected.close()
        _flush_sketches(signatures, out.sketches, folder)
    out.quarantine = {name: quarantined.get(name) for name in sources_read}
    if plans is not None:
        out.skipped = {name: plan.skipped for name, plan in plans.items()}
        out.partial = {name: plan.partial for name, plan in plans.items()}
        out.watermarks = [plan.finish() for plan in plans.values()]
    return out


# --- writing a month: merge, dedupe, replace ----------------------------------------------------------

def _existing(root: storage.Location, dataset: str, value: str) -> pa.Table:
    return datasets.to_table(datasets.read_partition(root, dataset, value), datasets.SCHEMAS[dataset])


def _without(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    if table.num_rows == 0 or len(values) == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table[column], value_set=values)))


_KEYS = ["posting_id", "posted_date", "content_hash"]  # what dedupe reads of every posting of a month


def _duplicate_columns(table: pa.Table, sketches: np.ndarray, hash_codes: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """duplicate_of / duplicate_kind of the postings in `table` (its _KEYS columns), in its row order."""
    visit = pc.sort_indices(table, [("posted_date", "ascending"), ("posting_id", "ascending")])
    duplicate_of, kind = mark_duplicate_rows(visit.to_numpy(), hash_codes, sketches)
    ids = table["posting_id"].combine_chunks()
    targets = ids.take(pa.array(np.maximum(duplicate_of, 0)))
    of = pc.if_else(pa.array(duplicate_of >= 0), targets, pa.scalar(None, pa.string()))
    kinds = pa.array(np.array([None, "exact", "near"], dtype=object)[kind], pa.string())
    return of, kinds


def _hash_codes(hashes: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int]:
    """Per row, the number of its content hash among the distinct ones; and how many there are."""
    encoded = pc.dictionary_encode(hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def _sketch_rows(batches: Iterable[pa.RecordBatch], hash_codes: np.ndarray, n_hashes: int,
                 known: np.ndarray | None = None) -> np.ndarray:
    """One sketch per distinct content hash, from batches of (title, text) in the rows' order.

    With `known` (the sketches of the last len(known) rows, computed when they were
    staged), the batches need only hold the rows before those, and any content hash
    first seen among those rows takes its sketch from `known`.
    """
    sketches = np.zeros((n_hashes, NUM_PERM), dtype=np.uint32)
    done = np.zeros(n_hashes, dtype=bool)
    row = 0
    for batch in batches:
        titles, texts = batch.column("title").to_pylist(), batch.column("text").to_pylist()
        for title, text in zip(titles, texts, strict=True):
            code = hash_codes[row]
            if not done[code]:
                sketches[code] = sketch(title, text)
                done[code] = True
            row += 1
    if known is not None:
        if row + len(known) != len(hash_codes):
            raise RuntimeError(f"[I003] {len(known)} staged sketches for {len(hash_codes) - row} staged rows")
        codes = hash_codes[row:]
        todo = ~done[codes]
        first = np.unique(codes[todo], return_index=True)[1]  # each missing hash's first staged row
        sketches[codes[todo][first]] = known[np.flatnonzero(todo)[first]]
    return sketches


def dedupe_table(table: pa.Table) -> pa.Table:
    """Set duplicate_of / duplicate_kind over a month's postings (in memory); rows sorted by posting_id."""
    codes, n_hashes = _hash_codes(table["content_hash"])
    sketches = _sketch_rows(table.select(["title", "text"]).to_batches(max_chunksize=SKETCH_BATCH), codes, n_hashes)
    of, kinds = _duplicate_columns(table.select(_KEYS), sketches, codes)
    schema = datasets.POSTINGS
    table = table.set_column(schema.get_field_index("duplicate_of"), schema.field("duplicate_of"), of)
    table = table.set_column(schema.get_field_index("duplicate_kind"), schema.field("duplicate_kind"), kinds)
    return table.sort_by("posting_id")


class _Part:
    """Rows of one Parquet file that go into a month: all of them, or those `keep` marks."""

    def __init__(self, path: storage.Location, keep: pa.Array | None = None) -> None:
        self.path, self.keep = path, keep

    def batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The rows, READ_BATCH at a time, cast to the postings schema (those kept only)."""
        schema = datasets.POSTINGS if columns is None else pa.schema([datasets.POSTINGS.field(c) for c in columns])
        offset = 0
        for batch in storage.parquet_file(self.path).iter_batches(batch_size=READ_BATCH, columns=columns,
                                                                  use_threads=False):
            if not batch.schema.equals(schema, check_metadata=False):
                batch = pa.Table.from_batches([batch]).select(schema.names).cast(schema).to_batches()[0]
            n = batch.num_rows
            if self.keep is not None:
                batch = batch.filter(self.keep.slice(offset, n))
            offset += n
            yield batch


def _month_parts(root: storage.Location, month: str, staged: Path | None, merge: bool) -> tuple[list[_Part], int]:
    """The files a month is made of, in order (the partition's rows that stay, then the run's); the run's first row."""
    parts: list[_Part] = []
    new_ids = (pq.read_table(staged, columns=["posting_id"])["posting_id"]
               if staged is not None and Path(staged).exists() else pa.chunked_array([], pa.string()))
    existing = datasets.partition_file(root, "postings", month)
    if merge and existing.exists():
        old_ids = storage.read_parquet(existing, columns=["posting_id"])["posting_id"]
        keep = pc.invert(pc.is_in(old_ids, value_set=new_ids.combine_chunks()))
        parts.append(_Part(existing, keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep))
    first_new = sum(pc.sum(p.keep.cast(pa.int64())).as_py() or 0 for p in parts)
    if staged is not None and Path(staged).exists():
        parts.append(_Part(Path(staged)))
    return parts, first_new


def _spill_sorted(parts: list[_Part], out_rank: np.ndarray, rows: int, folder: Path) -> list[Path]:
    """Route every row to the bucket of its place in posting_id order (`rows` rows a bucket), as Arrow files."""
    n_buckets = max(1, -(-len(out_rank) // rows))
    schema = datasets.POSTINGS.append(pa.field("_rank", pa.int64()))
    paths = [folder / f"bucket-{b:05d}.arrow" for b in range(n_buckets)]
    writers = [pa.ipc.new_file(str(p), schema) for p in paths]
    try:
        row = 0
        for part in parts:
            for batch in part.batches():
                ranks = out_rank[row : row + batch.num_rows]
                row += batch.num_rows
                buckets = ranks // rows
                with_rank = pa.RecordBatch.from_arrays([*batch.columns, pa.array(ranks)], schema=schema)
                for b in np.unique(buckets).tolist():
                    writers[b].write_batch(with_rank.filter(pa.array(buckets == b)))
    finally:
        for writer in writers:
            writer.close()
    return paths


def write_month(root: storage.Location, month: str, staged: Path | None, merge: bool = True,
                row_group_rows: int | None = None, sketches: Path | None = None) -> tuple[int, int]:
    """Write one month: this run's staged postings, merged into the partition unless `merge` is False.

    Streams: only the month's ids, dates and content hashes, plus one sketch per
    distinct text, are in memory at once; the rows themselves go through bucket files
    (one per `row_group_rows` rows in posting_id order) into row groups of the new
    partition file, which replaces the old one atomically. Rows, their order (by
    posting_id) and duplicate marks are those of `dedupe_table` over the whole month.

    Returns (originals, duplicates) among this run's postings.
    """
    root, row_group_rows = storage.root(root), row_group_rows or ROW_GROUP_ROWS
    parts, first_new = _month_parts(root, month, staged, merge)
    keys = pa.concat_tables([pa.Table.from_batches(list(p.batches(_KEYS)), pa.schema(
        [datasets.POSTINGS.field(c) for c in _KEYS])) for p in parts]) if parts else None
    if keys is None or keys.num_rows == 0:
        return 0, 0
    codes, n_hashes = _hash_codes(keys["content_hash"])
    known = None
    if sketches is not None and Path(sketches).exists() and staged is not None and parts and parts[-1].keep is None:
        known = np.fromfile(sketches, dtype="<u4").reshape(-1, NUM_PERM)  # the staged rows' sketches, as staged
        parts_to_sketch = parts[:-1]
    else:
        parts_to_sketch = parts
    sketches_of = _sketch_rows((b for p in parts_to_sketch for b in p.batches(["title", "text"])), codes, n_hashes,
                               known)
    del known
    duplicate_of, kinds = _duplicate_columns(keys, sketches_of, codes)
    del sketches_of
    order = pc.sort_indices(keys, [("posting_id", "ascending")]).to_numpy()
    out_rank = np.empty(len(order), dtype=np.int64)
    out_rank[order] = np.arange(len(order))
    duplicate_of, kinds = duplicate_of.take(pa.array(order)), kinds.take(pa.array(order))
    new_kinds = kinds.take(pa.array(out_rank[first_new:]))
    dups = len(new_kinds) - new_kinds.null_count
    staging = storage.scratch_dir(root) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"sort-{month}-", dir=staging) as tmp:
        buckets = _spill_sorted(parts, out_rank, row_group_rows, Path(tmp))
        schema = datasets.POSTINGS
        of_index, kind_index = schema.get_field_index("duplicate_of"), schema.get_field_index("duplicate_kind")

        def row_groups() -> Iterator[pa.Table]:
            start = 0
            for path in buckets:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_file(source).read_all()
                table = table.sort_by("_rank")
                n = table.num_rows
                if n == 0:
                    continue
                if table["_rank"][0].as_py() != start or table["_rank"][n - 1].as_py() != start + n - 1:
                    raise RuntimeError(f"[I002] month {month}: bucket {path.name} does not hold ranks {start}..")
                table = table.drop_columns(["_rank"])
                table = table.set_column(of_index, schema.field("duplicate_of"), duplicate_of.slice(start, n))
                table = table.set_column(kind_index, schema.field("duplicate_kind"), kinds.slice(start, n))
                start += n
                yield table
            if start != keys.num_rows:
                raise RuntimeError(f"[I002] month {month}: wrote {start} rows of {keys.num_rows}")

        datasets.write_partition_streamed(root, "postings", month, row_groups(), row_group_rows)
    n_new = keys.num_rows - first_new
    return n_new - dups, dups


def write_quarantine(root: storage.Location, source: str, staged: Path | None, merge: bool = False) -> int:
    """Replace the source's quarantine partition with this run's rejected records, or add them to it (`merge`)."""
    new = read_staged(staged, datasets.QUARANTINE)
    table = new
    if merge:
        old = _without(_existing(root, "quarantine", source), "record_key", new["record_key"])
        table = pa.concat_tables([old, new])
    if table.num_rows:
        datasets.write_partition(storage.root(root), "quarantine", source, table)
    elif not merge:
        datasets.delete_partition(storage.root(root), "quarantine", source)
    return new.num_rows


def postings_table(postings: list[Posting], run_id: str, now: datetime) -> pa.Table:
    """One month's postings, originals and duplicates marked, as an Arrow table sorted by posting_id."""
    return dedupe_table(datasets.to_table([posting_row(p, run_id, now) for p in postings], datasets.POSTINGS))


# --- the flow -------------------------------------------------------------------------------------------

@task(name="read-and-normalise", cache_policy=NO_CACHE)
def stage_task(settings: PipelineSettings, run_id: str) -> Staged:
    """Read every source (what is new since its watermark) and spill the normalised records."""
    root = storage.root(settings.out_dir)
    sources = load_sources(settings.source)
    full_refresh = bool(getattr(settings, "full_refresh", False))
    plans = None  # a run over some months only reads every source whole and leaves the watermarks alone
    if not settings.months:
        plans = {s.name: watermarks.plan(s, None if full_refresh else watermarks.load(root, s.name), run_id)
                 for s in sources}
    return stage(sources, settings.months, run_id, staging_folder(root, run_id), plans,
                 workers=ingest_workers(settings.workers))


@task(name="write-month-postings", cache_policy=NO_CACHE)
def write_month_task(out_dir: str, month: str, staged: Path | None, merge: bool,
                     sketches: Path | None = None) -> tuple[int, int]:
    """Merge the month's new postings into its partition, mark duplicates and rewrite it."""
    counts = write_month(storage.root(out_dir), month, staged, merge, sketches=sketches)
    memory.release()
    return counts


@task(name="write-quarantine", cache_policy=NO_CACHE)
def write_quarantine_task(out_dir: str, source: str, staged: Path | None, merge: bool) -> int:
    """Write the source's rejected records to its quarantine partition."""
    return write_quarantine(storage.root(out_dir), source, staged, merge)


@task(name="save-watermarks", cache_policy=NO_CACHE)
def save_watermarks_task(out_dir: str, marks: list[dict[str, Any]]) -> None:
    """Move the sources' watermarks: only once everything else is written."""
    for mark in marks:
        watermarks.save(storage.root(out_dir), mark)


@flow(name="ingest")
def ingest_flow(settings: PipelineSettings | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Ingest all sources: postings by month, quarantine by source, reconciled counts."""
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    datasets.ensure_writable(storage.root(settings.out_dir))
    with output_lock(storage.root(settings.out_dir), run_id):
        return _ingest(settings, run_id)


def _ingest(settings: PipelineSettings, run_id: str) -> dict[str, Any]:
    logger = get_run_logger()
    root = storage.root(settings.out_dir)
    full_refresh = bool(getattr(settings, "full_refresh", False))
    clear_staging(root)  # staging left by a run that died (the output lock is ours)
    try:
        staged = stage_task(settings, run_id)
        memory.release()  # the run's posting ids and the normalisers' buffers are gone
        counts = Counter(read=staged.counts["read"], quarantined=staged.counts["quarantined"],
                         out_of_range=staged.counts["out_of_range"])
        for month in sorted(staged.months):
            progress.report("ingest", f"deduplicating and writing {month}")
            kept, dups = write_month_task(settings.out_dir, month, staged.months[month], not full_refresh,
                                          staged.sketches.get(month))
            counts["kept"] += kept
            counts["duplicates"] += dups
        for source, path in staged.quarantine.items():
            write_quarantine_task(settings.out_dir, source, path, staged.partial.get(source, False))
        balance = counts["kept"] + counts["duplicates"] + counts["quarantined"] + counts["out_of_range"]
        if balance != counts["read"]:
            raise RuntimeError(f"[I001] counts do not reconcile: read {counts['read']} != {balance}")
        if staged.watermarks:
            save_watermarks_task(settings.out_dir, staged.watermarks)
    finally:
        clear_staging(root, run_id)
        clear_caches()  # occupations of titles seen: no use to the stages after ingest
        memory.release()
    skipped = staged.skipped
    logger.info("Ingested %d records: %d kept, %d duplicates, %d quarantined, %d out of range; %d skipped "
                "(ingested by earlier runs)", counts["read"], counts["kept"], counts["duplicates"],
                counts["quarantined"], counts["out_of_range"], sum(skipped.values()))
    progress.publish_table(
        key="skillpulse-ingest-summary",
        table=[{"metric": k, "value": v} for k, v in {**counts, "skipped": sum(skipped.values()),
               "duplicate_rate": round(counts["duplicates"] / max(1, counts["kept"] + counts["duplicates"]), 4),
               "months": ", ".join(sorted(staged.months))}.items()],
        description=f"Ingest of run {run_id}",
    )
    return {"months": sorted(staged.months), "counts": dict(counts), "sources": list(staged.quarantine),
            "skipped": skipped, "full_refresh": full_refresh}

