"""Build, cache and load the skill pipeline for one ad language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.util import load_config, load_model_from_config

import extractors.spacy_components  # noqa: F401  (registers the factories)

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
