"""The whole pipeline: ingest → extract → aggregate → report, recorded in runs/."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from extractors.mentions import MODEL_VERSION
from flows import __version__, datasets, progress, storage
from flows.aggregate import aggregate_flow
from flows.checks import preflight
from flows.extract import extract_flow
from flows.ingest import ingest_flow
from flows.lock import output_lock
from flows.report import report_flow
from flows.reporting import rollup
from flows.settings import PipelineSettings, new_run_id
from taxonomy.load import load_taxonomy

TOP_IN_SUMMARY = 10


def top_competences(out_dir: storage.Location, months: list[str], n: int = TOP_IN_SUMMARY) -> pd.DataFrame:
    """The competences most asked for over `months`, by share of postings."""
    frames = [datasets.read_partition(out_dir, "demand", m) for m in months]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["framework", "competence_id", "label", "postings_with", "share"])
    demand = pd.concat(frames, ignore_index=True)
    comps = rollup(demand, "competence", ["framework", "competence_id"])
    labels = (
        demand.dropna(subset=["competence_id"]).drop_duplicates("competence_id").set_index("competence_id")["label"]
    )
    comps["label"] = comps["competence_id"].map(labels)
    comps = comps.sort_values(["postings_with", "competence_id"], ascending=[False, True]).head(n)
    return comps[["framework", "competence_id", "label", "postings_with", "share"]].reset_index(drop=True)


def _run_row(
    run_id: str,
    settings: PipelineSettings,
    started: datetime,
    status: str,
    counts: dict[str, int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    kept, dups = counts.get("kept", 0), counts.get("duplicates", 0)
    return {
        "run_id": run_id,
        "status": status,
        "started_at": started,
        "finished_at": None if status == "running" else datetime.now(UTC),
        "sources": settings.source or "bundled sample",
        "months": ",".join(extra.get("months", [])),
        "read": counts.get("read", 0),
        "kept": kept,
        "duplicates": dups,
        "quarantined": counts.get("quarantined", 0),
        "out_of_range": counts.get("out_of_range", 0),
        "duplicate_rate": dups / (kept + dups) if kept + dups else 0.0,
        "mentions": extra.get("mentions", 0),
        "demand_rows": extra.get("demand_rows", 0),
        "taxonomy_version": extra.get("taxonomy_version", ""),
        "model_version": MODEL_VERSION,
        "skillpulse_version": __version__,
        "error": extra.get("error"),
        **{f"seconds_{k}": v for k, v in extra.get("seconds", {}).items()},
    }


@flow(name="pipeline")
def pipeline_flow(settings: PipelineSettings | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Run every stage over the configured sources and record the run in runs/."""
    logger = get_run_logger()
    settings = settings or PipelineSettings()
    run_id = run_id or new_run_id()
    root = storage.root(settings.out_dir)
    preflight(settings)
    taxonomy = load_taxonomy(settings.taxonomy)
    with output_lock(root, run_id):
        return _run_stages(settings, run_id, root, taxonomy.version, logger)


def _run_stages(
    settings: PipelineSettings, run_id: str, root: storage.Location, taxonomy_version: str, logger: Any
) -> dict[str, Any]:
    started = datetime.now(UTC)
    extra: dict[str, Any] = {"taxonomy_version": taxonomy_version, "seconds": {}}
    counts: dict[str, int] = {}
    datasets.write_run(root, _run_row(run_id, settings, started, "running", counts, extra))
    try:
        t0 = time.perf_counter()
        datasets.remove_leftovers(root)
        ingested = ingest_flow(settings, run_id)
        counts = ingested["counts"]
        # the months this run ingested, and any month a killed run left unfinished
        months = sorted(set(ingested["months"]) | set(datasets.stale_months(root)))
        if settings.months:
            months = [m for m in months if m in settings.months]
        extra["months"] = months
        extra["seconds"]["ingest"] = time.perf_counter() - t0
        stages = (
            ("extract", extract_flow, "mentions"),
            ("aggregate", aggregate_flow, "demand_rows"),
            ("report", report_flow, None),
        )
        pages: list[str] = []
        for name, stage, key in stages:
            t0 = time.perf_counter()
            result = stage(settings, run_id, months=months) if months else {"pages": []}
            extra["seconds"][name] = time.perf_counter() - t0
            if name == "extract":
                extra["extract_startup"] = result.get("startup_seconds")
            if key:
                extra[key] = result.get(key, 0)
            pages = result.get("pages", pages)
    except BaseException as exc:
        extra["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        datasets.write_run(root, _run_row(run_id, settings, started, "failed", counts, extra))
        raise
    final = _run_row(run_id, settings, started, "succeeded", counts, extra)
    datasets.write_run(root, final)
    top = top_competences(root, months)
    summary = {
        "run_id": run_id,
        "out_dir": str(root.resolve()),
        "months": months,
        "counts": counts,
        "mentions": extra.get("mentions", 0),
        "extract_startup_seconds": extra.get("extract_startup"),
        "reports": pages,
        "duplicate_rate": final["duplicate_rate"],
        "taxonomy_version": taxonomy_version,
        "top_competences": top.to_dict("records"),
    }
    progress.publish_table(
        key="skillpulse-run-summary",
        table=[
            {"metric": k, "value": str(v)}
            for k, v in {
                **counts,
                "mentions": summary["mentions"],
                "months": ", ".join(months),
                "duplicate_rate": f"{summary['duplicate_rate']:.3f}",
                "top_competences": "; ".join(top["label"].head(5)),
            }.items()
        ],
        description=f"skillpulse run {run_id}",
    )
    logger.info("Run %s finished: %s", run_id, counts)
    return summary
