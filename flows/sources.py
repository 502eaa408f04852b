"""Sources: a sources file lists them; one reader per kind yields raw records.

A sources file (YAML or TOML) looks like::

    sources:
      - name: board-a            # used in posting ids and quarantine
        kind: jsonl              # jsonl | csv | parquet
        path: ads.jsonl          # relative to the sources file
        mapping: {description: body.html, posted_at: meta.published}   # optional
        defaults: {country: UA}  # optional values for empty fields

A single .jsonl/.json/.csv/.parquet file stands for a one-source list with the
default field names. Readers never raise on a bad record: they yield it with an
error so that it lands in quarantine.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extractors.errors import SourceError

SAMPLE_SOURCES = Path(__file__).parent / "sample_data" / "sources.yaml"
KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_RAW_CHARS = 100_000


class SourceConfig(BaseModel):
    """One configured source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["jsonl", "csv", "parquet"]
    path: str
    mapping: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class RawRecord:
    """A record as read: parsed (`record`) or not (`error`), with where it came from."""

    source: str
    location: str
    raw: str
    record: Any = None
    error: str | None = None


def load_sources(spec: str | None) -> list[SourceConfig]:
    """Sources from a sources file or a single data file; the bundled sample if None."""
    path = Path(spec) if spec else SAMPLE_SOURCES
    if not path.exists():
        raise SourceError(f"[S001] Source {str(path)!r} not found")
    if path.is_dir():
        raise SourceError(f"[S002] Source {str(path)!r} is a folder: give a sources file (YAML/TOML) or a data file")
    suffix = path.suffix.lower()
    if suffix in KINDS:
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:64] or "source"
        return [SourceConfig(name=name, kind=KINDS[suffix], path=str(path.resolve()))]  # type: ignore[arg-type]
    if suffix not in (".yaml", ".yml", ".toml"):
        raise SourceError(f"[S002] Source {str(path)!r}: expected .yaml/.toml sources file or .jsonl/.csv/.parquet data")
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"[S003] Sources file {path}: cannot parse: {exc}") from None
    items = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise SourceError(f"[S003] Sources file {path}: expected a non-empty list under 'sources'")
    out: list[SourceConfig] = []
    for i, item in enumerate(items, 1):
        try:
            cfg = SourceConfig.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise SourceError(f"[S003] Sources file {path}, source #{i}: {loc}: {first['msg']}") from None
        if not _NAME.match(cfg.name):
            raise SourceError(f"[S003] Sources file {path}, source #{i}: name {cfg.name!r} must be letters, digits, _ . -")
        resolved = (path.parent / cfg.path).resolve()
        out.append(cfg.model_copy(update={"path": str(resolved)}))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise SourceError(f"[S003] Sources file {path}: source names must be unique, got {names}")
    return out


def check_source(source: SourceConfig) -> None:
    """Raise SourceError when the source's file cannot be opened."""
    path = Path(source.path)
    if not path.is_file():
        raise SourceError(f"[S001] Source {source.name!r}: file {source.path} not found")


def read_records(source: SourceConfig) -> Iterator[RawRecord]:
    """Yield every record of a file source, bad ones with an error."""
    check_source(source)
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[source.kind]
    yield from reader(source)


def _shown(raw: str) -> str:
    return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + f"… [{len(raw)} chars]"


def _read_jsonl(source: SourceConfig) -> Iterator[RawRecord]:
    name = Path(source.path).name
    with open(source.path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{name}:{line_no}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line.decode("utf-8", errors="backslashreplace").rstrip("\n")
                yield RawRecord(source.name, where, _shown(raw), error=f"invalid UTF-8 at byte {exc.start} of line {line_no}")
                continue
            raw = text.rstrip("\r\n")
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield RawRecord(source.name, where, _shown(raw), error=f"not valid JSON: {reason}")
                continue
            yield RawRecord(source.name, where, _shown(raw), record=record)


def _read_csv(source: SourceConfig) -> Iterator[RawRecord]:
    name = Path(source.path).name
    data = Path(source.path).read_bytes().decode("utf-8-sig", errors="surrogateescape")
    csv.field_size_limit(10_000_000)
    reader = csv.DictReader(io.StringIO(data, newline=""))
    if not reader.fieldnames:
        return
    line_no = reader.line_num
    while True:
        start = line_no + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(source.name, f"{name}:{start}", "", error=f"CSV error: {exc}")
            return
        line_no = reader.line_num
        where = f"{name}:{start}"
        raw = json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if None in row:
            yield RawRecord(source.name, where, _shown(raw), error="CSV row has more cells than the header")
            continue
        bad = [k for k, v in row.items() if v and any("\udc80" <= ch <= "\udcff" for ch in v)]
        if bad:
            yield RawRecord(source.name, where, _shown(raw), error=f"invalid UTF-8 in column(s) {', '.join(bad)}")
            continue
        yield RawRecord(source.name, where, _shown(raw), record=row)


def _read_parquet(source: SourceConfig) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    name = Path(source.path).name
    try:
        parquet = pq.ParquetFile(source.path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise SourceError(f"[S004] Source {source.name!r}: {source.path} is not a readable Parquet file: {exc}") from None
    row_no = 0
    for batch in parquet.iter_batches(batch_size=2048):
        for record in batch.to_pylist():
            row_no += 1
            raw = json.dumps(record, ensure_ascii=False, default=str)
            yield RawRecord(source.name, f"{name}:row {row_no}", _shown(raw), record=record)
