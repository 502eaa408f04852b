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
    """Mention rows gathered compactly: one record per matcher mention or classifier row.

    ``add`` takes one processed Doc. A record holds what differs between mentions (posting,
    sentence, offsets, surface, score) and a *code* that stands for the concept (or, for a
    classifier row, the competence) with everything the taxonomy says of it; a concept
    mapped to k competences gives k rows. ``columns`` expands the records into one list per
    column (in the order of ``doc_mentions``); ``table`` expands them in Arrow (``take`` on
    per-code and per-record arrays), optionally sorted, without building a Python value
    per row. Sentence and surface texts are cut from the Doc's text by the tokens'
    character offsets, each sentence once.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.postings: list[str] = []
        self.sentences: list[str] = []
        # per record
        self._posting: list[int] = []  # index into postings
        self._sentence_index: list[int] = []  # sentence number within its Doc
        self._sentence: list[int] = []  # index into sentences
        self._start: list[int] = []
        self._end: list[int] = []
        self._surface: list[str] = []
        self._code: list[int] = []
        self._score: list[float] = []
        self._rows = 0
        # per code: (concept_id, concept_label, esco_uri, proficiency, method), its first row in the
        # expansion lists, its competence ids; per expansion row: competence id, label, area, framework
        self._code_of: dict[str, int] = {}
        self._code_info: list[tuple[str, str, str | None, str | None, str]] = []
        self._code_first: list[int] = []
        self._code_comps: list[tuple[str, ...]] = []
        self._expansion: list[tuple[str, str, str, str]] = []

    def __len__(self) -> int:
        return self._rows

    def _code_for(self, key: str) -> int:
        code = self._code_of.get(key)
        if code is not None:
            return code
        taxonomy = self.taxonomy
        if key.startswith(COMPETENCE_CONCEPT_PREFIX):
            competence = taxonomy.competences[key[len(COMPETENCE_CONCEPT_PREFIX):]]
            info = (key, competence.label, None, None, METHOD_CLASSIFIER)
            comps: tuple[str, ...] = (competence.id,)
        else:
            concept = taxonomy.concepts[key]
            info = (concept.id, concept.label, concept.esco_uri, concept.proficiency, METHOD_MATCHER)
            comps = tuple(concept.competences)
        code = self._code_of[key] = len(self._code_info)
        self._code_info.append(info)
        self._code_first.append(len(self._expansion))
        self._code_comps.append(comps)
        for competence_id in comps:
            competence = taxonomy.competences[competence_id]
            self._expansion.append((competence_id, competence.label, competence.area, competence.framework))
        return code

    def _record(self, posting: int, index: int, sentence: int, start: int, end: int, surface: str, code: int,
                score: float) -> None:
        self._posting.append(posting)
        self._sentence_index.append(index)
        self._sentence.append(sentence)
        self._start.append(start)
        self._end.append(end)
        self._surface.append(surface)
        self._code.append(code)
        self._score.append(score)
        self._rows += len(self._code_comps[code])

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
        posting = len(self.postings)
        self.postings.append(posting_id)
        array = doc.to_array([SENT_START, IDX])
        starts = numpy.flatnonzero(array[:, 0] == 1).tolist()
        given: set[tuple[int, str]] = set()
        if group:
            idx = array[:, 1].tolist() + [len(text)]  # char offset of each token, and the end
            bounds = starts[1:] + [len(doc)]
            self._matcher_records(group, posting, text, starts, bounds, idx, given)
        if found:
            self._classifier_records(found, posting, text, starts, given)

    def _matcher_records(self, group: Any, posting: int, text: str, starts: list[int], bounds: list[int],
                         idx: list[int], given: set[tuple[int, str]]) -> None:
        scores = group.attrs.get("scores", [1.0] * len(group))
        sentences: dict[int, int] = {}  # sentence number -> index into self.sentences: cut once
        code_of = self._code_of
        for span, score in zip(group, scores, strict=True):
            label = span.label_
            code = code_of.get(label)
            if code is None:
                code = self._code_for(label)
            index = bisect_right(starts, span.start) - 1
            sentence = sentences.get(index)
            if sentence is None:
                sentence = sentences[index] = len(self.sentences)
                self.sentences.append(text[idx[starts[index]]:idx[bounds[index]]].strip())
            start_char, end_char = span.start_char, span.end_char
            self._record(posting, index, sentence, start_char, end_char, text[start_char:end_char], code, float(score))
            for competence_id in self._code_comps[code]:
                given.add((index, competence_id))

    def _classifier_records(self, found: Any, posting: int, text: str, starts: list[int],
                            given: set[tuple[int, str]]) -> None:
        """Records of classifier evidence: the sentence is the surface; the concept is the competence itself."""
        competences = self.taxonomy.competences
        for span, score in zip(found, found.attrs.get("scores", [1.0] * len(found)), strict=True):
            competence = competences.get(span.label_)
            index = bisect_right(starts, span.start) - 1
            if competence is None or (index, competence.id) in given:
                continue
            span_text = text[span.start_char:span.end_char]
            start_char = span.start_char + (len(span_text) - len(span_text.lstrip()))
            surface = span_text.strip()
            sentence = len(self.sentences)
            self.sentences.append(surface)
            self._record(posting, index, sentence, start_char, start_char + len(surface), surface,
                         self._code_for(COMPETENCE_CONCEPT_PREFIX + competence.id), float(score))

    # ------------------------------------------------------------------ expansion

    def _expansion_index(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(record of each row, expansion row of each row), rows in record order."""
        codes = numpy.asarray(self._code, dtype=numpy.int64)
        counts = numpy.asarray([len(c) for c in self._code_comps], dtype=numpy.int64)[codes]
        record = numpy.repeat(numpy.arange(len(codes), dtype=numpy.int64), counts)
        first_row = numpy.cumsum(counts) - counts  # the first row of each record
        within = numpy.arange(len(record), dtype=numpy.int64) - numpy.repeat(first_row, counts)
        first = numpy.asarray(self._code_first, dtype=numpy.int64)[codes]
        return record, numpy.repeat(first, counts) + within

    @property
    def columns(self) -> dict[str, list[Any]]:
        """The rows as one Python list per column (ROW_COLUMNS), in the order of ``doc_mentions``."""
        out: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        record, expansion = self._expansion_index()
        for r, e in zip(record.tolist(), expansion.tolist(), strict=True):
            concept_id, concept_label, esco_uri, proficiency, method = self._code_info[self._code[r]]
            posting_id, start, end = self.postings[self._posting[r]], self._start[r], self._end[r]
            competence_id, competence_label, area, framework = self._expansion[e]
            for name, value in (("mention_id", f"{posting_id}:{start}:{end}:{concept_id}"),
                                ("posting_id", posting_id), ("sentence_index", self._sentence_index[r]),
                                ("sentence", self.sentences[self._sentence[r]]), ("start_char", start),
                                ("end_char", end), ("surface", self._surface[r]), ("concept_id", concept_id),
                                ("concept_label", concept_label), ("esco_uri", esco_uri),
                                ("proficiency", proficiency), ("competence_id", competence_id),
                                ("competence_label", competence_label), ("area_id", area),
                                ("framework", framework), ("method", method), ("score", self._score[r])):
                out[name].append(value)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (``doc_mentions``)."""
        columns = self.columns
        names = list(columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]

    def table(self, schema: Any, constants: dict[str, str] | None = None, sort: bool = False) -> Any:
        """The rows as an Arrow table of `schema` (its fields among ROW_COLUMNS and `constants`).

        With `sort`, rows are in SORT_KEYS order (stable; the keys are unique per row). A
        field of `schema` that is neither a row column nor a constant is nulls; a
        non-nullable field with a null raises ValueError (as ``pa.Table.from_pandas``).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        record, expansion = self._expansion_index()
        codes = numpy.asarray(self._code, dtype=numpy.int64)
        if sort and len(record) > 1:
            postings = numpy.asarray(_ranks(self.postings), dtype=numpy.int64)[self._posting]
            concept_rank = numpy.asarray(_ranks([info[0] for info in self._code_info]), dtype=numpy.int64)
            competence_rank = numpy.asarray(_ranks([e[0] for e in self._expansion]), dtype=numpy.int64)
            order = numpy.lexsort((competence_rank[expansion], concept_rank[codes][record],
                                   numpy.asarray(self._start, dtype=numpy.int64)[record], postings[record]))
            record, expansion = record[order], expansion[order]
        n = len(record)
        row_code = codes[record]

        def per_record(values: list[Any], type_: Any) -> Any:
            return pa.array(values, type=type_).take(pa.array(record))

        def per_code(i: int, type_: Any) -> Any:
            return pa.array([info[i] for info in self._code_info], type=type_).take(pa.array(row_code))

        def per_expansion(i: int, type_: Any) -> Any:
            return pa.array([e[i] for e in self._expansion], type=type_).take(pa.array(expansion))

        string = pa.string()
        posting_id = pa.array(self.postings, type=string).take(pa.array(numpy.asarray(self._posting,
                                                                                      dtype=numpy.int64)[record]))
        start = numpy.asarray(self._start, dtype=numpy.int32)[record]
        end = numpy.asarray(self._end, dtype=numpy.int32)[record]
        concept_id = per_code(0, string)
        built: dict[str, Any] = {
            "posting_id": posting_id, "sentence_index": numpy.asarray(self._sentence_index, dtype=numpy.int32)[record],
            "sentence": pa.array(self.sentences, type=string).take(
                pa.array(numpy.asarray(self._sentence, dtype=numpy.int64)[record])),
            "start_char": start, "end_char": end, "surface": per_record(self._surface, string),
            "concept_id": concept_id, "concept_label": per_code(1, string), "esco_uri": per_code(2, string),
            "proficiency": per_code(3, string), "method": per_code(4, string),
            "competence_id": per_expansion(0, string), "competence_label": per_expansion(1, string),
            "area_id": per_expansion(2, string), "framework": per_expansion(3, string),
            "score": numpy.asarray(self._score, dtype=numpy.float64)[record],
        }
        built["mention_id"] = pc.binary_join_element_wise(
            posting_id, pc.cast(pa.array(start), string), pc.cast(pa.array(end), string), concept_id, ":")
        constants = constants or {}
        arrays = []
        for f in schema:
            if f.name in built:
                value = built[f.name]
                array = pa.array(value, type=f.type) if isinstance(value, numpy.ndarray) else value.cast(f.type)
            elif f.name in constants:
                array = pa.array([constants[f.name]], type=f.type).take(pa.array(numpy.zeros(n, dtype=numpy.int64)))
            else:
                array = pa.nulls(n, type=f.type)
            if not f.nullable and array.null_count:
                raise ValueError(f"Field {f.name} was non-nullable but the mention rows had {array.null_count} nulls")
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=schema)


def _ranks(values: list[Any]) -> list[int]:
    """Each value's rank among the distinct values, sorted as Python sorts them."""
    rank = {value: i for i, value in enumerate(sorted(set(values)))}
    return [rank[v] for v in values]


SORT_KEYS = ("posting_id", "start_char", "concept_id", "competence_id")


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
) -> MentionColumns:
    """The rows of ``extract_mentions``, gathered compactly (``MentionColumns``: ``columns``, ``table``)."""
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
    return out


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
