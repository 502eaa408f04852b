"""Docs to mention rows: one row per (mention, competence), with its evidence."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc

from extractors.nlp import get_nlp
from extractors.spacy_components import SPAN_KEY
from taxonomy.model import Taxonomy

METHOD_MATCHER = "matcher"
# The extractor version recorded with every mention: the matcher alone, for now.
MODEL_VERSION = "matcher-1"


def doc_mentions(doc: Doc, posting_id: str, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Mention rows of one processed Doc.

    A concept mapped to two competences gives two rows with the same `mention_id`.
    """
    group = doc.spans.get(SPAN_KEY)
    if not group:
        return []
    starts = numpy.flatnonzero(doc.to_array(SENT_START) == 1).tolist()
    bounds = starts[1:] + [len(doc)]
    rows: list[dict[str, Any]] = []
    for span, score in zip(group, group.attrs.get("scores", [1.0] * len(group)), strict=True):
        concept = taxonomy.concepts[span.label_]
        index = bisect_right(starts, span.start) - 1
        sentence = doc[starts[index]:bounds[index]]
        mention_id = f"{posting_id}:{span.start_char}:{span.end_char}:{concept.id}"
        for competence_id in concept.competences:
            competence = taxonomy.competences[competence_id]
            rows.append(
                {
                    "mention_id": mention_id,
                    "posting_id": posting_id,
                    "sentence_index": index,
                    "sentence": sentence.text.strip(),
                    "start_char": span.start_char,
                    "end_char": span.end_char,
                    "surface": span.text,
                    "concept_id": concept.id,
                    "concept_label": concept.label,
                    "esco_uri": concept.esco_uri,
                    "proficiency": concept.proficiency,
                    "competence_id": competence_id,
                    "competence_label": competence.label,
                    "area_id": competence.area,
                    "framework": competence.framework,
                    "method": METHOD_MATCHER,
                    "score": float(score),
                }
            )
    return rows


def extract_mentions(
    postings: Iterable[tuple[str, str, str]],
    taxonomy: Taxonomy,
    taxonomy_spec: str,
    batch_size: int = 256,
) -> Iterator[dict[str, Any]]:
    """Mention rows for (posting_id, text, language) triples, grouped by language.

    Postings are processed with the pipeline of their language, in batches, with
    ``nlp.pipe``; rows come out per posting in the input order within a language.
    """
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for posting_id, text, lang in postings:
        by_lang.setdefault(lang or "und", []).append((text, posting_id))
    for lang in sorted(by_lang):
        nlp = get_nlp(lang, taxonomy_spec, taxonomy.version)
        for doc, posting_id in nlp.pipe(by_lang[lang], as_tuples=True, batch_size=batch_size):
            yield from doc_mentions(doc, posting_id, taxonomy)
