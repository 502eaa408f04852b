"""Ingest with worker processes gives exactly what one process gives (no Prefect server)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flows import datasets, ingest
from flows.dedupe import sketch
from flows.settings import PipelineSettings
from flows.sources import load_sources

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _staged_tables(staged: ingest.Staged) -> dict[str, Any]:
    months = {m: ingest.read_staged(p, datasets.POSTINGS).to_pylist() for m, p in staged.months.items()}
    quarantine = {s: ingest.read_staged(p, datasets.QUARANTINE).to_pylist() for s, p in staged.quarantine.items()}
    return {"months": months, "quarantine": quarantine, "counts": dict(staged.counts),
            "month_rows": dict(staged.month_rows)}


def test_stage_with_workers_equals_one_process(tmp_path: Path, toy_ads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled sample (duplicates, broken records, HTML, two sources) and the toy ads, in small batches."""
    monkeypatch.setattr(ingest, "NORMALISE_BATCH", 16)
    sources = [*load_sources(None), *load_sources(str(toy_ads))]
    one = ingest.stage(sources, (), "r1", tmp_path / "one", now=NOW, batch_rows=50)
    two = ingest.stage(sources, (), "r1", tmp_path / "two", now=NOW, batch_rows=50, workers=2, parallel_after=10)
    a, b = _staged_tables(one), _staged_tables(two)
    assert a == b
    assert a["counts"]["quarantined"] >= 5 and a["counts"]["read"] > 200  # the broken records are there
    assert all(row["occupation"] is not None for rows in a["months"].values() for row in rows[:3])


def _generated(path: Path, n: int, seed: int) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate_ads import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    generate(n, path, seed)
    return path


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, ingest_bodies):  # type: ignore[no-untyped-def]
    """Run the ingest flow's body with its tasks' bodies: no Prefect server needed."""
    from prefect.logging import disable_run_logger

    monkeypatch.setattr(ingest, "PARALLEL_AFTER", 100)
    monkeypatch.setattr(ingest, "NORMALISE_BATCH", 64)

    def go(source: Path, out: Path, run_id: str, workers: int) -> dict[str, Any]:
        with disable_run_logger():
            return ingest.ingest_flow.fn(PipelineSettings(source=str(source), out_dir=str(out), workers=workers),
                                         run_id)

    return go


def _dataset(out: Path, name: str) -> pd.DataFrame:
    frame = datasets.read_dataset(out, name).drop(columns=["ingested_at"], errors="ignore")
    key = "posting_id" if name == "postings" else "record_key"
    return frame.sort_values(key).reset_index(drop=True)


def test_ingest_flow_with_two_workers_equals_one_process(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    """Generated ads (with repeats), broken lines and an incremental second run: the same datasets and counts."""
    ads = _generated(tmp_path / "ads.jsonl", 700, seed=3)
    lines = ads.read_text(encoding="utf-8").splitlines()
    first = lines[:500] + ["{not json", json.dumps({"id": "short", "description": "too short"})]
    second = lines[500:] + [lines[10], json.dumps({"id": "nodate", "description": "A long enough text " * 3})]
    results: dict[int, list[dict[str, Any]]] = {}
    for workers in (1, 2):
        src = tmp_path / f"src-{workers}" / "ads.jsonl"
        src.parent.mkdir()
        src.write_text("\n".join(first) + "\n", encoding="utf-8")
        out = tmp_path / f"out-{workers}"
        results[workers] = [run(src, out, "r1", workers)]
        with src.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(second) + "\n")
        results[workers].append(run(src, out, "r2", workers))
    assert results[1] == results[2]
    assert results[1][0]["counts"]["read"] == 502 and results[1][1]["counts"]["read"] == 202
    assert results[1][0]["counts"]["quarantined"] == 2 and results[1][1]["counts"]["duplicates"] >= 1
    for name in ("postings", "quarantine"):
        pd.testing.assert_frame_equal(_dataset(tmp_path / "out-1", name), _dataset(tmp_path / "out-2", name))
    counts = [r["counts"] for r in results[1]]
    # every record kept or duplicate is a row, except the second run's repeat of gen-0000010 (replaced)
    assert len(_dataset(tmp_path / "out-1", "postings")) == sum(c["kept"] + c["duplicates"] for c in counts) - 1


def test_write_month_with_the_staged_sketches_equals_sketching_the_texts(tmp_path: Path) -> None:
    """Sketches computed when records are normalised (staged per month) give the partitions computed from texts."""
    lines = _generated(tmp_path / "ads.jsonl", 400, seed=5).read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:250]) + "\n", encoding="utf-8")
    first = ingest.stage(load_sources(str(tmp_path / "a.jsonl")), (), "r1", tmp_path / "s1", now=NOW, batch_rows=40)
    (tmp_path / "a.jsonl").write_text("\n".join(lines[200:]) + "\n", encoding="utf-8")  # 50 again, 150 new
    second = ingest.stage(load_sources(str(tmp_path / "a.jsonl")), (), "r2", tmp_path / "s2", now=NOW, batch_rows=40)
    month = max(first.months, key=lambda m: first.month_rows[m])
    staged = ingest.read_staged(first.months[month], datasets.POSTINGS)
    stored = np.fromfile(first.sketches[month], dtype="<u4").reshape(-1, 64)
    assert len(stored) == staged.num_rows == first.month_rows[month]
    assert all(np.array_equal(stored[i], sketch(t, x)) for i, (t, x) in enumerate(
        zip(staged["title"].to_pylist(), staged["text"].to_pylist(), strict=True)))
    written = {}
    for how in ("texts", "staged"):
        out = tmp_path / how
        for run in (first, second):
            for m in run.months:
                ingest.write_month(out, m, run.months[m], merge=True, row_group_rows=16,
                                   sketches=run.sketches[m] if how == "staged" else None)
        written[how] = {m: pq.read_table(datasets.partition_file(out, "postings", m)) for m in first.months}
    assert written["texts"].keys() == written["staged"].keys()
    for m, table in written["texts"].items():
        assert table.equals(written["staged"][m]), m
    assert sum(t["duplicate_kind"].null_count < t.num_rows for t in written["texts"].values()) >= 1


def test_ingest_workers_setting() -> None:
    assert ingest.ingest_workers(1) == 1 and ingest.ingest_workers(3) == 3
    assert 1 <= ingest.ingest_workers(0) <= 2
