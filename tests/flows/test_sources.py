from __future__ import annotations

import json
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
    cfg.write_text("sources:\n  - name: board-a\n    kind: jsonl\n    path: data/a.jsonl\n    mapping: {description: body.text}\n    defaults: {country: UA}\n", encoding="utf-8")
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
        ("sources:\n  - name: a\n    kind: ftp\n    path: x\n", "source #1: kind: Input should be 'jsonl', 'csv' or 'parquet'"),
        ("sources:\n  - name: a\n    kind: csv\n", "source #1: path: Field required"),
        ("sources:\n  - name: ../evil\n    kind: csv\n    path: x\n", "name '../evil' must be letters"),
        ("sources:\n  - name: a\n    kind: csv\n    path: x\n    pasword: y\n", "source #1: pasword: Extra inputs are not permitted"),
        ("sources: !!python/object/apply:os.system [echo hi]\n", "cannot parse"),
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
