"""A whole run written to a non-local output root (fsspec's memory://) and read back."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from openpyxl import load_workbook

from flows import datasets, storage
from flows.lock import LOCK_NAME, OutputLockedError, output_lock
from flows.settings import PipelineSettings

PROVENANCE = ["run_id", "ingested_at"]
DATASETS = ("postings", "mentions", "demand", "quarantine")
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh memory:// output root, removed afterwards."""
    bucket = f"skillpulse-{uuid.uuid4().hex[:8]}"
    yield f"memory://{bucket}/run"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in PROVENANCE if c in frame])
    for key in ("month", "source"):  # the partition column: categorical from pandas, string from read_dataset
        if key in frame and isinstance(frame[key].dtype, pd.CategoricalDtype):
            frame[key] = frame[key].astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.slow
def test_a_run_to_memory_gives_the_local_runs_datasets_and_reports(prefect_harness, memory_root: str,
                                                                   tmp_path: Path) -> None:
    from flows.pipeline import pipeline_flow

    # a local run of its own (the session's sample run is re-run by other tests, which rewrites
    # some months' headline figures with the re-run's counts)
    local = tmp_path / "local"
    local_summary = pipeline_flow(PipelineSettings(out_dir=str(local)))
    summary = pipeline_flow(PipelineSettings(out_dir=memory_root))
    root = storage.root(memory_root)
    assert summary["out_dir"] == str(root) == memory_root.replace("memory://", "memory:///")
    assert summary["counts"] == local_summary["counts"] and summary["months"] == local_summary["months"]

    for name in DATASETS:
        remote = _comparable(datasets.read_dataset(memory_root, name))
        assert len(remote) > 0, name
        pd.testing.assert_frame_equal(remote, _comparable(datasets.read_dataset(local, name)), obj=name)
        by_pandas = _comparable(pd.read_parquet(f"{memory_root}/{name}"))
        pd.testing.assert_frame_equal(by_pandas, _comparable(pd.read_parquet(local / name)), obj=f"pandas {name}")

    runs = datasets.read_dataset(memory_root, "runs")
    assert runs["run_id"].tolist() == [summary["run_id"]]
    assert runs["status"].tolist() == ["succeeded"] and runs["read"].tolist() == [summary["counts"]["read"]]

    months = [p.name for p in storage.dirs(root / "reports")]
    assert months == sorted(p.name for p in (local / "reports").iterdir()) == summary["months"]
    for month in months:
        folder, local_folder = root / "reports" / month, local / "reports" / month
        names = [p.name for p in storage.listdir(folder)]
        assert names == sorted(p.name for p in local_folder.iterdir()) and "index.html" in names
        for name in names:
            data = (folder / name).read_bytes()
            if name.endswith((".html", ".csv")):
                remote_text = RUN_ID.sub("RUN", data.decode("utf-8"))
                assert remote_text == RUN_ID.sub("RUN", (local_folder / name).read_bytes().decode("utf-8")), name
        book = load_workbook(io.BytesIO((folder / "report.xlsx").read_bytes()))
        assert book.sheetnames == load_workbook(local_folder / "report.xlsx").sheetnames
    assert summary["reports"] == [f"{root}/reports/{m}/index.html" for m in months]

    fs = fsspec.filesystem("memory")
    left = fs.find(root.path, withdirs=True)
    assert not [p for p in left if p.endswith(".tmp") or ".staging" in p or p.endswith(".skillpulse.lock")]
    assert any(p.endswith(".json") for p in left if "/state/watermarks/" in p)
    scratch = storage.scratch_dir(root)
    assert not scratch.exists()  # ingest staged on the local disk, and cleared it

    # incremental: the watermarks and the files' modification times on memory:// say nothing is new
    again = pipeline_flow(PipelineSettings(out_dir=memory_root))
    assert again["counts"]["read"] == 0 and again["months"] == []
    assert datasets.stale_months(memory_root) == []
    assert len(datasets.read_dataset(memory_root, "runs")) == 2


@pytest.mark.slow
def test_stage_flows_share_a_memory_root(prefect_harness, memory_root: str, toy_ads: Path,
                                         toy_taxonomy_dir: Path) -> None:
    from flows.aggregate import aggregate_flow
    from flows.extract import extract_flow
    from flows.ingest import ingest_flow
    from flows.report import report_flow

    settings = PipelineSettings(source=str(toy_ads), taxonomy=str(toy_taxonomy_dir), out_dir=memory_root)
    ingested = ingest_flow(settings)
    assert ingested["counts"] == {"read": 10, "kept": 4, "duplicates": 1, "quarantined": 5, "out_of_range": 0}
    assert extract_flow(settings)["mentions"] > 0
    assert aggregate_flow(settings)["demand_rows"] > 0
    pages = report_flow(settings)["pages"]
    assert pages and all(p.startswith("memory:///") for p in pages)
    html = storage.root(pages[0]).read_text()
    assert "<html" in html
    demand = datasets.read_dataset(memory_root, "demand")
    assert set(demand["month"]) == set(ingested["months"])


def _skillpulse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_cli_run_to_a_memory_url(tmp_path: Path, toy_ads: Path, toy_taxonomy_dir: Path) -> None:
    result = _skillpulse("run", "--source", str(toy_ads), "--taxonomy", str(toy_taxonomy_dir),
                         "--out", "memory://cli-bucket/run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Output in memory:///cli-bucket/run" in result.stdout
    assert "│   10 │    4 │          1 │           5 │" in result.stdout
    assert not (tmp_path / "memory:").exists()  # not a local folder named like the URL


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("nosuch://bucket/run", "[O003] Output root nosuch://bucket/run: Protocol not known: nosuch"),
        ("gs://bucket/run", "[O003] Output root gs://bucket/run needs a package that is not installed"),
    ],
)
def test_cli_unusable_output_url_exits_2(tmp_path: Path, toy_ads: Path, out: str, message: str) -> None:
    if out.startswith("gs:") and importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed")
    result = _skillpulse("run", "--source", str(toy_ads), "--out", out, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_lock_on_a_memory_root(memory_root: str) -> None:
    lock = storage.root(memory_root) / LOCK_NAME
    with output_lock(memory_root, "a"):
        with output_lock(memory_root, "a"):  # re-entrant in one process
            assert json.loads(lock.read_text())["run_id"] == "a"
    assert not lock.exists()
    storage.makedirs(lock.parent)
    lock.write_text(json.dumps({"pid": 1, "host": socket.gethostname() + "-elsewhere", "run_id": "x"}))
    with pytest.raises(OutputLockedError, match=r"^\[L001\] memory:///skillpulse-\w+/run is in use by run x"):
        with output_lock(memory_root, "mine"):
            pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "run_id": "killed"}))
    with output_lock(memory_root, "mine"):  # a lock of a dead process on this host is taken over
        assert json.loads(lock.read_text())["run_id"] == "mine"
    assert not lock.exists()


def test_the_dask_runner_cannot_write_to_memory(memory_root: str) -> None:
    from extractors.errors import SettingsError
    from flows.checks import preflight

    settings = PipelineSettings(out_dir=memory_root, runner="dask")
    with pytest.raises(SettingsError, match=r"^\[O004\] --runner dask cannot write to memory://"):
        preflight(settings, need_taxonomy=False)
