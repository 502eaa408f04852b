"""Checks that run before any flow starts (no Prefect import here, so they are fast)."""

from __future__ import annotations

from extractors.errors import SettingsError
from flows import datasets, storage
from flows.settings import PipelineSettings
from flows.sources import check_source, load_sources
from taxonomy.load import load_taxonomy


def preflight(settings: PipelineSettings, *, need_taxonomy: bool = True) -> None:
    """Fail fast on a missing source, a bad taxonomy or an unwritable output folder.

    Raises:
        SkillpulseError: naming the path and the problem.
    """
    for source in load_sources(settings.source):
        check_source(source)
    if need_taxonomy:
        load_taxonomy(settings.taxonomy)
    datasets.ensure_writable(storage.root(settings.out_dir))
    if settings.runner == "dask" and settings.out_dir.startswith("memory://"):
        raise SettingsError(f"[O004] --runner dask cannot write to {settings.out_dir}: a memory:// root lives in one "
                            "process; use a folder, s3:// or gs://")
