"""The train flow: a real Prefect run that retrains the competence classifier and leaves an artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.classifier import load_classifier
from extractors.errors import SettingsError
from flows.train import train_flow

pytestmark = pytest.mark.slow


def test_train_flow_retrains_the_competence_classifier(prefect_harness, tmp_path: Path) -> None:  # noqa: ARG001
    from prefect.artifacts import Artifact

    output = tmp_path / "clf.skops"
    # no shared folder: the taxonomy and the bundled sample ads only (what a user's machine has)
    card = train_flow(model="competences", shared_dir=str(tmp_path / "no-shared"), output=str(output))
    assert output.is_file() and card["training_data"]["used_shared_folder"] is False
    on_disk = json.loads(output.with_suffix(".card.json").read_text(encoding="utf-8"))
    assert on_disk["sha256"] == card["sha256"] and on_disk["config"]["seed"] == card["config"]["seed"]

    clf = load_classifier(str(output))  # through the skops allowlist
    assert len(clf.labels) == 62 and "digcomp:1.3" in clf.labels and "ecf:B.1" in clf.labels
    probs = clf.predict_proba(["advanced excel spreadsheet skill and pivot table"])[0]
    assert clf.labels[int(probs.argmax())] == "digcomp:1.3", dict(zip(clf.labels, probs.round(2), strict=True))

    artifact = Artifact.get("skillpulse-train-competences")
    assert artifact is not None
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert rows[0]["model"] == "competences" and rows[0]["sha256"] == card["sha256"][:16]


def test_train_flow_refuses_an_unknown_model(prefect_harness) -> None:  # noqa: ARG001
    with pytest.raises(SettingsError, match=r"\[S021\] model 'bert'"):
        train_flow(model="bert")
