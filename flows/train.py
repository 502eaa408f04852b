"""Train: the competence classifier or the linker's re-ranker, as a Prefect flow.

`skillpulse train` calls the same functions directly (no Prefect start-up for a one-off
training); this flow is for a deployment (`train-manual` in prefect.yaml) that retrains
on a schedule or on demand and leaves the model card's figures as an artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.errors import SettingsError
from flows import progress

MODELS = ("competences", "linker")


def train_model(model: str, shared_dir: str | Path | None, output: str | Path | None = None, evaluate: bool = True,
                config: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """Fit `model` ('competences' or 'linker') with its fixed seed, save it (skops) and its card; (card, path).

    Backs both `skillpulse train` and the train flow.
    """
    if model not in MODELS:
        raise SettingsError(f"[S021] model {model!r}: use one of {', '.join(MODELS)}")
    shared = Path(shared_dir) if shared_dir and Path(shared_dir).is_dir() else None
    if model == "competences":
        from extractors.classifier import MODEL_PATH, train_competence_classifier

        path = Path(output or MODEL_PATH)
        return train_competence_classifier(shared, path, config), path
    from flows.evaluate import train_linker
    from flows.link import DEFAULT_MODEL

    if shared is None:
        raise SettingsError(f"[S020] the linker trains on the shared data: folder {str(shared_dir)!r} not found")
    path = Path(output or DEFAULT_MODEL)
    return train_linker(shared, path, config, evaluate=evaluate), path


@task(name="train-model", cache_policy=NO_CACHE)
def train_task(model: str, shared_dir: str | None, output: str | None, evaluate: bool,
               config: dict[str, Any] | None) -> dict[str, Any]:
    """Fit one model with its fixed seed, save it (skops) and its card; return the card."""
    return train_model(model, shared_dir, output, evaluate, config)[0]


@flow(name="train")
def train_flow(model: str = "competences", shared_dir: str | None = "../shared", output: str | None = None,
               evaluate: bool = True, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Retrain `model` ('competences' or 'linker') reproducibly; publish the card's summary as an artifact."""
    if model not in MODELS:  # before the task starts: one clear error
        raise SettingsError(f"[S021] model {model!r}: use one of {', '.join(MODELS)}")
    progress.report("train", f"training the {model} model")
    card = train_task(model, shared_dir, output, evaluate, config)
    summary = {
        "model": model,
        "sha256": str(card.get("sha256", ""))[:16],
        "bytes": card.get("bytes"),
        "train_seconds": card.get("train_seconds"),
        "seed": (card.get("config") or {}).get("seed"),
    }
    progress.publish_table(key=f"skillpulse-train-{model}", table=[summary],
                           description=f"Model trained by the train flow ({model}); the full card is beside the model")
    get_run_logger().info("Trained %s: %s", model, summary)
    return card
