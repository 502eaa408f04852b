"""Build, cache and load the skill pipeline for one ad language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import spacy
from spacy.language import Language
from spacy.util import load_config, load_model_from_config

import extractors.classifier  # noqa: F401  (registers the competence_classifier factory)
import extractors.spacy_components  # noqa: F401  (registers the factories)

if TYPE_CHECKING:
    import pyarrow as pa

CONFIG_PATH = Path(__file__).parent / "pipeline.cfg"
# Languages with a blank spaCy pipeline; Georgian, Belarusian and the rest use "xx".
SPACY_LANGS = frozenset({"en", "ru", "uk", "ro", "pl", "de", "fr"})


def spacy_lang(lang: str) -> str:
    """The spaCy language code used for an ad language.

    >>> spacy_lang("uk"), spacy_lang("ka"), spacy_lang("und")
    ('uk', 'xx', 'xx')
    """
    return lang if lang in SPACY_LANGS else "xx"


def build_nlp(lang: str, taxonomy_spec: str = "builtin") -> Language:
    """Build and initialise the pipeline from extractors/pipeline.cfg."""
    config = load_config(
        CONFIG_PATH,
        overrides={
            "nlp.lang": spacy_lang(lang),
            "components.skill_normalizer.lang": lang,
            "initialize.components.skill_matcher.labels.spec": taxonomy_spec,
        },
    )
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.initialize()
    return nlp


@lru_cache(maxsize=16)
def get_nlp(lang: str, taxonomy_spec: str, taxonomy_version: str) -> Language:
    """A cached pipeline per (language, taxonomy); the version key drops stale ones."""
    return build_nlp(lang, taxonomy_spec)


def load_nlp(path: Path) -> Language:
    """Load a pipeline written with ``nlp.to_disk``."""
    return spacy.load(path)


def mention_frame(postings: list[tuple[str, str, str]], taxonomy_spec: str, batch_size: int,
                  columns: list[str]) -> pd.DataFrame:
    """Mention rows of (posting_id, text, language) triples, as a frame with `columns`.

    The unit of work of an extract process: it imports no Prefect, builds (once per
    process) the pipelines it needs and returns plain rows, never Docs. The frame is
    what ``pd.DataFrame(list(extract_mentions(...)), columns=columns)`` gives (a column
    no row has is all NaN), built from one list per column.
    """
    import numpy

    from extractors.mentions import mention_columns
    from taxonomy.load import load_taxonomy

    taxonomy = load_taxonomy(taxonomy_spec)
    found = mention_columns(postings, taxonomy, taxonomy_spec, batch_size=batch_size).columns
    n = len(found["mention_id"])
    if not n:
        return pd.DataFrame([], columns=columns)
    return pd.DataFrame({name: found[name] if name in found else numpy.full(n, numpy.nan) for name in columns},
                        columns=columns)


def mention_table(postings: list[tuple[str, str, str]], taxonomy_spec: str, batch_size: int,
                  schema: pa.Schema, constants: dict[str, str] | None = None, sort: bool = False) -> pa.Table:
    """The rows of ``mention_frame`` as an Arrow table with `schema` (no pandas in between).

    Columns of `schema` that extract does not fill (taxonomy_version, model_version,
    run_id) take their value from `constants`, else are nulls. With `sort`, rows are in
    ``extractors.mentions.SORT_KEYS`` order (a stable sort). A non-nullable field with a
    null raises ValueError, as ``pa.Table.from_pandas`` does.
    """
    from extractors.mentions import mention_columns
    from taxonomy.load import load_taxonomy

    taxonomy = load_taxonomy(taxonomy_spec)
    return mention_columns(postings, taxonomy, taxonomy_spec, batch_size=batch_size).table(schema, constants, sort)


def warm_up(languages: list[str], taxonomy_spec: str, hold_seconds: float = 0.0, disable: tuple = ()) -> int:
    """Build the pipelines of `languages` in this process (a pool worker's start-up); returns its pid.

    `disable` names components to switch off in this process's cached pipelines (benchmarks
    measure the pipeline with and without one).
    """
    import os
    import time

    from taxonomy.load import load_taxonomy

    version = load_taxonomy(taxonomy_spec).version
    for lang in languages:
        nlp = get_nlp(lang, taxonomy_spec, version)
        for name in disable:
            if name in nlp.pipe_names:
                nlp.disable_pipe(name)
        if "competence_classifier" in nlp.pipe_names and "competence_classifier" not in disable:
            nlp.get_pipe("competence_classifier").classifier  # noqa: B018 (load the model now, not mid-run)
    time.sleep(hold_seconds)
    return os.getpid()
