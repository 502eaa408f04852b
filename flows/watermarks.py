"""Per-source watermarks: what a scheduled run has already ingested, so the next reads only what is new.

One small JSON file per source, ``<out>/state/watermarks/<source>.json``, written
atomically (temporary file, fsync, rename) and only after the run's month partitions
and quarantine are written: a failed run leaves the watermarks where they were, and
the next run reads the same records again (month writes merge by posting id, so
reading a record twice never duplicates it).

What a watermark holds depends on the kind of source:

- ``file`` (jsonl, csv, parquet, json, and rss/atom read from a file): the file's size,
  mtime and SHA-256, and how many raw records the run read. Next run: the same bytes
  → nothing is read; the old bytes plus more at the end (an appended JSON Lines or CSV
  file) → the records already read are skipped, only the new ones are normalised; any
  other change → the whole file is read again.
- ``folder`` (html_folder): size and mtime of every page read. Next run: pages that are
  new or changed are read; the others are skipped.
- ``date`` (http_json, and rss/atom from a URL): the latest `posted_date` seen. Next run:
  postings posted before that day are skipped (the day itself is read again, since
  dates have no time); an http_json source whose config has `since_param` also sends
  the date as that query parameter, so the server sends only new ads.

A watermark also holds a hash of the source's configuration: change the mapping, the
path or the URL and the source is read whole again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flows import storage
from flows.sources import RawRecord, SourceConfig, check_source, read_records

VERSION = 1
APPENDABLE = ("jsonl", "csv")  # appending bytes appends records
_CHUNK = 1 << 20


def state_dir(root: storage.Location) -> storage.Location:
    return storage.root(root) / "state" / "watermarks"


def _file(root: storage.Location, source: str) -> storage.Location:
    if not source or "/" in source or source.startswith("."):
        raise ValueError(f"unsafe source name {source!r}")
    return state_dir(root) / f"{source}.json"


def load(root: storage.Location, source: str) -> dict[str, Any] | None:
    """The source's watermark, or None (none yet, or unreadable: then the source is read whole)."""
    path = _file(root, source)
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) and mark.get("version") == VERSION else None


def save(root: storage.Location, mark: dict[str, Any]) -> storage.Location:
    """Write a watermark atomically: a reader sees the old one or the new one."""
    path = _file(root, mark["source"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with storage.open_file(tmp, "w", encoding="utf-8") as fh:
        json.dump(mark, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.flush()
        if not storage.is_remote(tmp):
            os.fsync(fh.fileno())
    storage.replace(tmp, path)
    return path


def config_hash(source: SourceConfig) -> str:
    data = source.model_dump(mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _kind(source: SourceConfig) -> str:
    if source.kind == "html_folder":
        return "folder"
    if source.kind == "http_json" or (source.kind in ("rss", "atom") and source.url):
        return "date"
    return "file"


def _hash_file(path: Path, size: int, prefix: int | None) -> tuple[str, str | None]:
    """SHA-256 of the first `size` bytes, and of the first `prefix` bytes (when 0 < prefix <= size)."""
    digest = hashlib.sha256()
    prefix_digest = None
    done = 0
    with open(path, "rb") as fh:
        while done < size:
            want = min(_CHUNK, size - done)
            if prefix is not None and done < prefix < done + want:
                want = prefix - done
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            done += len(chunk)
            if prefix is not None and done == prefix:
                prefix_digest = digest.hexdigest()
    return digest.hexdigest(), prefix_digest


@dataclass
class SourcePlan:
    """How to read one source this run, given its previous watermark; builds the next one."""

    source: SourceConfig
    previous: dict[str, Any] | None
    run_id: str
    skip_all: bool = False
    skip_records: int = 0
    unchanged_files: dict[str, list[int]] = field(default_factory=dict)
    since: date | None = None
    skipped: int = 0
    _next: dict[str, Any] = field(default_factory=dict)
    _read: int = 0
    _max_posted: date | None = None

    @property
    def partial(self) -> bool:
        """True when this run reads only part of the source (its quarantine is merged, not replaced)."""
        return self.skip_all or self.skip_records > 0 or bool(self.unchanged_files) or self.since is not None

    def records(self) -> Iterator[RawRecord]:
        """The source's records that are new since the watermark."""
        if self.skip_all:
            self.skipped = int((self.previous or {}).get("records", 0))
            return
        for n, raw in enumerate(read_records(self.source), 1):
            if n <= self.skip_records:
                self.skipped += 1
                continue
            if raw.location in self.unchanged_files:
                self.skipped += 1
                continue
            self._read += 1
            yield raw

    def keep(self, posted: date) -> bool:
        """Whether a posting of this date is new (date watermark); tracks the latest date seen."""
        if self.since is not None and posted < self.since:
            self.skipped += 1
            return False
        if self._max_posted is None or posted > self._max_posted:
            self._max_posted = posted
        return True

    def finish(self) -> dict[str, Any]:
        """The watermark to save once the run's partitions are written."""
        mark = dict(self._next)
        prev = self.previous or {}
        if mark["kind"] == "file":
            mark["records"] = self.skip_records + self._read if not self.skip_all else int(prev.get("records", 0))
        latest = [d for d in (self._max_posted, self.since,
                              _date(prev.get("max_posted_date")) if self.partial else None) if d is not None]
        mark["max_posted_date"] = max(latest).isoformat() if latest else None
        mark["run_id"] = self.run_id
        mark["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return mark


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def plan(source: SourceConfig, previous: dict[str, Any] | None, run_id: str) -> SourcePlan:
    """Decide what of `source` is new since `previous` (None: read it whole)."""
    kind = _kind(source)
    if kind != "date":
        check_source(source)  # a missing file fails as when reading it (S001)
    cfg = config_hash(source)
    if previous is not None and (previous.get("kind") != kind or previous.get("config") != cfg):
        previous = None  # the source changed: read it whole
    out = SourcePlan(source, previous, run_id)
    base = {"version": VERSION, "source": source.name, "kind": kind, "config": cfg}
    if kind == "file":
        path = Path(str(source.path))
        stat = path.stat()
        prev_size = int(previous["size"]) if previous else None
        digest, prefix = _hash_file(path, stat.st_size, prev_size)
        out._next = base | {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        if previous is not None:
            if stat.st_size == prev_size and digest == previous.get("sha256"):
                out.skip_all = True
            elif source.kind in APPENDABLE and prefix is not None and prefix == previous.get("sha256"):
                out.skip_records = int(previous.get("records", 0))
    elif kind == "folder":
        folder = Path(str(source.path))
        files = {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns]
                 for p in sorted(folder.glob(source.pattern)) if p.is_file()}
        out._next = base | {"files": files}
        if previous is not None:
            old = previous.get("files") or {}
            out.unchanged_files = {k: v for k, v in files.items() if old.get(k) == v}
    else:
        out._next = dict(base)
        since = _date((previous or {}).get("max_posted_date"))
        if since is not None:
            out.since = since
            since_param = getattr(source, "since_param", None)
            if since_param and source.kind == "http_json":
                out.source = source.model_copy(update={"params": {**source.params, since_param: since.isoformat()}})
    return out
