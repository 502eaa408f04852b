from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from extractors.errors import OutputError
from flows import datasets


def _posting(pid: str, text: str = "text") -> dict:
    return {
        "posting_id": pid,
        "source": "s",
        "source_id": pid,
        "url": None,
        "title": "T",
        "employer": None,
        "text": text,
        "language": "en",
        "country": "UA",
        "region": "UA-30",
        "city": "Kyiv",
        "posted_date": date(2026, 8, 1),
        "occupation": None,
        "content_hash": "h",
        "duplicate_of": None,
        "duplicate_kind": None,
        "pii_removed": 0,
        "run_id": "r1",
        "ingested_at": datetime(2026, 8, 2, tzinfo=UTC),
    }


def test_datasets_round_trip_keeps_schema_and_values(tmp_path: Path) -> None:
    table = datasets.to_table([_posting("a"), _posting("b")], datasets.POSTINGS)
    path = datasets.write_partition(tmp_path, "postings", "2026-08", table)
    assert path == tmp_path / "postings" / "month=2026-08" / "part-0.parquet"
    stored = pq.read_schema(path)
    assert stored.equals(datasets.POSTINGS, check_metadata=False)
    assert stored.metadata[b"schema_version"] == datasets.SCHEMA_VERSION.encode()
    back = datasets.read_partition(tmp_path, "postings", "2026-08")
    assert list(back["posting_id"]) == ["a", "b"]
    assert back["posted_date"].iloc[0] == date(2026, 8, 1)
    whole = pd.read_parquet(tmp_path / "postings")
    assert list(whole["month"].astype(str)) == ["2026-08", "2026-08"]


def test_datasets_rewrite_replaces_the_partition_whole(tmp_path: Path) -> None:
    datasets.write_partition(
        tmp_path, "postings", "2026-08", datasets.to_table([_posting("a"), _posting("b")], datasets.POSTINGS)
    )
    datasets.write_partition(tmp_path, "postings", "2026-09", datasets.to_table([_posting("z")], datasets.POSTINGS))
    datasets.write_partition(tmp_path, "postings", "2026-08", datasets.to_table([_posting("c")], datasets.POSTINGS))
    frame = datasets.read_dataset(tmp_path, "postings")
    assert sorted(zip(frame["month"], frame["posting_id"], strict=True)) == [("2026-08", "c"), ("2026-09", "z")]
    assert datasets.partitions(tmp_path, "postings") == ["2026-08", "2026-09"]
    assert not list((tmp_path / "postings").rglob("*.tmp"))


def test_datasets_schema_rejects_missing_required_values(tmp_path: Path) -> None:
    bad = _posting("a") | {"text": None}
    with pytest.raises(ValueError):
        datasets.write_partition(tmp_path, "postings", "2026-08", datasets.to_table([bad], datasets.POSTINGS))


@pytest.mark.parametrize("value", ["../evil", "2026-08/../../x", ".hidden", ""])
def test_datasets_partition_values_cannot_escape_the_root(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError):
        datasets.write_partition(tmp_path, "quarantine", value, datasets.QUARANTINE.empty_table())


def test_datasets_check_month() -> None:
    assert datasets.check_month("2026-08") == "2026-08"
    for bad in ("2026-13", "26-08", "2026-8", "../2026-08"):
        with pytest.raises(ValueError):
            datasets.check_month(bad)


def test_datasets_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"\[O001\] Output folder .*file/out is not writable"):
        datasets.ensure_writable(blocker / "out")


def test_datasets_empty_reads_have_the_schema(tmp_path: Path) -> None:
    assert list(datasets.read_dataset(tmp_path, "mentions").columns) == [f.name for f in datasets.MENTIONS] + ["month"]
    assert len(datasets.read_partition(tmp_path, "demand", "2026-01")) == 0
