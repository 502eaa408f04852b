"""A tiny progress hook: flows say what they do, the command line shows it.

Flows run in the command's process, so a plain callback is enough; with no
reporter set (a deployment), messages only go to the log.
"""

from __future__ import annotations

from collections.abc import Callable

Reporter = Callable[[str, str], None]
_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter


def report(stage: str, message: str) -> None:
    if _reporter is not None:
        _reporter(stage, message)


def publish_table(key: str, table: list[dict[str, object]], description: str) -> None:
    """Publish a run's summary table as a Prefect artifact (only inside a flow run)."""
    from prefect.artifacts import create_table_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is not None:
        create_table_artifact(key=key, table=table, description=description)


def publish_month_counts(key: str, by_month: dict[str, object], column: str, description: str) -> None:
    """Publish a stage's per-month results ({month: value}) as a two-column table artifact."""
    publish_table(key=key, table=[{"month": m, column: v} for m, v in by_month.items()], description=description)
