"""The pipeline's per-month tasks on a local Dask cluster (prefect-dask) give the local run's datasets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows import datasets
from flows.cli import app
from flows.settings import PipelineSettings

PROVENANCE = ["run_id", "ingested_at"]


def _snapshot(root: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("postings", "mentions", "demand"):
        frame = datasets.read_dataset(root, name)
        frame = frame.drop(columns=[c for c in PROVENANCE if c in frame])
        out[name] = frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pipeline_on_a_local_dask_cluster_equals_the_local_run(sample_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("prefect_dask")
    from flows.pipeline import pipeline_flow

    root, summary = sample_run
    out = tmp_path / "dask-out"
    dask_summary = pipeline_flow(PipelineSettings(out_dir=str(out), runner="dask"))
    assert dask_summary["months"] == summary["months"]
    assert dask_summary["mentions"] == summary["mentions"] > 0
    local, dask = _snapshot(root), _snapshot(out)
    for name in ("postings", "mentions", "demand"):
        assert len(dask[name]) > 0, name
        pd.testing.assert_frame_equal(dask[name], local[name], obj=name)


def test_dask_address_without_the_dask_runner_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["extract", "--out", str(tmp_path), "--dask-address", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    assert "--dask-address needs --runner dask" in result.output
    assert "Traceback" not in result.output


def test_unknown_runner_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["aggregate", "--out", str(tmp_path), "--runner", "spark"])
    assert result.exit_code == 2
    assert "invalid setting runner" in result.output


def test_dask_runner_without_the_extra_installed_exits_2(tmp_path: Path) -> None:
    # a Python where prefect_dask cannot be imported (as without the [dask] extra)
    code = (
        "import sys; sys.modules['prefect_dask'] = None\n"
        "from flows.cli import main\n"
        f"sys.argv = ['skillpulse', 'run', '--out', {str(tmp_path)!r}, '--runner', 'dask']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--runner dask needs prefect-dask and distributed" in proc.stderr
    assert "install the 'dask' extra" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
