"""Ingest: sources → postings/ (by month) and quarantine/ (by source).

Every record read is counted once: kept, duplicate, quarantined or out of range
(outside the requested months). The flow checks that the counts reconcile.

Memory stays flat however many records a run reads:

1. **stage** — records are read one at a time and normalised; postings are buffered
   in small batches and spilled to one staging Parquet file per month under
   ``<out>/.staging/<run_id>/`` (rejected records likewise, one file per source).
   Only the posting ids of the run stay in memory.
2. **write each month** — the month's staged postings, merged with the postings
   already in its partition (a posting id already there is replaced, not duplicated),
   are deduplicated again over the whole month and the partition is rewritten. Dedupe
   streams the texts once to compute one MinHash sketch per distinct content hash and
   then works on ids, dates, hashes and sketches only. Peak memory follows the largest
   month, not the run.
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

import hashlib
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.occupations import classify_occupation
from flows import datasets, progress, watermarks
from flows.dedupe import DedupeKey, mark_duplicates_sketched, sketch
from flows.lock import output_lock
from flows.records import Posting, Rejection, stable_id, to_posting
from flows.settings import PipelineSettings, new_run_id
from flows.sources import RawRecord, SourceConfig, load_sources, read_records
from flows.watermarks import SourcePlan

STAGING = ".staging"
BATCH_ROWS = 2_000  # rows buffered (all months together) before they are spilled to staging
SKETCH_BATCH = 1_000  # rows whose texts are in memory at once while sketching a month


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
    quarantine: dict[str, Path | None] = field(default_factory=dict)  # every source read
    counts: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, int] = field(default_factory=dict)  # records ingested by earlier runs, per source
    partial: dict[str, bool] = field(default_factory=dict)  # sources read only in part (what is new)
    watermarks: list[dict[str, Any]] = field(default_factory=list)  # to save once the run's data are written


def quarantine_row(raw: RawRecord, reason: str, run_id: str) -> dict[str, Any]:
    key = hashlib.sha1(f"{raw.source}\x1f{raw.location}\x1f{raw.raw}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return {"record_key": key, "location": raw.location, "record": raw.raw, "reason": reason, "run_id": run_id}


def _events(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str, counts: Counter[str],
            plans: dict[str, SourcePlan] | None = None) -> Iterator[tuple[str, str, Any]]:
    """Read and normalise every record: ("source", name, None), ("posting", name, Posting), ("rejected", name, row).

    Counts read, quarantined and out-of-range records in `counts`. With `plans`
    (watermarks), only what is new since the last run is read; records skipped are
    not counted as read.
    """
    seen: set[str] = set()
    for source in sources:
        plan = plans.get(source.name) if plans is not None else None
        yield "source", source.name, None
        records = plan.records() if plan is not None else read_records(source)
        for raw in records:
            result: Posting | Rejection = (
                Rejection(raw.error) if raw.error
                else to_posting(raw.record, source.name, source.mapping, source.defaults)
            )
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
                result = Posting(**(asdict(result) | {"posting_id": pid}))
            seen.add(result.posting_id)
            yield "posting", source.name, result
        progress.report("ingest", f"read {source.name}: {counts['read']} records so far")


def collect(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str) -> Collected:
    """Read and normalise every record of every source, in memory (for tests and small inputs)."""
    out = Collected()
    for event, name, item in _events(sources, months, run_id, out.counts):
        if event == "source":
            out.quarantine.setdefault(name, [])
        elif event == "rejected":
            out.quarantine[name].append(item)
        else:
            out.by_month.setdefault(item.month, []).append(item)
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


def staging_folder(root: Path, run_id: str) -> Path:
    return Path(root) / STAGING / run_id


def clear_staging(root: Path, run_id: str | None = None) -> None:
    """Delete one run's staging folder, or every one (at the start of a run: left by runs that died)."""
    base = Path(root) / STAGING
    shutil.rmtree(staging_folder(root, run_id) if run_id else base, ignore_errors=True)
    if base.is_dir() and not any(base.iterdir()):
        base.rmdir()


def posting_row(posting: Posting, run_id: str, now: datetime) -> dict[str, Any]:
    occupation = classify_occupation(posting.title, posting.text, posting.language).code
    return asdict(posting) | {"duplicate_of": None, "duplicate_kind": None, "occupation": occupation,
                              "run_id": run_id, "ingested_at": now}


def stage(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str, folder: Path,
          plans: dict[str, SourcePlan] | None = None, now: datetime | None = None,
          batch_rows: int = BATCH_ROWS) -> Staged:
    """Read and normalise every record, spilling postings (by month) and rejections (by source) to `folder`."""
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    out = Staged(folder)
    postings = _Spill(folder, "postings", datasets.POSTINGS)
    rejected = _Spill(folder, "quarantine", datasets.QUARANTINE)
    sources_read: list[str] = []
    try:
        for event, name, item in _events(sources, months, run_id, out.counts, plans):
            if event == "source":
                sources_read.append(name)
                continue
            if event == "rejected":
                rejected.add(name, item)
            else:
                postings.add(item.month, posting_row(item, run_id, now))
                out.month_rows[item.month] += 1
            if postings.buffered + rejected.buffered >= batch_rows:
                postings.flush()
                rejected.flush()
    finally:
        out.months = postings.close()
        quarantined = rejected.close()
    out.quarantine = {name: quarantined.get(name) for name in sources_read}
    if plans is not None:
        out.skipped = {name: plan.skipped for name, plan in plans.items()}
        out.partial = {name: plan.partial for name, plan in plans.items()}
        out.watermarks = [plan.finish() for plan in plans.values()]
    return out


# --- writing a month: merge, dedupe, replace ----------------------------------------------------------

def _existing(root: Path, dataset: str, value: str) -> pa.Table:
    return datasets.to_table(datasets.read_partition(root, dataset, value), datasets.SCHEMAS[dataset])


def _without(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    if table.num_rows == 0 or len(values) == 0:
        return table
    return table.filter(pc.invert(pc.is_in(table[column], value_set=values)))


def dedupe_table(table: pa.Table) -> pa.Table:
    """Set duplicate_of / duplicate_kind over a month's postings; rows sorted by posting_id.

    The texts are read a batch at a time to compute one sketch per distinct content
    hash; dedupe itself works on ids, dates, hashes and sketches.
    """
    sketches: dict[str, Any] = {}
    for batch in table.select(["content_hash", "title", "text"]).to_batches(max_chunksize=SKETCH_BATCH):
        hashes, titles, texts = (batch.column(i).to_pylist() for i in range(3))
        for h, title, text in zip(hashes, titles, texts, strict=True):
            if h not in sketches:
                sketches[h] = sketch(title, text)
    ids = table["posting_id"].to_pylist()
    keys = (DedupeKey(pid, day, h) for pid, day, h in
            zip(ids, table["posted_date"].to_pylist(), table["content_hash"].to_pylist(), strict=True))
    marks = mark_duplicates_sketched(keys, sketches)
    schema = datasets.POSTINGS
    for name, attr in (("duplicate_of", "duplicate_of"), ("duplicate_kind", "kind")):
        values = pa.array([getattr(marks[pid], attr) for pid in ids], pa.string())
        table = table.set_column(schema.get_field_index(name), schema.field(name), values)
    return table.sort_by("posting_id")


def write_month(root: Path, month: str, staged: Path | None, merge: bool = True) -> tuple[int, int]:
    """Write one month: this run's staged postings, merged into the partition unless `merge` is False.

    Returns (originals, duplicates) among this run's postings.
    """
    new = read_staged(staged, datasets.POSTINGS)
    table = new
    if merge:
        table = pa.concat_tables([_without(_existing(root, "postings", month), "posting_id", new["posting_id"]), new])
    if table.num_rows == 0:
        return 0, 0
    table = dedupe_table(table)
    datasets.write_partition(Path(root), "postings", month, table)
    is_new = pc.is_in(table["posting_id"], value_set=new["posting_id"])
    new_kinds = table.filter(is_new)["duplicate_kind"]
    dups = len(new_kinds) - new_kinds.null_count
    return new.num_rows - dups, dups


def write_quarantine(root: Path, source: str, staged: Path | None, merge: bool = False) -> int:
    """Replace the source's quarantine partition with this run's rejected records, or add them to it (`merge`)."""
    new = read_staged(staged, datasets.QUARANTINE)
    table = new
    if merge:
        old = _without(_existing(root, "quarantine", source), "record_key", new["record_key"])
        table = pa.concat_tables([old, new])
    if table.num_rows:
        datasets.write_partition(Path(root), "quarantine", source, table)
    elif not merge:
        datasets.delete_partition(Path(root), "quarantine", source)
    return new.num_rows


def postings_table(postings: list[Posting], run_id: str, now: datetime) -> pa.Table:
    """One month's postings, originals and duplicates marked, as an Arrow table sorted by posting_id."""
    return dedupe_table(datasets.to_table([posting_row(p, run_id, now) for p in postings], datasets.POSTINGS))


# --- the flow -------------------------------------------------------------------------------------------

@task(name="read-and-normalise", cache_policy=NO_CACHE)
def stage_task(settings: PipelineSettings, run_id: str) -> Staged:
    """Read every source (what is new since its watermark) and spill the normalised records."""
    root = Path(settings.out_dir)
    sources = load_sources(settings.source)
    full_refresh = bool(getattr(settings, "full_refresh", False))
    plans = None  # a run over some months only reads every source whole and leaves the watermarks alone
    if not settings.months:
        plans = {s.name: watermarks.plan(s, None if full_refresh else watermarks.load(root, s.name), run_id)
                 for s in sources}
    return stage(sources, settings.months, run_id, staging_folder(root, run_id), plans)


@task(name="write-month-postings", cache_policy=NO_CACHE)
def write_month_task(out_dir: str, month: str, staged: Path | None, merge: bool) -> tuple[int, int]:
    """Merge the month's new postings into its partition, mark duplicates and rewrite it."""
    return write_month(Path(out_dir), month, staged, merge)


@task(name="write-quarantine", cache_policy=NO_CACHE)
def write_quarantine_task(out_dir: str, source: str, staged: Path | None, merge: bool) -> int:
    """Write the source's rejected records to its quarantine partition."""
    return write_quarantine(Path(out_dir), source, staged, merge)


@task(name="save-watermarks", cache_policy=NO_CACHE)
def save_watermarks_task(out_dir: str, marks: list[dict[str, Any]]) -> None:
    """Move the sources' watermarks: only once everything else is written."""
    for mark in marks:
        watermarks.save(Path(out_dir), mark)


@flow(name="ingest")
def ingest_flow(settings: PipelineSettings | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Ingest all sources: postings by month, quarantine by source, reconciled counts."""
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    datasets.ensure_writable(Path(settings.out_dir))
    with output_lock(Path(settings.out_dir), run_id):
        return _ingest(settings, run_id)


def _ingest(settings: PipelineSettings, run_id: str) -> dict[str, Any]:
    logger = get_run_logger()
    root = Path(settings.out_dir)
    full_refresh = bool(getattr(settings, "full_refresh", False))
    clear_staging(root)  # staging left by a run that died (the output lock is ours)
    try:
        staged = stage_task(settings, run_id)
        counts = Counter(read=staged.counts["read"], quarantined=staged.counts["quarantined"],
                         out_of_range=staged.counts["out_of_range"])
        for month in sorted(staged.months):
            progress.report("ingest", f"deduplicating and writing {month}")
            kept, dups = write_month_task(settings.out_dir, month, staged.months[month], not full_refresh)
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

