"""Extract streams a month in chunks and writes exactly what extracting it whole writes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pytest

from flows import datasets, extract, extract_worker, storage
from flows.records import Posting, to_posting

SAMPLE = Path(extract.__file__).parent / "sample_data" / "ads.jsonl"
MONTH = "2026-03"


@pytest.fixture(scope="module")
def postings() -> pd.DataFrame:
    """The bundled sample's ads as one month of postings (every fifth one marked a duplicate), by posting_id."""
    rows = []
    with SAMPLE.open(encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            try:
                post = to_posting(json.loads(line), "sample")
            except ValueError:  # the sample holds a few broken lines on purpose
                continue
            if not isinstance(post, Posting):
                continue
            row = asdict(post)
            row["posting_id"] = f"p{i:04d}"
            row.update(occupation=None, duplicate_of="p0000" if i % 5 == 4 else None,
                       duplicate_kind="exact" if i % 5 == 4 else None, run_id="r1",
                       ingested_at=datetime(2026, 3, 2, tzinfo=UTC))
            rows.append(row)
    frame = pd.DataFrame(rows)
    assert len(frame) > 100 and frame["language"].nunique() >= 3
    return frame


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[storage.Location]:
    if request.param == "local":
        yield storage.root(tmp_path / "out")
        return
    bucket = f"skillpulse-{uuid.uuid4().hex[:8]}"
    yield storage.root(f"memory://{bucket}/out")
    fsspec.filesystem("memory").rm(f"/{bucket}", recursive=True)


def _write_postings(root: storage.Location, frame: pd.DataFrame) -> None:
    datasets.write_partition(root, "postings", MONTH, datasets.to_table(frame, datasets.POSTINGS))


def _mentions(root: storage.Location) -> pd.DataFrame:
    return datasets.read_partition(root, "mentions", MONTH)


@pytest.fixture(scope="module")
def whole(postings: pd.DataFrame) -> pd.DataFrame:
    """The month's mention rows extracted in one piece, in memory, sorted whole (the reference)."""
    frame = extract.month_mentions(postings, "builtin", 64, "run-1", chunk=10**6)
    assert len(frame) > 100
    assert {"Python", "SQL"} <= set(frame["concept_label"])
    return frame


def test_a_month_in_many_small_chunks_equals_the_month_in_one(root, postings, whole) -> None:  # type: ignore[no-untyped-def]
    _write_postings(root, postings)
    originals = int(postings["duplicate_of"].isna().sum())
    assert extract.extract_month(root, MONTH, "builtin", 64, "run-1", chunk=7) == (originals, len(whole))
    small = _mentions(root)
    pd.testing.assert_frame_equal(small, whole)
    assert set(small["posting_id"]) <= set(postings.loc[postings["duplicate_of"].isna(), "posting_id"])
    extract.extract_month(root, MONTH, "builtin", 64, "run-1")  # the default chunk: all of it at once
    pd.testing.assert_frame_equal(_mentions(root), whole)


def test_a_partition_out_of_posting_id_order_gives_the_same_mentions(root, postings, whole,  # type: ignore[no-untyped-def]
                                                                     monkeypatch) -> None:
    shuffled = postings.sample(frac=1.0, random_state=3)
    assert list(shuffled["posting_id"]) != sorted(shuffled["posting_id"])
    _write_postings(root, shuffled)
    monkeypatch.setattr(extract, "SORT_BUCKET_MIN", 16)  # several bucket files
    extract.extract_month(root, MONTH, "builtin", 64, "run-1", chunk=5)
    pd.testing.assert_frame_equal(_mentions(root), whole)
    leftovers = [p for p in storage.scratch_dir(root).glob(".extract-sort-*")] if isinstance(root, Path) else []
    assert leftovers == []


def test_a_month_without_postings_writes_an_empty_partition(tmp_path: Path) -> None:
    root = storage.root(tmp_path)
    assert extract.extract_month(root, MONTH, "builtin", 64, "run-1") == (0, 0)
    empty = _mentions(root)
    assert empty.empty and list(empty.columns) == [f.name for f in datasets.MENTIONS]


def test_streamed_writes_coalesce_small_tables_into_full_row_groups(tmp_path: Path) -> None:
    table = pa.table({"record_key": [f"k{i}" for i in range(23)], "location": ["l"] * 23, "record": ["{}"] * 23,
                      "reason": ["r"] * 23, "run_id": ["run"] * 23})
    pieces = [table.slice(i, 3) for i in range(0, 23, 3)]
    path = datasets.write_partition_streamed(tmp_path, "quarantine", "src", pieces, 10, coalesce=True)
    meta = storage.parquet_file(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 3]
    back = datasets.read_partition(tmp_path, "quarantine", "src")
    assert back["record_key"].tolist() == table["record_key"].to_pylist()


def test_chunk_sizes_follow_the_workers() -> None:
    assert extract.chunk_size(10**6, 1) == extract.SOLO_CHUNK
    assert extract.chunk_size(100, 2) == extract.CHUNK_MIN
    assert extract.chunk_size(10**6, 2) == extract.CHUNK_MAX
    assert extract.chunk_size(4_000, 2) == 500


def test_worker_tables_have_the_mentions_schema(postings) -> None:  # type: ignore[no-untyped-def]
    triples = list(zip(postings["posting_id"], postings["text"], postings["language"], strict=True))[:10]
    table = extract_worker.mention_table(triples, "builtin", "v1", 64, "run-9")
    assert table.schema.equals(datasets.MENTIONS, check_metadata=False)
    assert table.num_rows and set(table["run_id"].to_pylist()) == {"run-9"}
    keys = table.select(extract_worker.SORT_KEYS).to_pylist()
    assert keys == sorted(keys, key=lambda r: (r["posting_id"], r["start_char"], r["concept_id"], r["competence_id"]))
