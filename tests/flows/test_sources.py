from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extractors.errors import SourceError
from flows.sources import SAMPLE_SOURCES, load_sources, read_records


def test_sources_jsonl_reader_flags_bad_lines(toy_ads: Path) -> None:
    source = load_sources(str(toy_ads))[0]
    records = list(read_records(source))
    assert len(records) == 10
    errors = {r.location: r.error for r in records if r.error}
    assert errors == {
        "toy_ads.jsonl:9": "invalid UTF-8 at byte 29 of line 9",
        "toy_ads.jsonl:10": "not valid JSON: Expecting value",
    }
    assert "\\xff" in next(r.raw for r in records if r.location == "toy_ads.jsonl:9")


def test_sources_csv_reader_handles_quotes_newlines_and_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    path.write_bytes(
        'id,title,description\n1,"Dev, senior","Line one\nline ""two"""\n'.encode()
        + b'2,Bad\xff,text\n'
        + "3,Ок,текст\n".encode()
    )
    records = list(read_records(load_sources(str(path))[0]))
    assert [r.location for r in records] == ["ads.csv:2", "ads.csv:4", "ads.csv:5"]
    assert records[0].record == {"id": "1", "title": "Dev, senior", "description": 'Line one\nline "two"'}
    assert records[1].error == "invalid UTF-8 in column(s) title"
    assert records[2].record["title"] == "Ок"


def test_sources_parquet_reader(tmp_path: Path) -> None:
    path = tmp_path / "ads.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "description": ["x", None]}), path)
    records = list(read_records(load_sources(str(path))[0]))
    assert [r.record for r in records] == [{"id": "a", "description": "x"}, {"id": "b", "description": None}]


def test_sources_file_with_mapping_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text(json.dumps({"x": 1}) + "\n", encoding="utf-8")
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("sources:\n  - name: board-a\n    kind: jsonl\n    path: data/a.jsonl\n"
                   "    mapping: {description: body.text}\n    defaults: {country: UA}\n", encoding="utf-8")
    (source,) = load_sources(str(cfg))
    assert source.mapping == {"description": "body.text"} and source.defaults == {"country": "UA"}
    assert Path(source.path) == (tmp_path / "data" / "a.jsonl").resolve()
    toml = tmp_path / "sources.toml"
    toml.write_text('[[sources]]\nname = "b"\nkind = "csv"\npath = "b.csv"\n', encoding="utf-8")
    assert load_sources(str(toml))[0].kind == "csv"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sources: []\n", "expected a non-empty list under 'sources'"),
        ("sources:\n  - name: a\n    kind: ftp\n    path: x\n",
         "source #1: kind: unknown kind 'ftp': expected one of jsonl, csv, parquet, html_folder, rss, atom, http_json"),
        ("sources:\n  - name: a\n    kind: csv\n", "source #1: path: Field required"),
        ("sources:\n  - name: ../evil\n    kind: csv\n    path: x\n", "name '../evil' must be letters"),
        ("sources:\n  - name: a\n    kind: csv\n    path: x\n    pasword: y\n",
         "source #1: pasword: Extra inputs are not permitted"),
        ("sources: !!python/object/apply:os.system [echo hi]\n", "cannot parse"),
        ("sources:\n  - name: a\n    kind: html_folder\n", "source #1: path: Field required"),
        ("sources:\n  - name: a\n    kind: http_json\n", "source #1: url: Field required"),
        ("sources:\n  - name: a\n    kind: csv\n    path: x\n    items_path: data\n",
         "source #1: items_path: not a setting of kind 'csv'"),
        ("sources:\n  - name: a\n    kind: rss\n    path: f.xml\n    url: https://example.org/f\n",
         "kind 'rss' needs either url (http/https) or path (a local file)"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: ftp://example.org/x\n",
         "url: must start with http:// or https://"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: https://x.org\n    pagination: {style: cursor}\n",
         "pagination.cursor.cursor_path: Field required"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: https://x.org\n    pagination: {style: pages}\n",
         "pagination: Input tag 'pages' found using 'style' does not match"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: https://x.org\n"
         "    headers: {Authorization: Bearer abc}\n",
         "headers.Authorization: looks like a secret; write it as ${ENV:VARIABLE}"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: https://x.org\n    headers: {X-Key: '${ENV:1X}'}\n",
         "headers.X-Key: ${ENV:1X} is not a valid environment variable name"),
        ("sources:\n  - name: a\n    kind: http_json\n    url: https://x.org\n    params: {api_key: abc}\n",
         "params.api_key: secrets cannot go in query parameters"),
    ],
)
def test_sources_file_errors_are_clear(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match=r"Sources file .*sources.yaml") as info:
        load_sources(str(cfg))
    assert message in str(info.value)


def test_sources_missing_file_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"\[S001\] Source '.*nope.jsonl' not found"):
        load_sources(str(tmp_path / "nope.jsonl"))
    cfg = tmp_path / "s.yaml"
    cfg.write_text("sources:\n  - name: a\n    kind: csv\n    path: gone.csv\n", encoding="utf-8")
    (source,) = load_sources(str(cfg))
    with pytest.raises(SourceError, match=r"Source 'a': file .*gone.csv not found"):
        list(read_records(source))


def test_sources_bundled_sample_is_configured() -> None:
    sources = load_sources(None)
    assert SAMPLE_SOURCES.is_file()
    assert [(s.name, s.kind) for s in sources] == [("sample-jsonl", "jsonl"), ("sample-csv", "csv")]


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_sources_html_folder_reads_one_ad_per_page(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    _write(pages / "b-2.html", "<html><body><h1>Data analyst</h1><p>SQL and Excel.</p></body></html>")
    _write(pages / "a-1.html", "<html><head><title> Python developer </title></head><body>"
                               "<h1>Ignored</h1><div class='job'><p>Django</p><p>REST</p></div>"
                               "<span class='city'>Kyiv</span><time datetime='2026-05-04'>4 May</time></body></html>")
    _write(pages / "c-3.html", b"<html><head><meta charset='windows-1251'><title>\xc4\xe8\xe7\xe0\xe9\xed\xe5\xf0"
                               b"</title></head><body>x</body></html>")
    _write(pages / "d-4.html", b"<html><body>\xff\xfe broken</body></html>")
    _write(pages / "notes.txt", "not a page")
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("sources:\n  - name: pages\n    kind: html_folder\n    path: pages\n"
                   "    selectors: {city: span.city, posted_at: 'time@datetime', body: 'div.job@html',"
                   " missing: div.nothing}\n", encoding="utf-8")
    (source,) = load_sources(str(cfg))
    records = list(read_records(source))
    assert [r.location for r in records] == ["a-1.html", "b-2.html", "c-3.html", "d-4.html"]
    first = records[0].record
    assert first["id"] == "a-1" and first["title"] == "Python developer"
    assert first["url"] == (pages / "a-1.html").resolve().as_uri()
    assert first["description"].startswith("<html>") and "Django" in first["description"]
    assert (first["city"], first["posted_at"], first["missing"]) == ("Kyiv", "2026-05-04", None)
    assert first["body"] == '<div class="job"><p>Django</p><p>REST</p></div>'
    assert json.loads(records[0].raw) == first
    assert records[1].record["title"] == "Data analyst"  # no <title>: the first <h1>
    assert records[2].record["title"] == "Дизайнер"  # decoded with its <meta charset>
    assert records[3].error == "invalid UTF-8 at byte 12 and no <meta charset>"
    assert records[3].record is None


def test_sources_html_folder_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("sources:\n  - name: p\n    kind: html_folder\n    path: gone\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"\[S001\] Source 'p': folder .*gone not found"):
        list(read_records(load_sources(str(cfg))[0]))
    (tmp_path / "pages").mkdir()
    _write(tmp_path / "pages" / "a.html", "<h1>x</h1>")
    cfg.write_text("sources:\n  - name: p\n    kind: html_folder\n    path: pages\n"
                   "    selectors: {city: 'div[['}\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"selectors.city: 'div\[\[' is not a valid CSS selector"):
        list(read_records(load_sources(str(cfg))[0]))


def test_sources_single_feed_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "board.rss", "<rss version='2.0'><channel><title>x</title></channel></rss>")
    (source,) = load_sources(str(path))
    assert (source.name, source.kind, source.path) == ("board", "rss", str(path.resolve()))
    assert list(read_records(source)) == []


def test_sources_docs_examples_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sources.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", docs, flags=re.S) if b.startswith("sources:")]
    assert len(blocks) >= 5
    kinds = set()
    for n, block in enumerate(blocks):
        cfg = tmp_path / f"s{n}.yaml"
        cfg.write_text(block, encoding="utf-8")
        kinds |= {s.kind for s in load_sources(str(cfg))}
    assert kinds == {"jsonl", "json", "html_folder", "rss", "atom", "http_json"}


def test_sources_json_document_reads_records_at_records_path(tmp_path: Path) -> None:
    ads = {"1_0": {"title": "A", "skills_text": ["x"]}, "1_1": {"title": "B"}, "1_2": "not an object"}
    _write(tmp_path / "keyed.json", json.dumps(ads))
    _write(tmp_path / "nested.json", json.dumps({"data": {"jobs": [{"id": 1}, {"id": 2}]}, "meta": {}}))
    _write(tmp_path / "broken.json", '{"a": ')
    cfg = _write(tmp_path / "sources.yaml",
                 "sources:\n  - {name: keyed, kind: json, path: keyed.json}\n"
                 "  - {name: nested, kind: json, path: nested.json, records_path: data.jobs}\n"
                 "  - {name: wrong, kind: json, path: nested.json, records_path: meta.missing}\n"
                 "  - {name: broken, kind: json, path: broken.json}\n")
    keyed, nested, wrong, broken = load_sources(str(cfg))
    records = list(read_records(keyed))
    assert [r.location for r in records] == ["keyed.json:1_0", "keyed.json:1_1", "keyed.json:1_2"]
    assert records[0].record == ads["1_0"] and records[2].record == "not an object"
    assert [(r.location, r.record) for r in read_records(nested)] == [("nested.json:[1]", {"id": 1}),
                                                                     ("nested.json:[2]", {"id": 2})]
    with pytest.raises(SourceError, match=r"\[S008\] Source 'wrong': .*records_path 'meta.missing' is not a list"):
        list(read_records(wrong))
    with pytest.raises(SourceError, match=r"\[S008\] Source 'broken': .*is not a JSON document"):
        list(read_records(broken))
    bad = _write(tmp_path / "bad.yaml", "sources:\n  - {name: a, kind: jsonl, path: a.jsonl, records_path: x}\n")
    with pytest.raises(SourceError, match="records_path: not a setting of kind 'jsonl'"):
        load_sources(str(bad))
