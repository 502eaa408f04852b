"""Docs to mention rows: one row per (mention, competence), with its evidence."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

import numpy
from spacy.attrs import IDX, SENT_START
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
# The columns of a mention row, in order (the dataset adds taxonomy_version, model_version and run_id).
ROW_COLUMNS = ("mention_id", "posting_id", "sentence_index", "sentence", "start_char", "end_char", "surface",
               "concept_id", "concept_label", "esco_uri", "proficiency", "competence_id", "competence_label",
               "area_id", "framework", "method", "score")


class MentionColumns:
    """Mention rows gathered column by column (a list per column, no dict per row).

    ``add`` takes one processed Doc; ``columns`` holds the rows in the order of
    ``doc_mentions``. Sentence and surface texts are cut from the Doc's text by the
    tokens' character offsets (one ``to_array`` per Doc with mentions), not built
    token by token from spans.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.columns: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        self._concepts: dict[str, tuple] = {}  # concept id -> its row values and its competences' values
        self._competences: dict[str, tuple | None] = {}  # competence id -> its classifier row values

    def __len__(self) -> int:
        return len(self.columns["mention_id"])

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (``doc_mentions``)."""
        names = list(self.columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*self.columns.values(), strict=True)]

    def add(self, doc: Doc, posting_id: str, text: str | None = None) -> None:
        """Add the rows of one Doc; `text` is the Doc's text when the caller has it (saves a join).

        Matcher rows first (one per concept × competence), then a ``classifier`` row per
        competence the classifier found in a sentence that no matcher row of the same
        sentence already gives.
        """
        group = doc.spans.get(SPAN_KEY)
        found = doc.spans.get(COMPETENCE_SPAN_KEY)
        if not group and not found:
            return
        if text is None:
            text = doc.text
        array = doc.to_array([SENT_START, IDX])
        starts = numpy.flatnonzero(array[:, 0] == 1).tolist()
        idx = array[:, 1].tolist() + [len(text)]  # char offset of each token, and the end
        bounds = starts[1:] + [len(doc)]
        given: set[tuple[int, str]] = set()
        if group:
            self._matcher_rows(group, posting_id, text, starts, bounds, idx, given)
        if found:
            self._classifier_rows(found, posting_id, text, starts, given)

    def _concept(self, concept_id: str) -> tuple:
        info = self._concepts.get(concept_id)
        if info is None:
            taxonomy = self.taxonomy
            concept = taxonomy.concepts[concept_id]
            comps = []
            for competence_id in concept.competences:
                competence = taxonomy.competences[competence_id]
                comps.append((competence_id, competence.label, competence.area, competence.framework))
            info = self._concepts[concept_id] = (concept.id, concept.label, concept.esco_uri, concept.proficiency,
                                                 tuple(comps))
        return info

    def _matcher_rows(self, group: Any, posting_id: str, text: str, starts: list[int], bounds: list[int],
                      idx: list[int], given: set[tuple[int, str]]) -> None:
        c = self.columns
        scores = group.attrs.get("scores", [1.0] * len(group))
        sentences: dict[int, str] = {}  # sentence text by index: cut once, however many mentions it holds
        for span, score in zip(group, scores, strict=True):
            concept_id, concept_label, esco_uri, proficiency, comps = self._concept(span.label_)
            start = span.start
            index = bisect_right(starts, start) - 1
            sentence = sentences.get(index)
            if sentence is None:
                sentence = sentences[index] = text[idx[starts[index]]:idx[bounds[index]]].strip()
            start_char, end_char = span.start_char, span.end_char
            surface = text[start_char:end_char]
            mention_id = f"{posting_id}:{start_char}:{end_char}:{concept_id}"
            score = float(score)
            n = len(comps)
            for name, value in (("mention_id", mention_id), ("posting_id", posting_id), ("sentence_index", index),
                                ("sentence", sentence), ("start_char", start_char), ("end_char", end_char),
                                ("surface", surface), ("concept_id", concept_id), ("concept_label", concept_label),
                                ("esco_uri", esco_uri), ("proficiency", proficiency), ("method", METHOD_MATCHER),
                                ("score", score)):
                c[name].extend([value] * n)
            for competence_id, competence_label, area, framework in comps:
                c["competence_id"].append(competence_id)
                c["competence_label"].append(competence_label)
                c["area_id"].append(area)
                c["framework"].append(framework)
                given.add((index, competence_id))

    def _classifier_rows(self, found: Any, posting_id: str, text: str, starts: list[int],
                         given: set[tuple[int, str]]) -> None:
        """Rows for classifier evidence: the sentence is the surface; the concept is the competence itself."""
        c = self.columns
        competences = self.taxonomy.competences
        for span, score in zip(found, found.attrs.get("scores", [1.0] * len(found)), strict=True):
            competence = competences.get(span.label_)
            index = bisect_right(starts, span.start) - 1
            if competence is None or (index, competence.id) in given:
                continue
            span_text = text[span.start_char:span.end_char]
            start_char = span.start_char + (len(span_text) - len(span_text.lstrip()))
            surface = span_text.strip()
            end_char = start_char + len(surface)
            concept_id = COMPETENCE_CONCEPT_PREFIX + competence.id
            for name, value in (("mention_id", f"{posting_id}:{start_char}:{end_char}:{concept_id}"),
                                ("posting_id", posting_id), ("sentence_index", index), ("sentence", surface),
                                ("start_char", start_char), ("end_char", end_char), ("surface", surface),
                                ("concept_id", concept_id), ("concept_label", competence.label), ("esco_uri", None),
                                ("proficiency", None), ("competence_id", competence.id),
                                ("competence_label", competence.label), ("area_id", competence.area),
                                ("framework", competence.framework), ("method", METHOD_CLASSIFIER),
                                ("score", float(score))):
                c[name].append(value)


def doc_mentions(doc: Doc, posting_id: str, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Mention rows of one processed Doc.

    A concept mapped to two competences gives two rows with the same `mention_id`.
    Then, for each sentence, a ``classifier`` row per competence the competence
    classifier found there that no matcher row of the same sentence already gives.
    """
    columns = MentionColumns(taxonomy)
    columns.add(doc, posting_id)
    return columns.rows()


def mention_columns(
    postings: Iterable[tuple[str, str, str]],
    taxonomy: Taxonomy,
    taxonomy_spec: str,
    batch_size: int = 256,
) -> dict[str, list[Any]]:
    """The rows of ``extract_mentions``, as one list per column (ROW_COLUMNS)."""
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for posting_id, text, lang in postings:
        by_lang.setdefault(lang or "und", []).append((text, posting_id))
    out = MentionColumns(taxonomy)
    for lang in sorted(by_lang):
        nlp = get_nlp(lang, taxonomy_spec, taxonomy.version)
        items = by_lang[lang]
        # the Doc's text is the posting's text (spaCy's tokenizer keeps every character)
        stream = ((text, i) for i, (text, _) in enumerate(items))
        for doc, i in nlp.pipe(stream, as_tuples=True, batch_size=batch_size):
            text, posting_id = items[i]
            out.add(doc, posting_id, text)
    return out.columns


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
