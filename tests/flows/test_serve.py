from __future__ import annotations

from prefect.flows import Flow

from flows.serve import build_deployments, deployment_specs, load_flow


def test_serve_prefect_yaml_declares_the_schedules() -> None:
    specs = {s.name: s for s in deployment_specs()}
    assert specs["ingest-daily"].cron == "0 2 * * *" and specs["extract-daily"].cron == "0 3 * * *"
    assert specs["aggregate-monthly"].cron == "0 5 1 * *" and specs["report-monthly"].cron == "0 6 1 * *"
    assert specs["pipeline-manual"].cron is None
    assert specs["train-manual"].cron is None and specs["train-manual"].parameters["model"] == "competences"
    for spec in specs.values():
        assert isinstance(load_flow(spec.entrypoint), Flow), spec.entrypoint
        if spec.name != "train-manual":
            assert spec.parameters["settings"]["taxonomy"] == "builtin"


def test_serve_builds_runner_deployments_with_overrides() -> None:
    deployments = build_deployments(deployment_specs(), {"out_dir": "/data/skillpulse", "source": "/etc/sources.yaml"})
    by_name = {d.name: d for d in deployments}
    ingest = by_name["ingest-daily"]
    assert ingest.parameters["settings"] == {
        "source": "/etc/sources.yaml",
        "out_dir": "/data/skillpulse",
        "taxonomy": "builtin",
    }
    assert ingest.schedules[0].schedule.cron == "0 2 * * *"
    assert ingest.schedules[0].schedule.timezone == "Europe/Kyiv"
    assert not by_name["pipeline-manual"].schedules
    assert by_name["train-manual"].parameters == {"model": "competences", "shared_dir": "../shared"}
