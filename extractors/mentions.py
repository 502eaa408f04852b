"""Docs to mention rows: one row per (mention, competence), with its evidence."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc

from extractors.classifier import SPAN_KEY as COMPETENCE_SPAN_KEY
from extractors.classifier import model_hash
from extractors.nlp import get_nlp
from extractors.spacy_components import SPAN_KEY
from taxonomy.model import Taxonomy

METHOD_MATCHER = "matcher"
METHOD_CLASSIFIER = "classifier"
# A classifier row names no skill concept: its concept_id is this prefix + the competence id.
COMPETENCE_CONCEPT_PREFIX = "competence:"
# The extractor version recorded with every mention: the matcher and the classifier model (file hash).
MODEL_VERSION = f"matcher-1+clf-{model_hash()}"


def doc_mentions(doc: Doc, posting_id: str, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Mention rows of one processed Doc.

    A concept mapped to two competences gives two rows with the same `mention_id`.
    Then, for each sentence, a ``classifier`` row per competence the competence
    classifier found there that no matcher row of the same sentence already gives.
    """
    group = doc.spans.get(SPAN_KEY)
    found = doc.spans.get(COMPETENCE_SPAN_KEY)
    if not group and not found:
        return []
    starts = numpy.flatnonzero(doc.to_array(SENT_START) == 1).tolist()
    bounds = starts[1:] + [len(doc)]
    rows: list[dict[str, Any]] = []
    if group:
        rows.extend(_matcher_rows(doc, group, posting_id, taxonomy, starts, bounds))
    if found:
        given = {(row["sentence_index"], row["competence_id"]) for row in rows}
        rows.extend(_classifier_rows(doc, found, posting_id, taxonomy, starts, given))
    return rows


def _classifier_rows(doc: Doc, found: Any, posting_id: str, taxonomy: Taxonomy, starts: list[int],
                     given: set[tuple[int, str]]) -> Iterator[dict[str, Any]]:
    """Rows for classifier evidence: the sentence is the surface; the concept is the competence itself."""
    for span, score in zip(found, found.attrs.get("scores", [1.0] * len(found)), strict=True):
        competence = taxonomy.competences.get(span.label_)
        index = bisect_right(starts, span.start) - 1
        if competence is None or (index, competence.id) in given:
            continue
        text = span.text
        start_char = span.start_char + (len(text) - len(text.lstrip()))
        surface = text.strip()
        end_char = start_char + len(surface)
        concept_id = COMPETENCE_CONCEPT_PREFIX + competence.id
        yield {
            "mention_id": f"{posting_id}:{start_char}:{end_char}:{concept_id}",
            "posting_id": posting_id,
            "sentence_index": index,
            "sentence": surface,
            "start_char": start_char,
            "end_char": end_char,
            "surface": surface,
            "concept_id": concept_id,
            "concept_label": competence.label,
            "esco_uri": None,
            "proficiency": None,
            "competence_id": competence.id,
            "competence_label": competence.label,
            "area_id": competence.area,
            "framework": competence.framework,
            "method": METHOD_CLASSIFIER,
            "score": float(score),
        }


def _matcher_rows(doc: Doc, group: Any, posting_id: str, taxonomy: Taxonomy, starts: list[int],
                  bounds: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sentences: dict[int, str] = {}  # sentence text by index: built once, however many mentions it holds
    for span, score in zip(group, group.attrs.get("scores", [1.0] * len(group)), strict=True):
        concept = taxonomy.concepts[span.label_]
        index = bisect_right(starts, span.start) - 1
        sentence = sentences.get(index)
        if sentence is None:
            sentence = sentences[index] = doc[starts[index]:bounds[index]].text.strip()
        surface = span.text
        mention_id = f"{posting_id}:{span.start_char}:{span.end_char}:{concept.id}"
        for competence_id in concept.competences:
            competence = taxonomy.competences[competence_id]
            rows.append(
                {
                    "mention_id": mention_id,
                    "posting_id": posting_id,
                    "sentence_index": index,
                    "sentence": sentence,
                    "start_char": span.start_char,
                    "end_char": span.end_char,
                    "surface": surface,
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
