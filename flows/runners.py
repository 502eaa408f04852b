"""Where the per-month work runs: in order in this process, or as Prefect tasks on a Dask cluster.

``settings.runner == "dask"`` submits one Prefect task per month through prefect-dask's
``DaskTaskRunner``: to the scheduler at ``settings.dask_address`` when given, else to a
``LocalCluster`` on this machine. The tasks read and write the output folder, so on a
cluster of several machines it must be a shared path every worker sees at the same name.
"""

from __future__ import annotations

import os
from typing import Any

from extractors.errors import SettingsError
from flows import progress
from flows.settings import PipelineSettings, prefect_server_configured

DASK_EXTRA = "install the 'dask' extra of skillpulse (pip install prefect-dask distributed)"


def check_runner(settings: PipelineSettings) -> None:
    """Raise SettingsError (one line) when the runner cannot be used here."""
    if settings.runner != "dask":
        if settings.dask_address:
            raise SettingsError("[R002] --dask-address needs --runner dask")
        return
    try:
        import distributed  # noqa: F401
        import prefect_dask  # noqa: F401
    except ImportError as exc:
        raise SettingsError(f"[R001] --runner dask needs prefect-dask and distributed ({exc.name} is missing): "
                            f"{DASK_EXTRA}") from None
    address = settings.dask_address
    if address and "://" not in address:
        raise SettingsError(f"[R003] --dask-address must look like tcp://host:8786, got {address!r}")


def dask_task_runner(settings: PipelineSettings) -> Any:
    """A DaskTaskRunner for the settings: the given scheduler, or a local cluster.

    The local cluster uses worker processes only when a Prefect server is configured
    (PREFECT_API_URL): on the temporary server each worker process would start its own
    server (about 12 s each), so without one the workers are threads of this process.
    """
    check_runner(settings)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    if prefect_server_configured():
        workers = settings.workers or min(2, os.cpu_count() or 1)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    return DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 2, "processes": False})


def run_months(
    stage: str, task: Any, settings: PipelineSettings, months: list[str], run_id: str
) -> dict[str, Any]:
    """``task(settings, month, run_id)`` for each month, by month (inside a flow run).

    Local: one after another, with progress messages. Dask: all months submitted at once
    to the cluster, results collected in month order.
    """
    if settings.runner == "dask" and months:
        with dask_task_runner(settings) as runner:
            progress.report(stage, f"{len(months)} months on Dask ({settings.dask_address or 'local cluster'})")
            futures = [runner.submit(task, parameters={"settings": settings, "month": m, "run_id": run_id})
                       for m in months]
            return {m: f.result() for m, f in zip(months, futures, strict=True)}
    results: dict[str, Any] = {}
    for i, month in enumerate(months, 1):
        progress.report(stage, f"{month} ({i}/{len(months)} months)")
        results[month] = task(settings, month, run_id)
    return results

