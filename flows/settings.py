"""Settings: pydantic models that are the flows' parameters, and environment defaults.

This is the only module that reads or sets environment variables.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.datasets import check_month

PREFECT_DEFAULTS = {
    # A temporary Prefect server starts in a subprocess when no server is set; on a
    # busy two-core machine it needs more than the default 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class PipelineSettings(BaseModel):
    """Parameters of every skillpulse flow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = Field(
        default=None,
        description="sources file (YAML/TOML) or one JSONL/CSV/Parquet file; the bundled sample when empty",
    )
    out_dir: str = Field(
        default="skillpulse-data",
        description="output root: a folder, or an fsspec URL (memory://, s3:// with s3fs, gs:// with gcsfs)",
    )
    taxonomy: str = Field(default="builtin", description="builtin, esco:DIR, a taxonomy folder or a concepts CSV")
    months: tuple[str, ...] = Field(default=(), description="restrict to these months (YYYY-MM); all when empty")
    batch_size: int = Field(default=256, ge=1, le=100_000, description="ads per spaCy batch")
    report_lang: Literal["en", "ru", "uk", "ro"] = "en"
    full_refresh: bool = Field(
        default=False,
        description="ignore the watermarks: read every source whole and replace (not merge) the months written",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="ingest and extract processes; 0 = automatic (on 2+ cores: ingest 2 past its first 1,000 records, "
        "extract 2 for 50,000+ ads; else 1)",
    )
    runner: Literal["local", "dask"] = Field(
        default="local", description="where per-month tasks run: this process, or a Dask cluster (prefect-dask)"
    )
    dask_address: str | None = Field(
        default=None, description="scheduler of an existing Dask cluster (tcp://host:8786); none = a local cluster"
    )

    @field_validator("months")
    @classmethod
    def _months(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({check_month(m) for m in value}))


# glibc malloc arenas of a skillpulse process. glibc's default (8 per core) lets the threads
# of Prefect's engine and of the process pools each grow an arena of their own: in a
# 300,000-ad pipeline run the command's process grew by ~300 MiB during extract with the
# default and stayed flat with 2 (benchmarks/README.md). MALLOC_ARENA_MAX, when set, wins.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap this process's glibc malloc arenas (no-op where libc is not glibc); True when set."""
    import ctypes
    import ctypes.util

    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # glibc read the user's setting at start-up
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(_M_ARENA_MAX, arenas))
    except OSError:
        return False


def configure_environment(verbose: bool = False) -> None:
    """Set Prefect defaults unless the user set them, and cap malloc arenas; call before importing prefect."""
    limit_malloc_arenas()
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not verbose:
        # The command line reports errors itself, in one line; Prefect's own console
        # logs (with tracebacks) appear with --verbose.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def prefect_server_configured() -> bool:
    """Whether flows talk to a running Prefect server (PREFECT_API_URL), not a temporary one."""
    return bool(os.environ.get("PREFECT_API_URL"))


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
