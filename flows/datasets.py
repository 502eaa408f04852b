"""The Parquet datasets: Arrow schemas, declared once, and all Parquet I/O.

Layout under the output root::

    postings/month=YYYY-MM/part-0.parquet
    mentions/month=YYYY-MM/part-0.parquet
    demand/month=YYYY-MM/part-0.parquet
    quarantine/source=NAME/part-0.parquet
    runs/run-<run_id>.parquet

A month partition is always written whole: the new file is written beside the old
one and moved over it (an atomic rename), so a reader sees the old month or the new
month, never a mix, and re-running a month replaces it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from extractors.errors import OutputError
from flows import storage

SCHEMA_VERSION = "1"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_PART_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _schema(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={"dataset": name, "schema_version": SCHEMA_VERSION})


POSTINGS = _schema("postings", [
    pa.field("posting_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("employer", pa.string()),
    pa.field("text", pa.string(), nullable=False),
    pa.field("language", pa.string(), nullable=False),
    pa.field("country", pa.string()),
    pa.field("region", pa.string()),
    pa.field("city", pa.string()),
    pa.field("posted_date", pa.date32(), nullable=False),
    pa.field("occupation", pa.string()),
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("duplicate_of", pa.string()),
    pa.field("duplicate_kind", pa.string()),
    pa.field("pii_removed", pa.int32(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

MENTIONS = _schema("mentions", [
    pa.field("mention_id", pa.string(), nullable=False),
    pa.field("posting_id", pa.string(), nullable=False),
    pa.field("sentence_index", pa.int32(), nullable=False),
    pa.field("sentence", pa.string(), nullable=False),
    pa.field("start_char", pa.int32(), nullable=False),
    pa.field("end_char", pa.int32(), nullable=False),
    pa.field("surface", pa.string(), nullable=False),
    pa.field("concept_id", pa.string(), nullable=False),
    pa.field("concept_label", pa.string(), nullable=False),
    pa.field("esco_uri", pa.string()),
    pa.field("proficiency", pa.string()),
    pa.field("competence_id", pa.string(), nullable=False),
    pa.field("competence_label", pa.string(), nullable=False),
    pa.field("area_id", pa.string(), nullable=False),
    pa.field("framework", pa.string(), nullable=False),
    pa.field("method", pa.string(), nullable=False),
    pa.field("score", pa.float32(), nullable=False),
    pa.field("taxonomy_version", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

DEMAND = _schema("demand", [
    pa.field("country", pa.string()),
    pa.field("region", pa.string()),
    pa.field("occupation", pa.string()),
    pa.field("level", pa.string(), nullable=False),
    pa.field("framework", pa.string()),
    pa.field("area_id", pa.string()),
    pa.field("competence_id", pa.string()),
    pa.field("label", pa.string(), nullable=False),
    pa.field("postings_with", pa.int64(), nullable=False),
    pa.field("postings_total", pa.int64(), nullable=False),
    pa.field("share", pa.float64(), nullable=False),
    pa.field("mentions", pa.int64(), nullable=False),
    pa.field("low_count", pa.bool_(), nullable=False),
    pa.field("taxonomy_version", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

QUARANTINE = _schema("quarantine", [
    pa.field("record_key", pa.string(), nullable=False),
    pa.field("location", pa.string(), nullable=False),
    pa.field("record", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

RUNS = _schema("runs", [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("finished_at", pa.timestamp("us", tz="UTC")),
    pa.field("sources", pa.string(), nullable=False),
    pa.field("months", pa.string(), nullable=False),
    pa.field("read", pa.int64(), nullable=False),
    pa.field("kept", pa.int64(), nullable=False),
    pa.field("duplicates", pa.int64(), nullable=False),
    pa.field("quarantined", pa.int64(), nullable=False),
    pa.field("out_of_range", pa.int64(), nullable=False),
    pa.field("duplicate_rate", pa.float64(), nullable=False),
    pa.field("mentions", pa.int64(), nullable=False),
    pa.field("demand_rows", pa.int64(), nullable=False),
    pa.field("taxonomy_version", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("skillpulse_version", pa.string(), nullable=False),
    pa.field("seconds_ingest", pa.float64()),
    pa.field("seconds_extract", pa.float64()),
    pa.field("seconds_aggregate", pa.float64()),
    pa.field("seconds_report", pa.float64()),
    pa.field("error", pa.string()),
])

PARTITION_KEY = {"postings": "month", "mentions": "month", "demand": "month", "quarantine": "source"}
SCHEMAS = {"postings": POSTINGS, "mentions": MENTIONS, "demand": DEMAND, "quarantine": QUARANTINE, "runs": RUNS}


def check_month(month: str) -> str:
    """Return `month` if it is YYYY-MM, else raise ValueError (also guards paths)."""
    if not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return month


def _partition_dir(root: storage.Location, dataset: str, value: str) -> storage.Location:
    if not _PART_VALUE.match(value) or value.startswith("."):
        raise ValueError(f"unsafe partition value {value!r} for {dataset}")
    return storage.root(root) / dataset / f"{PARTITION_KEY[dataset]}={value}"


def ensure_writable(root: str | storage.Location) -> None:
    """Create the output root or raise OutputError naming the path and the problem."""
    root = storage.root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"[O001] Output folder {root} is not writable: {exc.strerror or exc}") from None


def to_table(rows: pd.DataFrame | Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows to an Arrow table of exactly `schema` (missing columns raise)."""
    if isinstance(rows, pd.DataFrame):
        return pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
    return pa.Table.from_pylist(list(rows), schema=schema)


def _atomic_write(table: pa.Table, path: storage.Location) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    storage.write_parquet(table, tmp, compression="zstd")
    storage.replace(tmp, path)


def write_partition(root: storage.Location, dataset: str, value: str, table: pa.Table) -> storage.Location:
    """Replace one partition (a month, or a source for quarantine) with `table`."""
    schema = SCHEMAS[dataset]
    if not table.schema.equals(schema, check_metadata=False):
        table = table.cast(schema)
    target = _partition_dir(root, dataset, value) / "part-0.parquet"
    _atomic_write(table.replace_schema_metadata(schema.metadata), target)
    for other in target.parent.glob("*.parquet"):
        if other != target:
            other.unlink()
    return target


def partition_file(root: storage.Location, dataset: str, value: str) -> storage.Location:
    """The file of one partition (it may not exist)."""
    return _partition_dir(root, dataset, value) / "part-0.parquet"


def write_partition_streamed(root: storage.Location, dataset: str, value: str, tables: Iterable[pa.Table],
                             row_group_rows: int | None = None, coalesce: bool = False) -> storage.Location:
    """Replace one partition with the rows of `tables`, written as they come (row groups of at most `row_group_rows`).

    Like `write_partition`, atomic: the file is written beside the old one and renamed
    over it, so a reader sees the old partition or the new one; the temporary file is
    removed when `tables` raises. Memory holds one of `tables` at a time; with `coalesce`,
    small tables are gathered until they fill a row group of `row_group_rows` (so memory
    holds at most one row group more).
    """
    schema = SCHEMAS[dataset]
    target = partition_file(root, dataset, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with storage.parquet_writer(tmp, schema, compression="zstd") as writer:
            for table in _coalesced(tables, row_group_rows) if coalesce and row_group_rows else tables:
                if not table.schema.equals(schema, check_metadata=False):
                    table = table.cast(schema)
                writer.write_table(table.replace_schema_metadata(schema.metadata), row_group_size=row_group_rows)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    storage.replace(tmp, target)
    for other in target.parent.glob("*.parquet"):
        if other != target:
            other.unlink()
    return target


def _coalesced(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `tables`, in order, as tables of exactly `rows` rows (the last one may be shorter)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        if held >= rows:
            whole = pa.concat_tables(pending)
            full = held - held % rows
            yield whole.slice(0, full)
            pending, held = [whole.slice(full)], held - full
    if held:
        yield pa.concat_tables(pending)


def delete_partition(root: storage.Location, dataset: str, value: str) -> None:
    """Remove a partition that a re-run no longer produces (e.g. a month with no rows)."""
    folder = _partition_dir(root, dataset, value)
    if folder.exists():
        for f in folder.glob("*"):
            f.unlink()
        folder.rmdir()


def partitions(root: storage.Location, dataset: str) -> list[str]:
    """Values of the partitions present, sorted (months or source names)."""
    folder = storage.root(root) / dataset
    key = PARTITION_KEY[dataset] + "="
    if not folder.is_dir():
        return []
    return sorted(p.name[len(key):] for p in folder.iterdir() if p.name.startswith(key) and any(p.glob("*.parquet")))


def read_partition(root: storage.Location, dataset: str, value: str, columns: list[str] | None = None,
                   categorical: list[str] | None = None) -> pd.DataFrame:
    """One partition as a DataFrame with the dataset's schema (empty if absent).

    Only `columns` are read from the file when given; the `categorical` ones come as
    pandas categoricals (each distinct string held once: for large months).
    """
    schema = SCHEMAS[dataset]
    target = _partition_dir(root, dataset, value) / "part-0.parquet"
    if not target.exists():
        table = schema.empty_table()
    elif columns:
        table = storage.read_parquet(target, columns=columns, schema=schema)
    else:
        table = storage.read_parquet(target, schema=schema)
    if columns:
        table = table.select(columns)
    for name in categorical or []:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).dictionary_encode())
    return table.to_pandas()


def read_dataset(root: storage.Location, dataset: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A whole dataset with its partition column, as researchers would read it."""
    folder = storage.root(root) / dataset
    schema = SCHEMAS[dataset]
    if dataset == "runs":
        files = storage.glob(folder, "run-*.parquet") if folder.is_dir() else []
        if not files:
            return schema.empty_table().to_pandas()
        return pa.concat_tables([storage.read_parquet(f, schema=schema) for f in files]).to_pandas()
    key = PARTITION_KEY[dataset]
    part_schema = pa.schema([pa.field(key, pa.string())])
    if not partitions(root, dataset):
        return schema.empty_table().append_column(key, pa.array([], pa.string())).to_pandas()
    where, filesystem = storage.arrow(folder)
    data = ds.dataset(where, filesystem=filesystem, format="parquet",
                      partitioning=ds.partitioning(part_schema, flavor="hive"),
                      schema=pa.unify_schemas([schema, part_schema]))
    return data.to_table(columns=columns).to_pandas()


def write_run(root: storage.Location, row: dict[str, Any]) -> storage.Location:
    """Write (or rewrite, as the run's state changes) the run's row in runs/."""
    if not _PART_VALUE.match(str(row["run_id"])):
        raise ValueError(f"unsafe run id {row['run_id']!r}")
    target = storage.root(root) / "runs" / f"run-{row['run_id']}.parquet"
    _atomic_write(to_table([row], RUNS), target)
    return target


def _mtime(path: storage.Location) -> float | None:
    return storage.mtime(path)


def stale_months(root: storage.Location) -> list[str]:
    """Months whose mentions, demand or report are missing or older than their input.

    A run that was killed after ingest leaves such months behind; the next run
    completes them even when it reads nothing new.
    """
    root = storage.root(root)
    stale = []
    for month in partitions(root, "postings"):
        chain = [
            _partition_dir(root, "postings", month) / "part-0.parquet",
            _partition_dir(root, "mentions", month) / "part-0.parquet",
            _partition_dir(root, "demand", month) / "part-0.parquet",
            root / "reports" / month / "index.html",
        ]
        times = [_mtime(p) for p in chain]
        if any(t is None for t in times) or any(a > b for a, b in zip(times, times[1:], strict=False)):  # type: ignore[operator]
            stale.append(month)
    return stale


def remove_leftovers(root: storage.Location) -> int:
    """Delete temporary files of writes that a killed run left (never read by anyone)."""
    removed = 0
    for name in ("postings", "mentions", "demand", "quarantine", "runs"):
        folder = storage.root(root) / name
        if folder.is_dir():
            for tmp in folder.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def months_for(settings: Any, dataset: str) -> list[str]:
    """The months of `dataset` under ``settings.out_dir``, only ``settings.months`` when that is set."""
    wanted = set(settings.months)
    return [m for m in partitions(storage.root(settings.out_dir), dataset) if not wanted or m in wanted]


def partition_rows(root: storage.Location, dataset: str, value: str) -> int:
    """Rows in one partition, from the Parquet footer (0 when it does not exist)."""
    path = _partition_dir(root, dataset, value) / "part-0.parquet"
    return storage.parquet_file(path).metadata.num_rows if path.exists() else 0
