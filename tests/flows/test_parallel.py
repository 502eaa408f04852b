"""Extract over several processes gives exactly the datasets of one process."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows import datasets, extract, extract_worker
from flows.settings import PipelineSettings

PROVENANCE = ["run_id", "ingested_at"]


def _frame(root: Path, name: str) -> pd.DataFrame:
    frame = datasets.read_dataset(root, name)
    return frame.drop(columns=[c for c in PROVENANCE if c in frame]).reset_index(drop=True)


def test_chunks_are_sized_for_the_workers() -> None:
    assert extract.chunk_size(2_345, 2) == 294  # about four chunks per worker
    assert extract.chunk_size(50, 2) == extract.CHUNK_MIN
    assert extract.chunk_size(10**6, 2) == extract.CHUNK_MAX
    assert extract.chunk_size(10**6, 1) == extract.SOLO_CHUNK


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver here")
def test_pool_workers_start_with_the_forkservers_pipelines() -> None:
    with extract.extract_pool(2, "builtin", ["en", "uk"]) as pool:
        assert pool is not None
        states = list(pool.map(extract_worker.state, [1.0, 1.0]))
    assert len({s["pid"] for s in states}) == 2  # two workers, forked from the one forkserver
    assert len({s["ppid"] for s in states}) == 1 and states[0]["ppid"] != os.getpid()
    for s in states:
        assert s["preloaded"] == {"taxonomy": "builtin", "languages": ["en", "uk"]}
        assert s["pipelines"] == 2  # built before any work, in the forkserver
        assert not s["prefect"]  # the workers never imported Prefect
    with pytest.raises(ProcessLookupError):  # the forkserver stopped with the pool: its memory is freed
        os.kill(states[0]["ppid"], 0)
    # other pipelines: the forkserver is started again with them
    with extract.extract_pool(2, "builtin", ["ro"]) as pool:
        again = pool.submit(extract_worker.state).result()
    assert again["preloaded"]["languages"] == ["ro"] and again["ppid"] != states[0]["ppid"]


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
    monkeypatch.setattr(extract, "IN_FLIGHT_PER_WORKER", 1)  # and more chunks than the pool holds at once
    assert extract.chunk_size(40, 2) == 5
    monkeypatch.setattr(extract, "RENEW_ADS", 1)  # fresh workers for every chunk after the first
    renewals = extract.renewals
    result = extract_flow(PipelineSettings(out_dir=str(copy), workers=2))
    assert result["workers"] == 2
    if extract.START_METHOD in multiprocessing.get_all_start_methods():
        assert extract.renewals - renewals > len(summary["months"])  # within months too, not only between
    assert result["mentions"] == summary["mentions"]
    pd.testing.assert_frame_equal(_frame(copy, "mentions"), _frame(root, "mentions"))
