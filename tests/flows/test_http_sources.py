"""Network sources against a real HTTP server on 127.0.0.1 (no mocks of the HTTP client)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from extractors.errors import SourceError
from flows.http_sources import backoff_delay, raw_json
from flows.ingest import collect
from flows.sources import SourceConfig, load_sources, read_records

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-Key-0123456789"
FAST = {"backoff_base_seconds": 0.01, "max_backoff_seconds": 0.05, "timeout_seconds": 5}
JOBS = [
    {"id": f"j{n}", "attrs": {"title": f"Job {n}", "body": {"html": f"<p>Python and SQL developer number {n}, "
                                                                    "remote work, Docker.</p>"}},
     "meta": {"published": f"2026-05-0{n}T09:00:00+03:00", "place": {"city": "Kyiv", "country": "UA"}}}
    for n in range(1, 8)
]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Route = Callable[[dict[str, str], dict[str, str]], Reply]


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 with routes set by each test; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.seen.append(Seen(parts.path, query, headers))
                route = server.routes.get(parts.path)
                reply = route(query, headers) if route else Reply(404, {"error": "no such route"})
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    self.send_response(reply.status)
                    content_type = reply.headers.pop("Content-Type", "application/json")
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def paths(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if path is None or s.path == path]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


def source(**settings: Any) -> SourceConfig:
    return SourceConfig.model_validate({"name": "api", "kind": "http_json", **FAST, **settings})


def ids(records: list[Any]) -> list[str]:
    return [r.record["id"] for r in records]


# --- pagination styles ---------------------------------------------------------------------------

def page_route(query: dict[str, str], _: dict[str, str]) -> Reply:
    page, size = int(query["page"]), int(query["per_page"])
    return Reply(body={"data": {"jobs": JOBS[(page - 1) * size: page * size]}, "page": page})


def offset_route(query: dict[str, str], _: dict[str, str]) -> Reply:
    offset, limit = int(query["offset"]), int(query["limit"])
    return Reply(body={"data": {"jobs": JOBS[offset: offset + min(limit, 2)]}})  # the API caps pages at 2


def cursor_route(query: dict[str, str], _: dict[str, str]) -> Reply:
    start = int(query.get("after", "0"))
    nxt = str(start + 3) if start + 3 < len(JOBS) else None
    return Reply(body={"data": {"jobs": JOBS[start: start + 3]}, "paging": {"next": nxt}})


def next_url_route(query: dict[str, str], _: dict[str, str]) -> Reply:
    page = int(query.get("p", "1"))
    body: dict[str, Any] = {"results": {"items": JOBS[(page - 1) * 4: page * 4]}}
    if page * 4 < len(JOBS):
        body["links"] = {"next": f"/next?p={page + 1}&q=python"}  # relative, carries its own query
    return Reply(body=body)


@pytest.mark.parametrize(
    ("path", "route", "settings", "requests", "first_query"),
    [
        ("/page", page_route, {"items_path": "data.jobs",
                               "pagination": {"style": "page", "param": "page", "size_param": "per_page", "size": 3}},
         4, {"page": "1", "per_page": "3", "q": "python"}),
        ("/offset", offset_route, {"items_path": "data.jobs", "pagination": {"style": "offset", "limit": 5}},
         5, {"offset": "0", "limit": "5", "q": "python"}),
        ("/cursor", cursor_route, {"items_path": "data.jobs",
                                   "pagination": {"style": "cursor", "cursor_path": "paging.next",
                                                  "cursor_param": "after"}},
         3, {"q": "python"}),
        ("/next", next_url_route, {"items_path": "results.items",
                                   "pagination": {"style": "next_url", "next_url_path": "links.next"}},
         2, {"q": "python"}),
    ],
)
def test_http_json_pagination_styles(server: Server, path: str, route: Route, settings: dict[str, Any],
                                     requests: int, first_query: dict[str, str]) -> None:
    server.routes[path] = route
    records = list(read_records(source(url=server.base + path, params={"q": "python"}, **settings)))
    assert ids(records) == [j["id"] for j in JOBS]  # all, in order, exactly once
    assert all(r.error is None for r in records)
    assert records[0].record == JOBS[0] and json.loads(records[0].raw) == JOBS[0]
    assert len(server.paths(path)) == requests
    assert server.paths(path)[0].query == first_query
    per_page = {"/page": 3, "/offset": 2, "/cursor": 3, "/next": 4}[path]
    assert records[per_page].location == "page 2 item 1"
    assert records[-1].location == f"page {(len(JOBS) - 1) // per_page + 1} item {(len(JOBS) - 1) % per_page + 1}"


def test_http_json_max_pages_and_single_request(server: Server) -> None:
    server.routes["/page"] = page_route
    server.routes["/all"] = lambda q, h: Reply(body=JOBS[:2])
    paged = source(url=server.base + "/page", items_path="data.jobs", max_pages=2,
                   pagination={"style": "page", "size_param": "per_page", "size": 3})
    assert ids(list(read_records(paged))) == ["j1", "j2", "j3", "j4", "j5", "j6"]
    assert len(server.paths("/page")) == 2
    assert ids(list(read_records(source(url=server.base + "/all")))) == ["j1", "j2"]  # no items_path: a list


def test_http_json_reads_lazily_one_page_at_a_time(server: Server) -> None:
    server.routes["/page"] = page_route
    records = read_records(source(url=server.base + "/page", items_path="data.jobs",
                                  pagination={"style": "page", "size_param": "per_page", "size": 3}))
    assert next(records).record["id"] == "j1"
    assert len(server.paths("/page")) == 1
    records.close()  # type: ignore[attr-defined]
    assert len(server.paths("/page")) == 1


# --- retries, errors --------------------------------------------------------------------------------

def test_http_json_retries_429_500_timeout_then_succeeds(server: Server) -> None:
    script = [Reply(429, {"error": "slow down"}, {"Retry-After": "1"}), Reply(500, {"error": "oops"}),
              Reply(body={"data": {"jobs": []}}, delay=1.5)]

    def flaky(query: dict[str, str], _: dict[str, str]) -> Reply:
        if query.get("after") is None and script:
            return script.pop(0)
        return cursor_route(query, _)

    server.routes["/flaky"] = flaky
    cfg = source(url=server.base + "/flaky", items_path="data.jobs", **(FAST | {"timeout_seconds": 0.4}),
                 pagination={"style": "cursor", "cursor_path": "paging.next", "cursor_param": "after"})
    started = time.monotonic()
    records = list(read_records(cfg))
    assert ids(records) == [j["id"] for j in JOBS]
    assert len(server.paths("/flaky")) == 4 + 2  # 3 failures and a success for page 1, then pages 2 and 3
    assert time.monotonic() - started < 5  # backoff capped by max_backoff_seconds


def test_backoff_honours_retry_after_and_caps() -> None:
    cfg = SourceConfig(name="a", kind="http_json", url="https://x.org")  # defaults: base 1 s, cap 60 s
    assert backoff_delay(cfg, 0, rand=lambda: 0.0) == 0.5
    assert backoff_delay(cfg, 3, rand=lambda: 1.0) == 8.0
    assert backoff_delay(cfg, 0, retry_after=1.0, rand=lambda: 0.0) == 1.0
    assert backoff_delay(cfg, 10, rand=lambda: 1.0) == 60.0
    assert backoff_delay(cfg, 0, retry_after=600.0) == 60.0


def test_http_json_retries_are_bounded(server: Server) -> None:
    server.routes["/down"] = lambda q, h: Reply(503, {"error": "maintenance"})
    with pytest.raises(SourceError) as info:
        list(read_records(source(url=server.base + "/down", retries=2)))
    assert str(info.value) == (f"[S007] Source 'api': GET {server.base}/down answered HTTP 503 Service Unavailable: "
                               '{"error": "maintenance"}; gave up after 3 attempts')
    assert len(server.paths("/down")) == 3


def test_http_json_connection_refused_is_retried_then_source_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match=r"\[S007\] Source 'api': GET http://127.0.0.1:\d+/x connection failed "
                                          r"\(ConnectError: .*\); gave up after 2 attempts"):
        list(read_records(source(url=f"http://127.0.0.1:{port}/x", retries=1)))


def test_http_json_404_is_not_retried(server: Server) -> None:
    with pytest.raises(SourceError) as info:
        list(read_records(source(url=server.base + "/gone?x=1")))
    assert str(info.value) == (f"[S006] Source 'api': GET {server.base}/gone?x=1 answered HTTP 404 Not Found: "
                               '{"error": "no such route"}')
    assert len(server.paths("/gone")) == 1
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_http_json_error_mid_way_after_first_page(server: Server) -> None:
    server.routes["/half"] = lambda q, h: (Reply(body={"jobs": JOBS[:2], "next": 2}) if "c" not in q
                                           else Reply(410, "gone"))
    got: list[str] = []
    with pytest.raises(SourceError, match=r"Source 'api': GET .*/half\?c=2 answered HTTP 410 Gone"):
        for record in read_records(source(url=server.base + "/half", items_path="jobs",
                                          pagination={"style": "cursor", "cursor_path": "next", "cursor_param": "c"})):
            got.append(record.record["id"])
    assert got == ["j1", "j2"]


@pytest.mark.parametrize(
    ("reply", "settings", "message"),
    [
        (Reply(body=b"<html>oops</html>", headers={"Content-Type": "text/html"}), {},
         r"\[S008\] .* did not answer JSON \(text/html\)"),
        (Reply(body={"data": {"jobs": {"a": 1}}}), {"items_path": "data.jobs"},
         r"\[S008\] .*: items_path 'data.jobs' is not a list \(got dict\)"),
        (Reply(body={"data": {}}), {"items_path": "data.jobs"},
         r"items_path 'data.jobs' is not a list \(got NoneType\)"),
        (Reply(body={"jobs": JOBS[:1]}), {"items_path": "jobs", "pagination": {"style": "page"}},
         r"\[S010\] .*page 2 .* is the same as page 1"),
        (Reply(body={"jobs": [], "next": "http://other.invalid/x"}),
         {"items_path": "jobs", "pagination": {"style": "next_url", "next_url_path": "next"}},
         r"\[S006\] .*refusing to send a request to 'other.invalid'"),
        (Reply(302, b"", {"Location": "http://other.invalid/x"}), {}, r"refusing to send a request to 'other.invalid'"),
    ],
)
def test_http_json_bad_responses(server: Server, reply: Reply, settings: dict[str, Any], message: str) -> None:
    server.routes["/bad"] = lambda q, h: Reply(reply.status, reply.body, dict(reply.headers))
    with pytest.raises(SourceError, match=message):
        list(read_records(source(url=server.base + "/bad", **settings)))
    assert len(server.paths("/bad")) <= 2


def test_http_json_repeated_cursor_stops(server: Server) -> None:
    def same_cursor(query: dict[str, str], _: dict[str, str]) -> Reply:
        n = len(server.paths("/same"))
        return Reply(body={"jobs": JOBS[n - 1: n], "c": "x"})

    server.routes["/same"] = same_cursor
    cfg = source(url=server.base + "/same", items_path="jobs", pagination={"style": "cursor", "cursor_path": "c"})
    with pytest.raises(SourceError, match=r"\[S010\] Source 'api': page 2 gave the same cursor as page 1"):
        list(read_records(cfg))
    assert len(server.paths("/same")) == 2


def test_http_json_rate_limit(server: Server) -> None:
    server.routes["/page"] = page_route
    started = time.monotonic()
    list(read_records(source(url=server.base + "/page", items_path="data.jobs", rate_limit_per_second=10,
                             pagination={"style": "page", "size_param": "per_page", "size": 3})))
    assert len(server.paths("/page")) == 4
    assert time.monotonic() - started >= 0.3  # 4 requests, at least 0.1 s apart


# --- secrets ----------------------------------------------------------------------------------------

def test_http_json_header_secret_from_env_never_leaks(server: Server, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BOARD_API_KEY", SECRET)

    def secure(query: dict[str, str], headers: dict[str, str]) -> Reply:
        if headers.get("authorization") != f"Bearer {SECRET}":
            return Reply(401, {"error": "bad key"})
        if query.get("p") == "3":  # a careless API echoing the key in its error body
            return Reply(403, {"error": f"key {headers['authorization']} may not read page 3"})
        if query.get("p") == "2":
            return Reply(500, {"error": f"retry later, {headers['authorization']}"})
        echo = [dict(job, debug={"auth": headers["authorization"]}) for job in JOBS[:2]]
        return Reply(body={"jobs": echo, "next": "/secure?p=3"})

    server.routes["/secure"] = secure
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(f"sources:\n  - name: api\n    kind: http_json\n    url: {server.base}/secure\n"
                   "    headers: {Authorization: 'Bearer ${ENV:BOARD_API_KEY}', X-Client: skillpulse}\n"
                   "    items_path: jobs\n    pagination: {style: next_url, next_url_path: next}\n"
                   "    backoff_base_seconds: 0.01\n", encoding="utf-8")
    assert SECRET not in cfg.read_text(encoding="utf-8")
    (src,) = load_sources(str(cfg))
    assert SECRET not in repr(src) and SECRET not in src.model_dump_json()
    caplog.set_level(logging.DEBUG)
    records = []
    with pytest.raises(SourceError) as info:
        for record in read_records(src):
            records.append(record)
    assert len(records) == 2
    for record in records:
        assert SECRET not in record.raw and SECRET not in json.dumps(record.record)
        assert record.record["debug"] == {"auth": "Bearer ***"}
    assert str(info.value).endswith("answered HTTP 403 Forbidden: {\"error\": \"key Bearer *** may not read page 3\"}")
    assert SECRET not in str(info.value) and SECRET not in caplog.text
    seen = server.paths("/secure")
    assert [s.headers["authorization"] for s in seen] == [f"Bearer {SECRET}"] * 2
    assert seen[0].headers["x-client"] == "skillpulse"

    server.routes["/secure"] = lambda q, h: secure({"p": "2"}, h)
    with pytest.raises(SourceError) as info:
        list(read_records(src.model_copy(update={"retries": 1})))
    assert 'retry later, Bearer ***"}; gave up after 2 attempts' in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in caplog.text
    assert "retry 1/1" in caplog.text


def test_raw_json_scrubs_secrets_inside_strings_only() -> None:
    raw, item = raw_json({"n": 12, "s": "a12b", "12": [1, "12"]}, ["12"])
    assert item == {"n": 12, "s": "a***b", "***": [1, "***"]}
    assert json.loads(raw) == item
    assert raw_json({"s": "x" * 200_000}, [])[0].endswith("… [200009 chars]")


def test_http_json_missing_env_secret_fails_before_any_request(server: Server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOARD_API_KEY", raising=False)
    cfg = source(url=server.base + "/secure", headers={"X-Api-Key": "${ENV:BOARD_API_KEY}"})
    with pytest.raises(SourceError, match=r"\[S005\] Source 'api': header 'X-Api-Key' needs the environment "
                                          r"variable BOARD_API_KEY, which is not set"):
        list(read_records(cfg))
    assert server.paths() == []


# --- feeds ---------------------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:job="https://example.org/job">
 <channel><title>Board</title><link>https://board.example/</link><description>Jobs</description>
  <item><guid isPermaLink="false">rss-1</guid><title>Data engineer</title><link>https://board.example/1</link>
   <description>&lt;p&gt;Spark and &lt;b&gt;SQL&lt;/b&gt; pipelines for a bank in Chișinău.&lt;/p&gt;</description>
   <pubDate>Fri, 01 May 2026 01:30:00 +0300</pubDate><author>hr@bank.example (Bank)</author>
   <job:city>Chișinău</job:city></item>
  <item><title>No guid</title><link>https://board.example/2</link><description>Text only.</description></item>
 </channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Board</title><id>urn:board</id><updated>2026-05-02T00:00:00Z</updated>
 <entry><id>urn:job:1</id><title>Frontend developer</title><link href="/jobs/1"/>
  <updated>2026-05-02T10:00:00Z</updated><published>2026-04-30T23:30:00+03:00</published>
  <author><name>Studio</name></author>
  <content type="html">&lt;ul&gt;&lt;li&gt;React&lt;/li&gt;&lt;li&gt;TypeScript&lt;/li&gt;&lt;/ul&gt;</content></entry>
 <entry><id>urn:job:2</id><title>QA</title><updated>2026-05-03T08:00:00Z</updated>
  <summary>Manual testing.</summary></entry>
</feed>"""


def test_rss_feed_over_http(server: Server) -> None:
    server.routes["/feed.rss"] = lambda q, h: Reply(body=RSS.encode(), headers={"Content-Type": "application/rss+xml"})
    records = list(read_records(SourceConfig(name="rss", kind="rss", url=server.base + "/feed.rss")))
    assert [r.location for r in records] == ["item 1", "item 2"]
    first = records[0].record
    assert {k: first[k] for k in ("id", "title", "url", "posted_at")} == {
        "id": "rss-1", "title": "Data engineer", "url": "https://board.example/1",
        "posted_at": "2026-05-01T01:30:00+03:00"}  # the feed's own offset: still May
    assert first["description"] == "<p>Spark and <b>SQL</b> pipelines for a bank in Chișinău.</p>"
    assert first["entry"]["job_city"] == "Chișinău"
    assert json.loads(records[0].raw) == first
    assert records[1].record["id"] == "https://board.example/2" and records[1].record["posted_at"] is None
    assert "rss+xml" in server.paths("/feed.rss")[0].headers["accept"]


def test_atom_feed_from_http_and_local_file(server: Server, tmp_path: Path) -> None:
    atom_type = {"Content-Type": "application/atom+xml"}
    server.routes["/feed.atom"] = lambda q, h: Reply(body=ATOM.encode(), headers=dict(atom_type))
    (tmp_path / "feed.atom").write_text(ATOM, encoding="utf-8")
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(f"sources:\n  - name: web\n    kind: atom\n    url: {server.base}/feed.atom\n"
                   "  - name: local\n    kind: atom\n    path: feed.atom\n", encoding="utf-8")
    web, local = load_sources(str(cfg))
    for src, base in ((web, server.base), (local, "")):
        records = list(read_records(src))
        first, second = (r.record for r in records)
        assert (first["id"], first["title"], first["employer"]) == ("urn:job:1", "Frontend developer", "Studio")
        assert first["url"] == base + "/jobs/1"  # resolved against the feed's URL; left as is in a file
        assert first["posted_at"] == "2026-04-30T23:30:00+03:00"  # published before updated
        assert first["description"] == "<ul><li>React</li><li>TypeScript</li></ul>"
        assert (second["description"], second["posted_at"]) == ("Manual testing.", "2026-05-03T08:00:00+00:00")


def test_feed_errors(server: Server, tmp_path: Path) -> None:
    server.routes["/notfeed"] = lambda q, h: Reply(body=b"just text", headers={"Content-Type": "text/plain"})
    with pytest.raises(SourceError, match=r"\[S009\] Source 'f': http://.*/notfeed is not a readable RSS or Atom feed"):
        list(read_records(SourceConfig(name="f", kind="rss", url=server.base + "/notfeed")))
    with pytest.raises(SourceError, match=r"\[S006\] Source 'f': GET .*/nofeed answered HTTP 404"):
        list(read_records(SourceConfig(name="f", kind="rss", url=server.base + "/nofeed")))
    with pytest.raises(SourceError, match=r"\[S001\] Source 'f': file .*missing.xml not found"):
        list(read_records(SourceConfig(name="f", kind="rss", path=str(tmp_path / "missing.xml"))))


# --- through ingest ------------------------------------------------------------------------------------

def test_ingest_collects_postings_from_api_feed_and_pages(server: Server, tmp_path: Path) -> None:
    server.routes["/cursor"] = cursor_route
    server.routes["/feed.rss"] = lambda q, h: Reply(body=RSS.encode(), headers={"Content-Type": "application/rss+xml"})
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "ad-9.html").write_text(
        "<html><head><title>Support engineer</title></head><body><article>Linux, networking and Bash scripting "
        "for a helpdesk team.</article><time datetime='2026-05-20'></time></body></html>", encoding="utf-8")
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(f"""sources:
  - name: api
    kind: http_json
    url: {server.base}/cursor
    items_path: data.jobs
    pagination: {{style: cursor, cursor_path: paging.next, cursor_param: after}}
    mapping: {{title: attrs.title, description: attrs.body.html, posted_at: meta.published,
              city: meta.place.city, country: meta.place.country}}
  - name: feed
    kind: rss
    url: {server.base}/feed.rss
    mapping: {{city: entry.job_city}}
    defaults: {{country: MD}}
  - name: pages
    kind: html_folder
    path: pages
    selectors: {{description: article, posted_at: 'time@datetime'}}
    defaults: {{country: GE}}
""", encoding="utf-8")
    collected = collect(load_sources(str(cfg)), (), "run1")
    postings = [p for month in collected.by_month.values() for p in month]
    by_source = {s: sorted(p.source_id or "" for p in postings if p.source == s) for s in ("api", "feed", "pages")}
    assert by_source == {"api": sorted(j["id"] for j in JOBS), "feed": ["rss-1"], "pages": ["ad-9"]}
    assert collected.counts["read"] == 7 + 2 + 1 and collected.counts["quarantined"] == 1  # the RSS item with no date
    assert collected.quarantine["feed"][0]["location"] == "item 2"
    job1 = next(p for p in postings if p.source_id == "j1")
    assert (job1.title, job1.city, job1.country, str(job1.posted_date)) == ("Job 1", "Kyiv", "UA", "2026-05-01")
    assert job1.text.startswith("Python and SQL developer number 1")
    rss1 = next(p for p in postings if p.source_id == "rss-1")
    assert (rss1.country, str(rss1.posted_date), rss1.url) == ("MD", "2026-05-01", "https://board.example/1")
    page = next(p for p in postings if p.source_id == "ad-9")
    assert (page.title, page.country, str(page.posted_date)) == ("Support engineer", "GE", "2026-05-20")
    assert page.text.startswith("Linux, networking")
