"""`skillpulse serve`: run the prefect.yaml schedules on this machine.

Scheduling needs a real Prefect server (a temporary one refuses schedules). When
PREFECT_API_URL is set, serve attaches to that server; otherwise it starts
`prefect server start` on 127.0.0.1 (SQLite, in PREFECT_HOME) and stops it on exit.
The deployments are read from prefect.yaml, so `prefect deploy` and `skillpulse
serve` run the same flows on the same schedules.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from extractors.errors import SettingsError

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
SERVER_START_TIMEOUT = 180


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    timezone: str | None = None


def deployment_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments declared in prefect.yaml (safe YAML loader)."""
    if not path.is_file():
        raise SettingsError(f"[P001] {path} not found: serve reads its deployments from prefect.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    specs = []
    for item in doc.get("deployments", []):
        schedule = (item.get("schedules") or [{}])[0]
        specs.append(DeploymentSpec(name=item["name"], entrypoint=item["entrypoint"],
                                    parameters=dict(item.get("parameters") or {}),
                                    cron=schedule.get("cron"), timezone=schedule.get("timezone")))
    return specs


def load_flow(entrypoint: str) -> Any:
    """Import ``flows/ingest.py:ingest_flow`` as a Flow object."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def build_deployments(specs: list[DeploymentSpec], settings: dict[str, Any]) -> list[Any]:
    """Runner deployments for `specs`, with `settings` overriding their settings parameter."""
    from prefect.schedules import Cron

    deployments = []
    for spec in specs:
        params = dict(spec.parameters)
        if "settings" in params:  # pipeline flows; train takes its own parameters
            params["settings"] = {**(params.get("settings") or {}), **settings}
        schedule = Cron(spec.cron, timezone=spec.timezone) if spec.cron else None
        deployments.append(load_flow(spec.entrypoint).to_deployment(
            name=spec.name, parameters=params, schedule=schedule))
    return deployments


def start_server(port: int = 4200) -> tuple[subprocess.Popen[bytes], str]:
    """Start `prefect server start` on 127.0.0.1 and wait until it is healthy."""
    url = f"http://127.0.0.1:{port}/api"
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SettingsError(f"[P002] the Prefect server exited with status {proc.returncode}; "
                                f"is port {port} free? (or set PREFECT_API_URL to attach to a server)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise SettingsError(f"[P002] the Prefect server did not answer on {url} within {SERVER_START_TIMEOUT} s")
