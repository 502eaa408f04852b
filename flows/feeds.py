"""RSS and Atom sources (`kind: rss` / `kind: atom`), parsed with feedparser.

The feed comes from `url` (fetched with the same retries, timeouts and secret headers
as http_json) or from a local `path`. Every entry becomes one record with posting
field names, plus `entry`, the rest of the entry (namespaced elements such as
`<job:city>` appear as `job_city`) for the mapping to use::

    {"id": guid/id, "title": ..., "description": content or summary (HTML),
     "url": link, "posted_at": pubDate/published or updated (ISO 8601),
     "employer": author, "entry": {...}}

feedparser reads RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 alike, so `rss` and `atom` are
read the same way; the kind documents what the source is.
"""

from __future__ import annotations

import calendar
import email.utils
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from extractors.errors import SourceError
from flows.sources import RawRecord, SourceConfig

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
_USED = {"id", "guidislink", "title", "title_detail", "summary", "summary_detail", "content", "link",
         "published", "updated", "author", "author_detail"}


def _iso_date(raw: Any, parsed: Any) -> str | None:
    """The entry's date as ISO 8601, keeping the feed's own UTC offset when it has one."""
    if isinstance(raw, str) and raw.strip():
        text = raw.strip()
        try:
            return email.utils.parsedate_to_datetime(text).isoformat()  # RSS: RFC 822
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()  # Atom: RFC 3339
        except ValueError:
            pass
    if isinstance(parsed, time.struct_time):  # feedparser's own reading, in UTC
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()
    return None


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a feedparser value."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, (list, tuple)) and not isinstance(value, time.struct_time):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def entry_record(entry: Any) -> dict[str, Any]:
    """One feed entry as a record with posting field names."""
    content = entry.get("content") or []
    description = content[0].get("value") if content else entry.get("summary")
    return {
        "id": entry.get("id") or entry.get("link"),
        "title": entry.get("title"),
        "description": description,
        "url": entry.get("link"),
        "posted_at": _iso_date(entry.get("published"), entry.get("published_parsed"))
        or _iso_date(entry.get("updated"), entry.get("updated_parsed")),
        "employer": entry.get("author"),
        "entry": _plain({k: v for k, v in entry.items() if k not in _USED}),
    }


def _feed_bytes(source: SourceConfig) -> tuple[bytes, dict[str, str], list[str]]:
    """The feed document, the headers feedparser should know, and the secrets used to fetch it."""
    if source.path is not None:
        path = Path(source.path)
        try:
            return path.read_bytes(), {}, []  # relative links stay relative: there is no site to join
        except OSError as exc:
            raise SourceError(f"[S001] Source {source.name!r}: cannot read {path}: {exc.strerror}") from None
    from flows.http_sources import HttpFetcher

    assert source.url is not None
    with HttpFetcher(source, accept=FEED_ACCEPT) as fetcher:
        response = fetcher.get(source.url)
        headers = {"content-location": str(response.url)}
        if "content-type" in response.headers:
            headers["content-type"] = response.headers["content-type"]
        return response.content, headers, fetcher.secrets


def read_feed(source: SourceConfig) -> Iterator[RawRecord]:
    """Yield one record per feed entry, location "item N"."""
    from flows.http_sources import raw_json, scrub

    data, headers, secrets = _feed_bytes(source)
    # A stream, never a str: feedparser would take a str for a URL or file name to open.
    feed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    where = source.url or source.path
    if not feed.entries and (feed.bozo or not feed.version):
        problem = feed.get("bozo_exception") or "no RSS or Atom root element"
        raise SourceError(scrub(f"[S009] Source {source.name!r}: {where} "
                                f"is not a readable RSS or Atom feed: {problem}", secrets))
    for i, entry in enumerate(feed.entries, 1):
        raw, record = raw_json(entry_record(entry), secrets)
        yield RawRecord(source.name, f"item {i}", raw, record=record)
