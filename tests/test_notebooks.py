"""The researcher notebooks run top to bottom on the output of the sample run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_execute_on_the_sample_run(path: Path, sample_run, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = sample_run
    monkeypatch.setenv("SKILLPULSE_DATA", str(root))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(outputs) >= 4


def test_notebooks_exist() -> None:
    assert len(NOTEBOOKS) >= 2
