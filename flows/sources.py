"""Sources: a sources file lists them; one reader per kind yields raw records.

A sources file (YAML or TOML) looks like::

    sources:
      - name: board-a            # used in posting ids and quarantine
        kind: jsonl              # jsonl | json | csv | parquet | html_folder | rss | atom | http_json
        path: ads.jsonl          # relative to the sources file
        mapping: {description: body.html, posted_at: meta.published}   # optional
        defaults: {country: UA}  # optional values for empty fields

File kinds (jsonl, json, csv, parquet) and html_folder are read here; rss/atom in
`flows.feeds`, http_json in `flows.http_sources` (docs/sources.md lists every key).
A single .jsonl/.json/.csv/.parquet file stands for a one-source list with the
default field names. Readers stream (one line, row batch, page or file at a time)
and never raise on a bad record: they yield it with an error so that it lands in
quarantine. A source that cannot be read at all (missing file, HTTP 404, retries
used up) raises SourceError.
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
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from extractors.errors import SourceError

SAMPLE_SOURCES = Path(__file__).parent / "sample_data" / "sources.yaml"
KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
         ".rss": "rss", ".atom": "atom"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_RAW_CHARS = 100_000


ENV_REF = re.compile(r"\$\{ENV:([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|passw|cookie|session|signature", re.I)
_SECRET_PARAM = re.compile(r"^(api[_-]?key|apikey|key|token|access[_-]?token|secret|client[_-]?secret|password)$", re.I)
FILE_KINDS = ("jsonl", "json", "csv", "parquet")
HTTP_KEYS = {"headers", "timeout_seconds", "retries", "backoff_base_seconds", "max_backoff_seconds",
             "rate_limit_per_second"}
KIND_KEYS: dict[str, set[str]] = {
    "jsonl": {"path"}, "csv": {"path"}, "parquet": {"path"},
    "html_folder": {"path", "pattern", "selectors"},
    "rss": {"path", "url"} | HTTP_KEYS, "atom": {"path", "url"} | HTTP_KEYS,
    "http_json": {"url", "items_path", "pagination", "params", "max_pages"} | HTTP_KEYS,
    "json": {"path", "records_path"},
}
_COMMON_KEYS = {"name", "kind", "mapping", "defaults"}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PagePagination(_Strict):
    """`?page=1`, `?page=2`, … until a page has no items."""

    style: Literal["page"]
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = Field(default=None, ge=1)


class OffsetPagination(_Strict):
    """`?offset=0&limit=100`, then offset += items received, until a page has no items."""

    style: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1)
    start: int = Field(default=0, ge=0)


class CursorPagination(_Strict):
    """The next cursor is read from `cursor_path` in each response and sent as `cursor_param`."""

    style: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"


class NextUrlPagination(_Strict):
    """The next page's URL (absolute or relative) is read from `next_url_path`."""

    style: Literal["next_url"]
    next_url_path: str


Pagination = Annotated[PagePagination | OffsetPagination | CursorPagination | NextUrlPagination,
                       Field(discriminator="style")]


class SourceConfig(BaseModel):
    """One configured source; which keys apply depends on `kind` (see KIND_KEYS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["jsonl", "json", "csv", "parquet", "html_folder", "rss", "atom", "http_json"]
    path: str | None = None
    url: str | None = None
    mapping: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)
    # html_folder
    pattern: str = "*.html"
    selectors: dict[str, str] = Field(default_factory=dict)
    # json: dotted path to the records in the document ("" = the document itself)
    records_path: str = ""
    # network (rss, atom with url; http_json)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=4, ge=0, le=20)
    backoff_base_seconds: float = Field(default=1.0, ge=0, le=600)
    max_backoff_seconds: float = Field(default=60.0, ge=0, le=3600)
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    # http_json
    items_path: str | None = None
    pagination: Pagination | None = None
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    max_pages: int | None = Field(default=None, ge=1)

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        if value not in KIND_KEYS:
            raise ValueError(f"unknown kind {value!r}: expected one of {', '.join(KIND_KEYS)}")
        return value

    @model_validator(mode="after")
    def _keys_fit_kind(self) -> SourceConfig:
        misplaced = sorted(self.model_fields_set - _COMMON_KEYS - KIND_KEYS[self.kind])
        if misplaced:
            raise ValueError(f"{misplaced[0]}: not a setting of kind {self.kind!r}")
        if self.kind in (*FILE_KINDS, "html_folder") and not self.path:
            raise ValueError("path: Field required")
        if self.kind in ("rss", "atom") and bool(self.path) == bool(self.url):
            raise ValueError(f"kind {self.kind!r} needs either url (http/https) or path (a local file)")
        if self.kind == "http_json" and not self.url:
            raise ValueError("url: Field required")
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url, re.I):
            raise ValueError(f"url: must start with http:// or https://, got {self.url!r}")
        for header, value in self.headers.items():
            for var in ENV_REF.findall(value):
                if not _ENV_NAME.match(var):
                    raise ValueError(f"headers.{header}: ${{ENV:{var}}} is not a valid environment variable name")
            if _SECRET_HEADER.search(header) and not ENV_REF.search(value):
                raise ValueError(f"headers.{header}: looks like a secret; write it as ${{ENV:VARIABLE}} "
                                 "and set the variable in the environment, never the value in the sources file")
        for param, param_value in self.params.items():
            if "${ENV:" in str(param_value) or _SECRET_PARAM.match(param):
                raise ValueError(f"params.{param}: secrets cannot go in query parameters (they end up in URLs "
                                 "and logs): send them in a header as ${ENV:VARIABLE}")
        return self


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
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:64].lstrip("._-") or "source"
        return [SourceConfig(name=name, kind=KINDS[suffix], path=str(path.resolve()))]  # type: ignore[arg-type]
    if suffix not in (".yaml", ".yml", ".toml"):
        raise SourceError(f"[S002] Source {str(path)!r}: expected .yaml/.toml sources file "
                          "or .jsonl/.csv/.parquet/.rss/.atom data")
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
            msg = first["msg"].removeprefix("Value error, ")
            where = f"{loc}: " if loc else ""
            raise SourceError(f"[S003] Sources file {path}, source #{i}: {where}{msg}") from None
        if not _NAME.match(cfg.name):
            raise SourceError(f"[S003] Sources file {path}, source #{i}: "
                              f"name {cfg.name!r} must be letters, digits, _ . -")
        if cfg.path is not None:
            cfg = cfg.model_copy(update={"path": str((path.parent / cfg.path).resolve())})
        out.append(cfg)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise SourceError(f"[S003] Sources file {path}: source names must be unique, got {names}")
    return out


def check_source(source: SourceConfig) -> None:
    """Raise SourceError when the source cannot be opened (no network request is made)."""
    if source.kind == "html_folder":
        if not Path(str(source.path)).is_dir():
            raise SourceError(f"[S001] Source {source.name!r}: folder {source.path} not found")
        return
    if source.path is not None:
        if not Path(source.path).is_file():
            raise SourceError(f"[S001] Source {source.name!r}: file {source.path} not found")
        return
    from flows.http_sources import resolve_headers

    resolve_headers(source)  # a missing ${ENV:...} variable fails here, before any request


def read_records(source: SourceConfig) -> Iterator[RawRecord]:
    """Yield every record of a source, bad ones with an error; streams, never a whole-source list."""
    check_source(source)
    if source.kind in ("rss", "atom"):
        from flows.feeds import read_feed

        yield from read_feed(source)
    elif source.kind == "http_json":
        from flows.http_sources import read_http_json

        yield from read_http_json(source)
    else:
        reader = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet,
                  "html_folder": _read_html_folder}[source.kind]
        yield from reader(source)


def _shown(raw: str) -> str:
    return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + f"… [{len(raw)} chars]"


def _path(source: SourceConfig) -> Path:
    if source.path is None:  # the model validator makes path required for file kinds
        raise SourceError(f"[S003] Source {source.name!r}: path is required for kind {source.kind!r}")
    return Path(source.path)


def _read_jsonl(source: SourceConfig) -> Iterator[RawRecord]:
    name = _path(source).name
    with open(_path(source), "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{name}:{line_no}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line.decode("utf-8", errors="backslashreplace").rstrip("\n")
                error = f"invalid UTF-8 at byte {exc.start} of line {line_no}"
                yield RawRecord(source.name, where, _shown(raw), error=error)
                continue
            raw = text.rstrip("\r\n")
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                if isinstance(exc, json.JSONDecodeError):
                    reason = exc.msg
                elif isinstance(exc, RecursionError):
                    reason = "nested too deeply"
                else:
                    reason = str(exc)[:200]
                yield RawRecord(source.name, where, _shown(raw), error=f"not valid JSON: {reason}")
                continue
            yield RawRecord(source.name, where, _shown(raw), record=record)


def _read_json(source: SourceConfig) -> Iterator[RawRecord]:
    """One JSON document: the records are the list (or the object's values) at `records_path`.

    The document is parsed whole (a JSON document cannot be streamed without a
    streaming parser): give big exports as JSON Lines. A record is located
    `file.json:[N]` (from 1) in a list, `file.json:KEY` in an object.
    """
    path = _path(source)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceError(f"[S008] Source {source.name!r}: {path} is not UTF-8 (byte {exc.start})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise SourceError(f"[S008] Source {source.name!r}: {path} is not a JSON document: {reason}") from None
    items: Any = doc
    for part in source.records_path.split(".") if source.records_path else ():
        if isinstance(items, dict):
            items = items.get(part)
        elif isinstance(items, list) and part.isdigit() and int(part) < len(items):
            items = items[int(part)]
        else:
            items = None
    if isinstance(items, dict):
        pairs: Iterator[tuple[str, Any]] = ((str(k), v) for k, v in items.items())
    elif isinstance(items, list):
        pairs = ((f"[{i}]", v) for i, v in enumerate(items, 1))
    else:
        where = f"records_path {source.records_path!r}" if source.records_path else "the document"
        raise SourceError(f"[S008] Source {source.name!r}: {path}: {where} is not a list or an object "
                          f"of records (got {type(items).__name__})")
    del doc
    for key, record in pairs:
        raw = json.dumps(record, ensure_ascii=False)
        yield RawRecord(source.name, f"{path.name}:{key}", _shown(raw), record=record)


def _read_csv(source: SourceConfig) -> Iterator[RawRecord]:
    name = _path(source).name
    data = _path(source).read_bytes().decode("utf-8-sig", errors="surrogateescape")
    csv.field_size_limit(2**31 - 1)  # big fields are read, then quarantined row by row (records.py limits)
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
            # Report the broken row and go on with the next one; stop only if the
            # reader cannot move forward.
            yield RawRecord(source.name, f"{name}:{start}", "", error=f"CSV error: {exc}")
            if reader.line_num <= line_no:
                return
            line_no = reader.line_num
            continue
        line_no = reader.line_num
        where = f"{name}:{start}"
        raw = json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if None in row:
            yield RawRecord(source.name, where, _shown(raw), error="CSV row has more cells than the header")
            continue
        bad = [k for k, v in row.items() if v and any("\udc80" <= ch <= "\udcff" for ch in v)]
        if bad:
            columns = ", ".join(_printable(k) for k in bad)
            yield RawRecord(source.name, where, _shown(raw), error=f"invalid UTF-8 in column(s) {columns}")
            continue
        yield RawRecord(source.name, where, _shown(raw), record=row)


def _printable(text: str) -> str:
    """Show undecodable bytes (kept as surrogates) as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_parquet(source: SourceConfig) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    name = _path(source).name
    try:
        parquet = pq.ParquetFile(_path(source))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise SourceError(f"[S004] Source {source.name!r}: {source.path} "
                          f"is not a readable Parquet file: {exc}") from None
    row_no = 0
    for batch in parquet.iter_batches(batch_size=2048):
        for record in batch.to_pylist():
            row_no += 1
            raw = json.dumps(record, ensure_ascii=False, default=str)
            yield RawRecord(source.name, f"{name}:row {row_no}", _shown(raw), record=record)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_SELECTOR_PART = re.compile(r"^(?P<css>.+?)(?:@(?P<attr>[A-Za-z_:][A-Za-z0-9_:.-]*))?$", re.S)


def _decode_html(data: bytes) -> tuple[str | None, str | None]:
    """The page's text, from UTF-8 or its <meta charset>; else an error."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        utf8_error = f"invalid UTF-8 at byte {exc.start}"
    match = _META_CHARSET.search(data[:4096])
    if match:
        charset = match.group(1).decode("ascii")
        try:
            return data.decode(charset), None
        except (LookupError, UnicodeDecodeError):
            return None, f"{utf8_error}, and not valid {charset} as its <meta charset> says"
    return None, f"{utf8_error} and no <meta charset>"


def _select(tree: Any, selector: str) -> str | None:
    """Text of the first node matching `css`; `css@attr` an attribute; `css@html` the node's HTML."""
    match = _SELECTOR_PART.match(selector.strip())
    css, attr = (match.group("css"), match.group("attr")) if match else (selector, None)
    node = tree.css_first(css)
    if node is None:
        return None
    if attr == "html":
        value = node.html
    elif attr:
        value = node.attributes.get(attr)
    else:
        value = node.text(separator="\n", strip=True)
    return (value.strip() or None) if isinstance(value, str) else None


def _check_selectors(source: SourceConfig) -> None:
    from selectolax.lexbor import LexborHTMLParser

    empty = LexborHTMLParser("<html><body></body></html>")
    for field, selector in source.selectors.items():
        try:
            _select(empty, selector)
        except Exception as exc:  # selectolax raises several types for a bad selector
            raise SourceError(f"[S003] Source {source.name!r}: selectors.{field}: "
                              f"{selector!r} is not a valid CSS selector ({exc})") from None


def _read_html_folder(source: SourceConfig) -> Iterator[RawRecord]:
    """One record per page: id (file stem), title (<title> or first <h1>), description (the HTML), url."""
    from selectolax.lexbor import LexborHTMLParser

    folder = _path(source)
    _check_selectors(source)
    files = sorted(p for p in folder.glob(source.pattern) if p.is_file())  # names only, pages read one by one
    for file in files:
        where = str(file.relative_to(folder))
        text, error = _decode_html(file.read_bytes())
        if text is None:
            yield RawRecord(source.name, where, json.dumps({"id": file.stem, "url": file.as_uri()}), error=error)
            continue
        tree = LexborHTMLParser(text)
        record: dict[str, Any] = {
            "id": file.stem,
            "title": _select(tree, "title") or _select(tree, "h1"),
            "description": text,
            "url": file.as_uri(),
        }
        for field, selector in source.selectors.items():
            record[field] = _select(tree, selector)
        yield RawRecord(source.name, where, _shown(json.dumps(record, ensure_ascii=False)), record=record)
