"""Extract over several processes gives exactly the datasets of one process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows import datasets, extract
from flows.settings import PipelineSettings

PROVENANCE = ["run_id", "ingested_at"]


def _frame(root: Path, name: str) -> pd.DataFrame:
    frame = datasets.read_dataset(root, name)
    return frame.drop(columns=[c for c in PROVENANCE if c in frame]).reset_index(drop=True)


def test_chunks_cover_every_item_in_order() -> None:
    items = list(range(2_345))
    parts = extract.chunks(items, 2)
    assert [x for part in parts for x in part] == items
    assert all(extract.CHUNK_MIN <= len(p) <= extract.CHUNK_MAX for p in parts[:-1])
    assert len(extract.chunks(list(range(50)), 2)) == 1


def test_automatic_workers_follow_the_amount_of_work() -> None:
    settings = PipelineSettings()
    assert extract.resolve_workers(settings, 10) == 1
    assert extract.resolve_workers(settings, 10**6) == (2 if (os.cpu_count() or 1) >= 2 else 1)
    assert extract.resolve_workers(settings.model_copy(update={"workers": 3}), 10) == 3
    assert extract.resolve_workers(settings.model_copy(update={"runner": "dask", "workers": 2}), 10**6) == 1


@pytest.mark.slow
def test_extract_flow_with_two_workers_writes_the_same_mentions(sample_run, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flows.extract import extract_flow

    root, summary = sample_run
    copy = tmp_path / "out"
    shutil.copytree(root, copy)
    for month in summary["months"]:
        datasets.delete_partition(copy, "mentions", month)
    monkeypatch.setattr(extract, "CHUNK_MIN", 5)  # several chunks per month even for the small sample
    assert len(extract.chunks(list(range(40)), 2)) > 1
    result = extract_flow(PipelineSettings(out_dir=str(copy), workers=2))
    assert result["workers"] == 2
    assert result["mentions"] == summary["mentions"]
    pd.testing.assert_frame_equal(_frame(copy, "mentions"), _frame(root, "mentions"))
