"""Network sources: a careful HTTP GET (retries, backoff, rate limit, secrets) and the
paginated JSON API reader (`kind: http_json`).

Retries: HTTP 429 (Retry-After honoured), 5xx, timeouts and connection errors are
retried `retries` times with exponential backoff and jitter; any other 4xx stops at
once. Either way, a source that cannot be read raises SourceError naming the source,
the URL and the status.

Secrets: a header value may hold `${ENV:NAME}`; it is read from the environment when
the request is made, is never stored in the config, and every error message, log line
and RawRecord.raw is scrubbed of it.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from extractors.errors import SourceError
from flows.records import get_path
from flows.sources import (
    ENV_REF,
    MAX_RAW_CHARS,
    CursorPagination,
    NextUrlPagination,
    OffsetPagination,
    PagePagination,
    RawRecord,
    SourceConfig,
)

logger = logging.getLogger("skillpulse.sources")
USER_AGENT = "skillpulse (job-ads ingest)"
JSON_ACCEPT = "application/json, */*;q=0.5"
MAX_ERROR_BODY = 200
REDACTED = "***"


def resolve_headers(source: SourceConfig) -> tuple[dict[str, str], list[str]]:
    """The source's headers with `${ENV:NAME}` filled in, and the secret values used.

    Raises:
        SourceError: when a referenced variable is not set or empty.
    """
    headers: dict[str, str] = {}
    secrets: list[str] = []
    for name, template in source.headers.items():
        def fill(match: Any, header: str = name) -> str:
            var = match.group(1)
            value = os.environ.get(var, "")
            if not value:
                raise SourceError(f"[S005] Source {source.name!r}: header {header!r} needs the environment "
                                  f"variable {var}, which is not set")
            secrets.append(value)
            return value

        headers[name] = ENV_REF.sub(fill, template)
    return headers, sorted(set(secrets), key=len, reverse=True)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_delay(source: SourceConfig, attempt: int, retry_after: float | None = None,
                  rand: Callable[[], float] = random.random) -> float:
    """Wait before retry number `attempt` (0-based): exponential with jitter, at least
    Retry-After, never more than max_backoff_seconds."""
    exp = source.backoff_base_seconds * (2 ** attempt)
    jittered = exp * (0.5 + 0.5 * rand())
    wanted = max(jittered, retry_after or 0.0)
    return min(wanted, source.max_backoff_seconds)


class HttpFetcher:
    """GET with retries, rate limit and secret headers for one source; use as a context manager."""

    def __init__(self, source: SourceConfig, *, accept: str = JSON_ACCEPT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.source = source
        self._sleep = sleep
        headers, self.secrets = resolve_headers(source)
        self._host = urlsplit(source.url or "").hostname
        self._last_request = 0.0
        all_headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept": accept})
        all_headers.update(headers)  # the source's own headers win, whatever their case
        self.client = httpx.Client(
            headers=all_headers,
            timeout=httpx.Timeout(source.timeout_seconds),
            follow_redirects=True,
            event_hooks={"request": [self._check_request]},
        )

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.client.close()

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by ***."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _error(self, code: str, message: str) -> SourceError:
        return SourceError(self.redact(f"[{code}] Source {self.source.name!r}: {message}"))

    def _check_request(self, request: httpx.Request) -> None:
        # Headers (and so secrets) go only to the configured host, redirects included.
        if self._host and request.url.host != self._host:
            raise self._error("S006", f"refusing to send a request to {request.url.host!r}: only "
                                      f"{self._host!r} (the source's url host) is allowed")

    def _throttle(self) -> None:
        rate = self.source.rate_limit_per_second
        if rate:
            wait = self._last_request + 1.0 / rate - time.monotonic()
            if wait > 0:
                self._sleep(wait)
        self._last_request = time.monotonic()

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """The response to GET `url` (2xx only), after retries.

        Raises:
            SourceError: on a 4xx other than 429, or once retries are used up.
        """
        source = self.source
        try:
            # httpx's own `params=` would drop a query already in the URL; merge instead.
            full = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise self._error("S006", f"bad URL {url!r}: {exc}") from None
        shown = str(full)
        for attempt in range(source.retries + 1):
            self._throttle()
            retry_after: float | None = None
            try:
                response = self.client.get(full)
            except httpx.TimeoutException:
                problem = f"timed out after {source.timeout_seconds:g} s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {exc})"
            except (httpx.TooManyRedirects, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise self._error("S006", f"GET {shown} failed: {exc}") from None
            else:
                shown = str(response.request.url)
                if response.is_success:
                    return response
                status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                body = " ".join(response.text[:MAX_ERROR_BODY].split())
                detail = f": {body}" if body else ""
                if response.status_code != 429 and response.status_code < 500:
                    raise self._error("S006", f"GET {shown} answered {status}{detail}")
                problem = f"answered {status}{detail}"
                retry_after = _retry_after(response) if response.status_code in (429, 503) else None
            if attempt == source.retries:
                raise self._error("S007", f"GET {shown} {problem}; gave up after "
                                          f"{attempt + 1} attempt{'s' if attempt else ''}")
            delay = backoff_delay(source, attempt, retry_after)
            logger.warning(self.redact(f"Source {source.name!r}: GET {shown} {problem}; "
                                       f"retry {attempt + 1}/{source.retries} in {delay:.2f} s"))
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _json_body(fetcher: HttpFetcher, response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type")
        raise fetcher._error("S008", f"GET {response.request.url} did not answer JSON ({kind})") from None


def scrub(value: Any, secrets: list[str]) -> Any:
    """`value` (JSON data) with every secret replaced by *** in its strings and keys."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def raw_json(item: Any, secrets: list[str]) -> tuple[str, Any]:
    """The item as JSON text (capped at MAX_RAW_CHARS) and as data, scrubbed of secrets."""
    raw = json.dumps(item, ensure_ascii=False)
    if secrets and any(secret in raw for secret in secrets):
        item = scrub(item, secrets)
        raw = json.dumps(item, ensure_ascii=False)
    if len(raw) > MAX_RAW_CHARS:
        raw = raw[:MAX_RAW_CHARS] + f"… [{len(raw)} chars]"
    return raw, item


def read_http_json(source: SourceConfig) -> Iterator[RawRecord]:
    """Yield every item of every page of a JSON API, one page in memory at a time.

    Each item becomes a RawRecord with location "page P item I" (both from 1) and raw
    the item's JSON. Stops at the end of the pagination or after max_pages pages.
    """
    assert source.url is not None  # the config validator requires it
    pagination = source.pagination
    url = source.url
    params: dict[str, Any] = dict(source.params)
    if isinstance(pagination, PagePagination):
        params[pagination.param] = pagination.start
        if pagination.size_param and pagination.size:
            params[pagination.size_param] = pagination.size
    elif isinstance(pagination, OffsetPagination):
        params[pagination.offset_param] = pagination.start
        params[pagination.limit_param] = pagination.limit
    previous_digest = ""
    previous_cursor: Any = None
    with HttpFetcher(source) as fetcher:
        page = 0
        while source.max_pages is None or page < source.max_pages:
            page += 1
            response = fetcher.get(url, params)
            digest = hashlib.sha1(response.content).hexdigest()
            if digest == previous_digest:
                raise fetcher._error("S010", f"page {page} ({response.request.url}) is the same as page "
                                             f"{page - 1}: the API does not seem to follow the pagination settings")
            previous_digest = digest
            body = _json_body(fetcher, response)
            items = get_path(body, source.items_path) if source.items_path else body
            if items is None and page > 1:
                items = []  # some APIs drop the list on the last page
            if not isinstance(items, list):
                where = f"items_path {source.items_path!r}" if source.items_path else "the response"
                raise fetcher._error("S008", f"GET {response.request.url}: {where} is not a list "
                                             f"(got {type(items).__name__})")
            for i, item in enumerate(items, 1):
                raw, record = raw_json(item, fetcher.secrets)
                yield RawRecord(source.name, f"page {page} item {i}", raw, record=record)
            if pagination is None:
                return
            if isinstance(pagination, PagePagination):
                if not items:
                    return
                params[pagination.param] += 1
            elif isinstance(pagination, OffsetPagination):
                if not items:
                    return
                params[pagination.offset_param] += len(items)
            elif isinstance(pagination, CursorPagination):
                cursor = get_path(body, pagination.cursor_path)
                if cursor is None or cursor == "" or cursor is False:
                    return
                if cursor == previous_cursor:
                    raise fetcher._error("S010", f"page {page} gave the same cursor as page {page - 1}")
                previous_cursor = params[pagination.cursor_param] = cursor
            elif isinstance(pagination, NextUrlPagination):
                nxt = get_path(body, pagination.next_url_path)
                if not nxt or not isinstance(nxt, str):
                    return
                url = urljoin(str(response.request.url), nxt)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise fetcher._error("S008", f"page {page}: next page URL {url!r} is not http(s)")
                params = {}  # the next URL carries its own query
        if page == source.max_pages:
            logger.info("Source %r: stopped after max_pages=%d pages", source.name, page)
