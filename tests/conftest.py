"""Shared fixtures: the toy taxonomy and ads, shared data paths, a Prefect harness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.settings import configure_environment

configure_environment()

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(os.environ.get("SKILLPULSE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def toy_taxonomy_dir() -> Path:
    """A 8-concept taxonomy in the documented folder format."""
    return FIXTURES / "toy_taxonomy"


@pytest.fixture(scope="session")
def toy_taxonomy(toy_taxonomy_dir: Path):  # type: ignore[no-untyped-def]
    from taxonomy.load import load_taxonomy

    return load_taxonomy(str(toy_taxonomy_dir))


@pytest.fixture(scope="session")
def toy_ads() -> Path:
    """Ten toy ads: five good (one exact duplicate), five broken in different ways."""
    return FIXTURES / "toy_ads.jsonl"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (requested by flow tests only)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sample_run(prefect_harness, tmp_path_factory):  # type: ignore[no-untyped-def]
    """`skillpulse run`'s pipeline flow on the bundled sample ads: (output root, summary)."""
    from flows.pipeline import pipeline_flow
    from flows.settings import PipelineSettings

    root = tmp_path_factory.mktemp("sample-run") / "skillpulse-data"
    summary = pipeline_flow(PipelineSettings(out_dir=str(root)))
    return root, summary


@pytest.fixture
def ingest_bodies(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """flows.ingest with its tasks replaced by their bodies (no Prefect server needed); yields the module."""
    from prefect import Task

    from flows import ingest

    for name, obj in list(vars(ingest).items()):
        if isinstance(obj, Task):
            monkeypatch.setattr(ingest, name, obj.fn)
    return ingest
