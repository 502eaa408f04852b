"""Ingest: sources → postings/ (by month) and quarantine/ (by source).

Every record read is counted once: kept, duplicate, quarantined or out of range
(outside the requested months). The flow checks that the counts reconcile.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import datasets, progress
from flows.dedupe import DuplicateMark, mark_duplicates
from flows.lock import output_lock
from flows.records import Posting, Rejection, stable_id, to_posting
from flows.settings import PipelineSettings, new_run_id
from flows.sources import RawRecord, SourceConfig, load_sources, read_records


@dataclass
class Collected:
    """What reading the sources gave: postings by month, rejections, counts."""

    by_month: dict[str, list[Posting]] = field(default_factory=dict)
    quarantine: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


def quarantine_row(raw: RawRecord, reason: str, run_id: str) -> dict[str, Any]:
    key = hashlib.sha1(f"{raw.source}\x1f{raw.location}\x1f{raw.raw}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return {"record_key": key, "location": raw.location, "record": raw.raw, "reason": reason, "run_id": run_id}


def collect(sources: Iterable[SourceConfig], months: tuple[str, ...], run_id: str) -> Collected:
    """Read and normalise every record of every source (pure apart from reading files)."""
    out = Collected()
    seen: set[str] = set()
    for source in sources:
        out.quarantine.setdefault(source.name, [])
        for raw in read_records(source):
            out.counts["read"] += 1
            result: Posting | Rejection = (
                Rejection(raw.error) if raw.error else to_posting(raw.record, source.name, source.mapping, source.defaults)
            )
            if isinstance(result, Rejection):
                out.quarantine[source.name].append(quarantine_row(raw, result.reason, run_id))
                out.counts["quarantined"] += 1
                continue
            if months and result.month not in months:
                out.counts["out_of_range"] += 1
                continue
            if result.posting_id in seen:  # the same source id twice: keep both rows
                n = 2
                while (pid := stable_id(source.name, f"{result.source_id}#{n}", "")) in seen:
                    n += 1
                result = Posting(**(asdict(result) | {"posting_id": pid}))
            seen.add(result.posting_id)
            out.by_month.setdefault(result.month, []).append(result)
        progress.report("ingest", f"read {source.name}: {out.counts['read']} records so far")
    return out


def postings_table(postings: list[Posting], marks: dict[str, DuplicateMark], run_id: str, now: datetime) -> pa.Table:
    """One month's postings, originals and duplicates, as an Arrow table."""
    rows = []
    for p in sorted(postings, key=lambda p: p.posting_id):
        mark = marks[p.posting_id]
        row = asdict(p) | {"duplicate_of": mark.duplicate_of, "duplicate_kind": mark.kind,
                           "occupation": None, "run_id": run_id, "ingested_at": now}
        rows.append(row)
    return datasets.to_table(rows, datasets.POSTINGS)


@task(name="read-and-normalise", cache_policy=NO_CACHE)
def collect_task(settings: PipelineSettings, run_id: str) -> Collected:
    """Read every source and normalise its records."""
    return collect(load_sources(settings.source), settings.months, run_id)


@task(name="write-month-postings", cache_policy=NO_CACHE)
def write_month_task(out_dir: str, month: str, postings: list[Posting], run_id: str) -> tuple[int, int]:
    """Mark duplicates in one month and replace its postings partition."""
    marks = mark_duplicates(postings)
    table = postings_table(postings, marks, run_id, datetime.now(UTC))
    datasets.write_partition(Path(out_dir), "postings", month, table)
    dups = sum(1 for m in marks.values() if m.kind)
    return len(postings) - dups, dups


@task(name="write-quarantine", cache_policy=NO_CACHE)
def write_quarantine_task(out_dir: str, source: str, rows: list[dict[str, Any]]) -> int:
    """Replace the source's quarantine partition with this run's rejected records."""
    root = Path(out_dir)
    if rows:
        datasets.write_partition(root, "quarantine", source, datasets.to_table(rows, datasets.QUARANTINE))
    else:
        datasets.delete_partition(root, "quarantine", source)
    return len(rows)


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
    collected = collect_task(settings, run_id)
    counts = Counter(read=collected.counts["read"], quarantined=collected.counts["quarantined"],
                     out_of_range=collected.counts["out_of_range"])
    for month in sorted(collected.by_month):
        progress.report("ingest", f"deduplicating and writing {month}")
        kept, dups = write_month_task(settings.out_dir, month, collected.by_month[month], run_id)
        counts["kept"] += kept
        counts["duplicates"] += dups
    for source, rows in collected.quarantine.items():
        write_quarantine_task(settings.out_dir, source, rows)
    balance = counts["kept"] + counts["duplicates"] + counts["quarantined"] + counts["out_of_range"]
    if balance != counts["read"]:
        raise RuntimeError(f"[I001] counts do not reconcile: read {counts['read']} != {balance}")
    logger.info("Ingested %d records: %d kept, %d duplicates, %d quarantined, %d out of range",
                counts["read"], counts["kept"], counts["duplicates"], counts["quarantined"], counts["out_of_range"])
    return {"months": sorted(collected.by_month), "counts": dict(counts),
            "sources": [s for s in collected.quarantine]}
