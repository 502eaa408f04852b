"""Checks that run before any flow starts (no Prefect import here, so they are fast)."""

from __future__ import annotations

from pathlib import Path

from flows import datasets
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
    datasets.ensure_writable(Path(settings.out_dir))
