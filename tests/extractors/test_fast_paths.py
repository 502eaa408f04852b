"""The vectorised extract paths give exactly what the straightforward implementations give.

Each reference below is the plain, token-by-token implementation the fast path replaced
(kept here, run on the bundled sample ads in every language they hold).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy
import pandas as pd
import pytest
import scipy.sparse as sp
from spacy.attrs import NORM, SENT_START
from spacy.tokens import Doc

from extractors.classifier import MIN_WORDS, SPAN_KEY, CompetenceClassifier, _has_letter, sample_ad_texts
from extractors.mentions import COMPETENCE_CONCEPT_PREFIX, METHOD_CLASSIFIER, METHOD_MATCHER
from extractors.nlp import get_nlp, mention_frame
from extractors.spacy_components import SPAN_KEY as SKILLS
from taxonomy.load import load_taxonomy
from taxonomy.model import Taxonomy

COLUMNS = ["mention_id", "posting_id", "sentence_index", "sentence", "start_char", "end_char", "surface",
           "concept_id", "concept_label", "esco_uri", "proficiency", "competence_id", "competence_label",
           "area_id", "framework", "method", "score", "taxonomy_version", "model_version", "run_id"]


@pytest.fixture(scope="module")
def sample() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    for text, lang in sample_ad_texts():
        by_lang.setdefault(lang, []).append(text)
    # an empty ad, a heading alone, white space and a line without a sentence end
    by_lang.setdefault("en", []).extend(["", "Requirements:", " \n\n ", "Excel Excel Excel Word\n\n  PowerPoint"])
    return by_lang


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy("builtin")


# --------------------------------------------------------------------------- references


def reference_features(clf: CompetenceClassifier, docs: list[Doc]) -> tuple[sp.csr_matrix, list]:
    """Sentence features token by token (the implementation before the vectorised one)."""
    vocab = clf.vectorizer.vocabulary_
    n = clf.prefix_length
    rows: list[int] = []
    cols: list[int] = []
    bounds: list[list[tuple[int, int]]] = []
    row = 0
    for doc in docs:
        spans: list[tuple[int, int]] = []
        if len(doc):
            arr = doc.to_array([SENT_START, NORM])
            starts = numpy.flatnonzero(arr[:, 0] == 1).tolist() or [0]
            ends = starts[1:] + [len(doc)]
            strings = doc.vocab.strings
            for start, end in zip(starts, ends, strict=True):
                prev = None
                first = len(rows)
                n_words = 0
                for h in arr[start:end, 1].tolist():
                    text = strings[h]
                    if text.isspace():
                        continue
                    n_words += _has_letter(text)
                    for term in (text, "~" + text[:n] if len(text) > n + 1 else None,
                                 None if prev is None else strings[prev] + " " + text):
                        if term is not None and vocab.get(term, -1) >= 0:
                            rows.append(row)
                            cols.append(vocab[term])
                    prev = h
                if n_words < MIN_WORDS:
                    del rows[first:], cols[first:]
                spans.append((start, end))
                row += 1
        bounds.append(spans)
    counts = sp.csr_matrix((numpy.ones(len(rows), dtype="float32"), (rows, cols)), shape=(row, len(vocab)),
                           dtype="float32")
    counts.sum_duplicates()
    counts.data = (numpy.log(counts.data) + 1.0) * clf._idf[counts.indices]
    norms = numpy.sqrt(numpy.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms).astype("float32") @ counts), bounds


def reference_proba(clf: CompetenceClassifier, x: sp.csr_matrix) -> numpy.ndarray:
    a, b = clf.platt
    scores = numpy.asarray(x @ clf.coef) + clf.intercept
    probs = 1.0 / (1.0 + numpy.exp(-(a * scores + b)))
    probs[numpy.diff(x.indptr) == 0] = 0.0
    return probs


def reference_rows(doc: Doc, posting_id: str, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Mention rows of one Doc, one dict per row, from Span objects."""
    group, found = doc.spans.get(SKILLS), doc.spans.get(SPAN_KEY)
    if not group and not found:
        return []
    starts = numpy.flatnonzero(doc.to_array(SENT_START) == 1).tolist()
    bounds = starts[1:] + [len(doc)]
    rows: list[dict[str, Any]] = []
    for span, score in zip(group or [], (group.attrs.get("scores") if group else []) or [], strict=True):
        concept = taxonomy.concepts[span.label_]
        index = bisect_right(starts, span.start) - 1
        for competence_id in concept.competences:
            competence = taxonomy.competences[competence_id]
            rows.append({
                "mention_id": f"{posting_id}:{span.start_char}:{span.end_char}:{concept.id}",
                "posting_id": posting_id, "sentence_index": index,
                "sentence": doc[starts[index]:bounds[index]].text.strip(),
                "start_char": span.start_char, "end_char": span.end_char, "surface": span.text,
                "concept_id": concept.id, "concept_label": concept.label, "esco_uri": concept.esco_uri,
                "proficiency": concept.proficiency, "competence_id": competence_id,
                "competence_label": competence.label, "area_id": competence.area,
                "framework": competence.framework, "method": METHOD_MATCHER, "score": float(score),
            })
    given = {(row["sentence_index"], row["competence_id"]) for row in rows}
    for span, score in zip(found or [], (found.attrs.get("scores") if found else []) or [], strict=True):
        competence = taxonomy.competences.get(span.label_)
        index = bisect_right(starts, span.start) - 1
        if competence is None or (index, competence.id) in given:
            continue
        start_char = span.start_char + (len(span.text) - len(span.text.lstrip()))
        surface = span.text.strip()
        concept_id = COMPETENCE_CONCEPT_PREFIX + competence.id
        rows.append({
            "mention_id": f"{posting_id}:{start_char}:{start_char + len(surface)}:{concept_id}",
            "posting_id": posting_id, "sentence_index": index, "sentence": surface,
            "start_char": start_char, "end_char": start_char + len(surface), "surface": surface,
            "concept_id": concept_id, "concept_label": competence.label, "esco_uri": None, "proficiency": None,
            "competence_id": competence.id, "competence_label": competence.label, "area_id": competence.area,
            "framework": competence.framework, "method": METHOD_CLASSIFIER, "score": float(score),
        })
    return rows


def reference_sentence_starts(doc: Doc, ends_sentence: Any) -> numpy.ndarray:
    """SENT_START values of one Doc, token by token (the rule of the line sentencizer)."""
    starts = numpy.full(len(doc), -1, dtype="int64")
    previous_ends, seen_word = False, False
    for token in doc:
        if token.i == 0:
            starts[0] = 1
        if not token.is_space:
            if not seen_word or previous_ends:
                starts[token.i] = 1
            seen_word, previous_ends = True, False
        if ends_sentence(token.text):
            previous_ends = True
    return starts


# --------------------------------------------------------------------------- tests


def test_sample_covers_every_pipeline_language(sample: dict[str, list[str]]) -> None:
    assert {"en", "ru", "uk", "ro", "ka", "be"} <= set(sample)


def test_classifier_features_and_spans_equal_the_reference(sample: dict[str, list[str]], taxonomy: Taxonomy) -> None:
    total_hits = 0
    for lang, texts in sorted(sample.items()):
        nlp = get_nlp(lang, "builtin", taxonomy.version)
        component = nlp.get_pipe("competence_classifier")
        clf = component.classifier
        with nlp.select_pipes(disable=["competence_classifier"]):
            docs = list(nlp.pipe(texts))
        x, bounds = clf.doc_features(docs)
        ref_x, ref_bounds = reference_features(clf, docs)
        assert bounds == ref_bounds, lang
        assert x.shape == ref_x.shape
        assert (x.indptr == ref_x.indptr).all() and (x.indices == ref_x.indices).all()
        assert (x.data == ref_x.data).all(), lang
        probs, ref_probs = clf.proba_from_features(x), reference_proba(clf, ref_x)
        assert numpy.allclose(probs, ref_probs, rtol=0, atol=1e-12), lang
        # the spans the component writes: every sentence × competence at or above the threshold
        component._batch(docs)
        got = [(d, s.start, s.end, s.label_, score) for d, doc in enumerate(docs)
               for s, score in zip(doc.spans[SPAN_KEY], doc.spans[SPAN_KEY].attrs["scores"], strict=True)]
        sentences = [(d, b) for d, per_doc in enumerate(ref_bounds) for b in per_doc]
        want = [(sentences[i][0], *sentences[i][1], clf.labels[j], round(float(ref_probs[i, j]), 4))
                for i, j in zip(*numpy.nonzero(ref_probs >= component.threshold), strict=True)]
        assert got == want, lang
        total_hits += len(got)
    assert total_hits > 50  # the sample does exercise the classifier


def test_mention_frame_equals_the_reference_rows(sample: dict[str, list[str]], taxonomy: Taxonomy) -> None:
    postings = [(f"{lang}-{i}", text, lang) for lang, texts in sorted(sample.items()) for i, text in enumerate(texts)]
    frame = mention_frame(postings, "builtin", 64, COLUMNS)
    rows: list[dict[str, Any]] = []
    for lang, texts in sorted(sample.items()):
        nlp = get_nlp(lang, "builtin", taxonomy.version)
        for i, doc in enumerate(nlp.pipe(texts, batch_size=64)):
            rows.extend(reference_rows(doc, f"{lang}-{i}", taxonomy))
    expected = pd.DataFrame(rows, columns=COLUMNS)
    assert len(frame) > 500 and set(frame["method"]) == {METHOD_MATCHER, METHOD_CLASSIFIER}
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)


def test_sentence_starts_equal_the_reference(sample: dict[str, list[str]], taxonomy: Taxonomy) -> None:
    from extractors.spacy_components import SENTENCE_END

    for lang, texts in sorted(sample.items()):
        nlp = get_nlp(lang, "builtin", taxonomy.version)
        docs = list(nlp.get_pipe("line_sentencizer").pipe(nlp.tokenizer.pipe(texts), batch_size=7))
        for doc in docs:
            want = reference_sentence_starts(doc, lambda t: t in SENTENCE_END or "\n" in t)
            got = doc.to_array(SENT_START).astype("int64")
            assert (got == want).all(), (lang, doc.text[:80])


def test_longest_matches_equal_filter_spans(sample: dict[str, list[str]], taxonomy: Taxonomy) -> None:
    from spacy.tokens import Span
    from spacy.util import filter_spans

    from extractors.spacy_components import _longest

    overlapping = 0
    for lang, texts in sorted(sample.items()):
        nlp = get_nlp(lang, "builtin", taxonomy.version)
        matcher = nlp.get_pipe("skill_matcher")
        with nlp.select_pipes(enable=["line_sentencizer", "skill_normalizer"]):
            docs = list(nlp.pipe(texts))
        for doc in docs:
            matches = [(s, e, nlp.vocab.strings[m]) for m, s, e in matcher.matcher(doc)]
            # and every match again one token shorter at either end: more overlaps and ties
            matches += [(s + 1, e, label) for s, e, label in matches if e - s > 1]
            matches += [(s, e - 1, label + "~") for s, e, label in matches if e - s > 1]
            want = [(sp.start, sp.end, sp.label_) for sp in filter_spans([Span(doc, s, e, label=lab)
                                                                          for s, e, lab in matches])]
            assert _longest(matches) == want
            overlapping += len(matches) - len(want)
    assert overlapping > 100


def test_mention_table_holds_the_frame_rows(sample: dict[str, list[str]]) -> None:
    import pyarrow as pa

    from extractors.mentions import ROW_COLUMNS
    from extractors.nlp import mention_table

    postings = [(f"{lang}-{i}", text, lang) for lang, texts in sorted(sample.items()) for i, text in enumerate(texts)]
    schema = pa.schema([pa.field(name, pa.int32() if name in ("sentence_index", "start_char", "end_char")
                                 else pa.float32() if name == "score" else pa.string()) for name in COLUMNS])
    table = mention_table(postings[:40], "builtin", 16, schema)
    frame = mention_frame(postings[:40], "builtin", 16, COLUMNS)
    assert table.schema == schema and table.num_rows == len(frame) > 20
    for name in ROW_COLUMNS:
        expected = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        if name == "score":
            expected = [float(numpy.float32(v)) for v in expected]
        assert table.column(name).to_pylist() == expected, name
    assert table.column("run_id").null_count == table.num_rows


def test_sorted_mention_table_equals_the_stably_sorted_frame(sample: dict[str, list[str]]) -> None:
    import pyarrow as pa

    from extractors.mentions import ROW_COLUMNS, SORT_KEYS
    from extractors.nlp import mention_table

    # posting ids out of order and across languages, so the sort has work to do
    postings = [(f"{(i * 7919) % 101:03d}-{lang}", text, lang)
                for lang, texts in sorted(sample.items()) for i, text in enumerate(texts[:25])]
    schema = pa.schema([pa.field(name, pa.int32() if name in ("sentence_index", "start_char", "end_char")
                                 else pa.float32() if name == "score" else pa.string(), nullable=name != "run_id")
                        for name in COLUMNS])
    table = mention_table(postings, "builtin", 16, schema, constants={"run_id": "r1"}, sort=True)
    frame = mention_frame(postings, "builtin", 16, COLUMNS).sort_values(list(SORT_KEYS), kind="stable")
    assert table.num_rows == len(frame) > 100
    for name in ROW_COLUMNS:
        expected = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        if name == "score":
            expected = [float(numpy.float32(v)) for v in expected]
        assert table.column(name).to_pylist() == expected, name
    assert set(table.column("run_id").to_pylist()) == {"r1"}
    with pytest.raises(ValueError, match="run_id was non-nullable"):
        mention_table(postings[:5], "builtin", 16, schema)
