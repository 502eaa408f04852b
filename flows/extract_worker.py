"""The extract worker processes: their unit of work, and the pipelines they start with.

Extract pools use multiprocessing's 'forkserver' start method: a fresh interpreter (not
a fork of the Prefect process, so none of its threads or sockets) is started once and
every worker is forked from it. `flows.extract` names this module as the forkserver's
preload and puts the wanted pipelines in the ``SKILLPULSE_PRELOAD`` environment variable
(JSON: ``{"taxonomy": spec, "languages": [...]}``) while the forkserver starts, so the
forkserver builds those pipelines once, at import, and the workers share them
copy-on-write instead of each building its own. The module imports no Prefect.

Imported anywhere else (or with the variable unset) it builds nothing. When the preload
fails, the workers build their pipelines themselves and report any error then.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from typing import Any

import pyarrow as pa

from extractors.mentions import MODEL_VERSION, SORT_KEYS
from extractors.nlp import mention_table as mention_table_of
from extractors.nlp import warm_up
from flows import datasets

PRELOAD_ENV = "SKILLPULSE_PRELOAD"
__all__ = ["SORT_KEYS", "mention_table", "preload_spec", "state"]
preloaded: dict[str, Any] = {}


def mention_table(postings: list[tuple[str, str, str]], taxonomy_spec: str, taxonomy_version: str,
                  batch_size: int, run_id: str) -> pa.Table:
    """Mention rows of (posting_id, text, language) triples, sorted, as an Arrow table of MENTIONS.

    Sorted by posting_id, start_char, concept_id, competence_id (stable), so chunks of a
    month in posting_id order concatenate to the month sorted whole.
    """
    constants = {"taxonomy_version": taxonomy_version, "model_version": MODEL_VERSION, "run_id": run_id}
    return mention_table_of(postings, taxonomy_spec, batch_size, datasets.MENTIONS, constants, sort=True)


def state(hold_seconds: float = 0.0) -> dict[str, Any]:
    """This worker's pid, parent pid, what it was preloaded with and how many pipelines it holds (for tests)."""
    import time

    from extractors.nlp import get_nlp

    time.sleep(hold_seconds)
    return {"pid": os.getpid(), "ppid": os.getppid(), "preloaded": dict(preloaded),
            "pipelines": get_nlp.cache_info().currsize, "prefect": "prefect" in sys.modules}


def preload_spec(taxonomy_spec: str, languages: list[str]) -> str:
    """The value of SKILLPULSE_PRELOAD for these pipelines."""
    return json.dumps({"taxonomy": taxonomy_spec, "languages": sorted(languages)})


def _preload() -> None:
    raw = os.environ.get(PRELOAD_ENV)
    if not raw:
        return
    try:
        spec = json.loads(raw)
        warm_up(list(spec["languages"]), str(spec["taxonomy"]))
    except Exception as exc:  # noqa: BLE001 - the workers build the pipelines and raise the error themselves
        preloaded["error"] = f"{type(exc).__name__}: {exc}"
        return
    preloaded.update(spec)
    # keep the collector off the preloaded objects: collecting would touch their pages and
    # make every worker copy them
    gc.collect()
    gc.freeze()


_preload()
