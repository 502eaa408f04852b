"""spaCy components of the skill pipeline, registered as factories.

No `from __future__ import annotations` here: spaCy validates factory arguments
from their type hints.

- ``line_sentencizer``: sentences end at line breaks and at . ! ? … ; (job ads are lists).
- ``skill_normalizer``: sets ``token.norm_`` to the lower-cased lemma (simplemma's
  dictionaries, shared as memory-mapped tries: ``extractors.lemmas``; per language;
  Georgian case suffixes stripped), so "электронной почтой" matches the label
  "электронная почта".
- ``skill_matcher``: a PhraseMatcher on NORM over every label of every concept; writes
  ``doc.spans["skills"]`` (label = concept id) with ``attrs["scores"]``.
"""

import json
import re
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import numpy
from spacy.attrs import IS_SPACE, LANG, LOWER, NORM, ORTH, SENT_START
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import compile_infix_regex, compile_suffix_regex, minibatch, registry

from extractors.lemmas import lemmatize

SPAN_KEY = "skills"
SENTENCE_END = frozenset({".", "!", "?", "…", ";", "•", "·"})
SCORE_EXACT = 1.0
SCORE_INFLECTED = 0.9
SCORE_IN_CONTEXT = 0.7
_GEORGIAN = re.compile(r"^[\u10a0-\u10ff]+$")
# Georgian case endings and postpositions, longest first.
_KA_SUFFIXES = ("ებისთვის", "ისთვის", "ებში", "ებზე", "ებით", "ების", "ებს", "ები",
                "ში", "ზე", "ით", "ის", "ად", "თან", "დან", "მდე", "მა", "ს", "ი")
_LEMMA_LANGS: Dict[str, tuple] = {
    "en": ("en",), "ru": ("ru",), "uk": ("uk",), "ro": ("ro",), "ka": ("ka",),
    "be": ("ru", "uk"), "pl": ("pl",), "de": ("de",), "fr": ("fr",),
}
_MAX_CACHE = 400_000


def _tokenizer_rules(nlp: Language) -> Language:
    infixes = list(nlp.Defaults.infixes or []) + [r"/", r"(?<=[\w+#])-(?=[\u10a0-\u10ff])"]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    suffixes = list(nlp.Defaults.suffixes or []) + [r"(?<=\d[^\W\d_])\."]
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    return nlp


@registry.callbacks("skillpulse.tokenizer_rules.v1")
def make_tokenizer_rules() -> Callable[[Language], Language]:
    """Split "C++/C#" at the slash, "Python-ის" before a Georgian suffix, "1C." before the dot."""
    return _tokenizer_rules


# The lexeme attributes the skill pipeline reads (the normaliser, sentencizer, matcher and
# classifier use ORTH, LOWER, NORM, IS_SPACE and token offsets; LANG names the vocabulary).
LEXEME_ATTRS = (LOWER, NORM, IS_SPACE, LANG)


@registry.callbacks("skillpulse.tokenizer_rules.v2")
def make_lean_tokenizer() -> Callable[[Language], Language]:
    """The v1 tokenizer rules, and lexemes that compute only ``LEXEME_ATTRS``.

    spaCy computes every lexical attribute (shape, like_num, like_url, is_stop, prefix,
    suffix, ...) for each new word it meets; the skill pipeline reads four of them, and
    computing the others was about a sixth of tokenising generated ads. Tokens of these
    pipelines therefore have no shape, stop-word or like-number flags.
    """

    def apply(nlp: Language) -> Language:
        _tokenizer_rules(nlp)
        getters = nlp.vocab.lex_attr_getters
        nlp.vocab.lex_attr_getters = {attr: get for attr, get in getters.items() if attr in LEXEME_ATTRS}
        return nlp

    return apply


@registry.misc("skillpulse.taxonomy_labels.v1")
def taxonomy_labels(spec: str) -> List[Dict[str, object]]:
    """The matcher entries of the taxonomy named by `spec` (builtin, esco:DIR, PATH)."""
    from taxonomy.load import load_taxonomy
    from taxonomy.patterns import matcher_labels

    return matcher_labels(load_taxonomy(spec))


@Language.factory("line_sentencizer")
def make_line_sentencizer(nlp: Language, name: str) -> "LineSentencizer":
    return LineSentencizer()


class _BatchComponent:
    """A component that sets token attributes a whole batch of Docs at a time (``_batch``)."""

    def __call__(self, doc: Doc) -> Doc:
        self._batch([doc])
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size):
            self._batch(batch)
            yield from batch

    def _batch(self, docs: List[Doc]) -> None:
        raise NotImplementedError


class LineSentencizer(_BatchComponent):
    """Start a sentence after a line break or sentence-final punctuation.

    Works on batches of Docs with numpy: one ``np.unique`` over the batch's ORTH
    values, a dict lookup per distinct token, and one ``Doc.from_array`` per Doc
    (setting ``token.is_sent_start`` token by token costs O(n) each in spaCy).
    """

    def __init__(self) -> None:
        self._ends: Dict[int, bool] = {}  # orth hash -> ends a sentence (punctuation or a line break)


    def _end_flags(self, orths: numpy.ndarray, strings: Any) -> numpy.ndarray:
        ends = self._ends
        unique, inverse = numpy.unique(orths, return_inverse=True)
        flags = numpy.empty(len(unique), dtype=bool)
        for j, orth in enumerate(unique.tolist()):
            end = ends.get(orth)
            if end is None:
                text = strings[orth]
                end = ends[orth] = text in SENTENCE_END or "\n" in text
            flags[j] = end
        return flags[inverse.reshape(-1)]

    def _batch(self, docs: List[Doc]) -> None:
        docs = [doc for doc in docs if len(doc)]
        if not docs:
            return
        arrays = [doc.to_array([ORTH, IS_SPACE]) for doc in docs]
        lengths = numpy.fromiter((len(a) for a in arrays), dtype=numpy.int64, count=len(arrays))
        offsets = numpy.concatenate(([0], numpy.cumsum(lengths)))
        array = numpy.concatenate(arrays)
        ends = self._end_flags(array[:, 0], docs[0].vocab.strings)
        # A token that is not white space starts a sentence when the previous such token
        # of its Doc, or any white space after it, ends one (white space stays with the
        # sentence before it); so does the first such token and the first token of a Doc.
        # All Docs of the batch at once: `counts` counts the sentence ends before a token.
        words = numpy.flatnonzero(array[:, 1] == 0)
        doc_of = numpy.searchsorted(offsets, words, side="right") - 1
        counts = numpy.concatenate(([0], numpy.cumsum(ends)))
        starts = numpy.full(len(array), -1, dtype="int64")
        if len(words):
            prev, cur = words[:-1], words[1:]
            same = doc_of[1:] == doc_of[:-1]
            starts[cur[same & (counts[cur] > counts[prev])]] = 1
            starts[words[numpy.flatnonzero(numpy.concatenate(([True], ~same)))]] = 1
        starts[offsets[:-1]] = 1
        starts = starts.astype("uint64")
        for doc, lo, hi in zip(docs, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
            doc.from_array([SENT_START], starts[lo:hi])


@Language.factory("skill_normalizer", default_config={"lang": "en"})
def make_skill_normalizer(nlp: Language, name: str, lang: str) -> "SkillNormalizer":
    return SkillNormalizer(lang=lang)


class SkillNormalizer(_BatchComponent):
    """Set ``token.norm_`` to the token's lower-cased lemma in the ad's language.

    Lemmas are simplemma's, from the memory-mapped tries every process shares
    (``extractors.lemmas``); each distinct lower-cased form is looked up once.
    """

    def __init__(self, *, lang: str) -> None:
        self.lang = lang
        self._langs = _LEMMA_LANGS.get(lang, ())
        self._cache: Dict[int, int] = {}  # hash of the lower form -> hash of the norm


    def _batch(self, docs: List[Doc]) -> None:
        """Norms for a batch: one lemma lookup per distinct lower-cased form, then numpy."""
        docs = [doc for doc in docs if len(doc)]
        if not docs:
            return
        cache = self._cache
        strings = docs[0].vocab.strings
        arrays = [doc.to_array(LOWER) for doc in docs]
        unique, inverse = numpy.unique(numpy.concatenate(arrays), return_inverse=True)
        norms = numpy.empty(len(unique), dtype="uint64")
        for j, key in enumerate(unique.tolist()):
            norm = cache.get(key)
            if norm is None:
                if len(cache) > _MAX_CACHE:
                    cache.clear()
                norm = cache[key] = strings.add(self.norm(strings[key]))
            norms[j] = norm
        allnorms = norms[inverse.reshape(-1)]
        offset = 0
        for doc in docs:
            n = len(doc)
            doc.from_array([NORM], allnorms[offset:offset + n])
            offset += n

    def norm(self, lower: str) -> str:
        """The normal form of one lower-cased token."""
        if len(lower) < 4 or not lower.isalpha():
            return lower
        lemma = lower
        if self._langs:
            lemma = lemmatize(lower, self._langs).casefold()
        if lemma == lower and _GEORGIAN.match(lower):
            for suffix in _KA_SUFFIXES:
                if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
                    return lower[: -len(suffix)]
        return lemma


def _longest(matches: List[tuple]) -> List[tuple]:
    """``spacy.util.filter_spans`` on (start, end, label) tuples: the (first) longest of overlapping matches.

    Same order and same choice as filter_spans over the Spans of `matches`, without making a
    Span of every candidate.
    """
    if len(matches) < 2:
        return list(matches)
    ordered = sorted(matches, key=lambda m: (m[1] - m[0], -m[0]), reverse=True)
    result = []
    seen: set = set()
    for match in ordered:
        start, end = match[0], match[1]
        if start not in seen and end - 1 not in seen:
            result.append(match)
            seen.update(range(start, end))
    return sorted(result, key=lambda m: m[0])


class _Context:
    """Sentence bounds and NORM hashes of one Doc, computed once for its ambiguous matches."""

    def __init__(self, doc: Doc) -> None:
        array = doc.to_array([SENT_START, NORM])
        self.starts = numpy.flatnonzero(array[:, 0] == 1).tolist() or [0]
        self.length = len(doc)
        self.norms = array[:, 1]

    def sentence(self, i: int) -> tuple:
        """(start, end) token offsets of the sentence holding token i (as ``Span.sent``)."""
        k = bisect_right(self.starts, i) - 1
        start = self.starts[k] if k >= 0 else 0
        end = self.starts[k + 1] if k + 1 < len(self.starts) else self.length
        return start, end


@Language.factory("skill_matcher", default_config={"span_key": SPAN_KEY})
def make_skill_matcher(nlp: Language, name: str, span_key: str) -> "SkillMatcher":
    return SkillMatcher(nlp, name, span_key=span_key)


class SkillMatcher:
    """Find taxonomy labels on the NORM attribute and keep the longest matches.

    An ambiguous label (``~R`` in the taxonomy files) counts only when its sentence
    also holds one of the concept's context cues or an unambiguous skill mention, and,
    when the label has capitals, only when the surface has a capital too ("excel at"
    is no mention of Excel).
    """

    def __init__(self, nlp: Language, name: str, *, span_key: str) -> None:
        self.nlp = nlp
        self.name = name
        self.span_key = span_key
        self.entries: List[Dict[str, object]] = []
        self.matcher = PhraseMatcher(nlp.vocab, attr="NORM")
        self._exact: Dict[str, set] = {}
        self._cased: set = set()
        self._cues: Dict[str, List[tuple]] = {}  # concept -> context cues, as tuples of NORM hashes
        self._keys: Dict[int, tuple] = {}  # match id -> (concept id, ambiguous)

    def initialize(self, get_examples: Optional[Callable[[], Iterable]] = None, *,
                   nlp: Optional[Language] = None,
                   labels: Optional[List[Dict[str, object]]] = None) -> None:
        self.set_labels(labels or [])

    def set_labels(self, entries: List[Dict[str, object]]) -> None:
        """Build the matcher from label entries (see taxonomy.patterns.matcher_labels)."""
        self.entries = list(entries)
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self._exact, self._cased, self._cues, self._keys = {}, set(), {}, {}
        normalise = self._normaliser()
        # every label tokenised and normalised in batches (one lemma lookup per distinct word)
        label_docs = list(self._normalise_all(str(entry["label"]) for entry in self.entries))
        patterns: Dict[str, List[Doc]] = {}
        for entry, label_doc in zip(self.entries, label_docs, strict=True):
            concept, label = str(entry["concept"]), str(entry["label"])
            key = concept + "~" if entry.get("ambiguous") else concept
            patterns.setdefault(key, []).append(label_doc)
            self._exact.setdefault(concept, set()).add(" ".join(label.casefold().split()))
            if entry.get("ambiguous") and label != label.lower():
                self._cased.add(concept)
            if entry.get("context") and concept not in self._cues:
                cues = [normalise(self.nlp.make_doc(str(c))) for c in entry["context"]]  # type: ignore[union-attr]
                self._cues[concept] = [tuple(t.norm for t in cue) for cue in cues if len(cue)]
        for key, docs in patterns.items():
            self.matcher.add(key, docs)

    def _normalise_all(self, texts: Iterable[str]) -> Iterator[Doc]:
        docs = self.nlp.tokenizer.pipe(texts, batch_size=1000)
        if "skill_normalizer" in self.nlp.pipe_names:
            return self.nlp.get_pipe("skill_normalizer").pipe(docs, batch_size=1000)
        return iter(docs)

    def _normaliser(self) -> Callable[[Doc], Doc]:
        if "skill_normalizer" in self.nlp.pipe_names:
            return self.nlp.get_pipe("skill_normalizer")
        return lambda doc: doc

    def __call__(self, doc: Doc) -> Doc:
        strings = self.nlp.vocab.strings
        keys = self._keys
        found: List[tuple] = []
        pending: List[tuple] = []
        for match_id, start, end in self.matcher(doc):
            info = keys.get(match_id)
            if info is None:
                key = strings[match_id]
                info = keys[match_id] = (key.rstrip("~"), key.endswith("~"))
            (pending if info[1] else found).append((start, end, info[0]))
        if pending:
            context = _Context(doc)
            for match in pending:
                if self._confirmed(doc, match, found, context):
                    found.append(match)
        kept = _longest(found)
        spans = [Span(doc, start, end, label=label) for start, end, label in kept]
        ambiguous = set(pending)
        # (span.text joins the span's few tokens; doc.text would join every token of the Doc)
        scores = [self._score(span, match in ambiguous) for span, match in zip(spans, kept, strict=True)]
        group = SpanGroup(doc, name=self.span_key, spans=spans, attrs={"scores": scores})
        doc.spans[self.span_key] = group
        return doc

    def _confirmed(self, doc: Doc, match: tuple, unambiguous: List[tuple], context: "_Context") -> bool:
        start, end, label = match
        if label in self._cased:
            surface = doc[start:end].text
            if surface == surface.lower():
                return False
        sent_start, sent_end = context.sentence(start)
        if any(s >= sent_start and e <= sent_end and lab != label for s, e, lab in unambiguous):
            return True
        cues = self._cues.get(label)
        if not cues:
            return False
        norms = context.norms
        present = set(norms[sent_start:start].tolist()) | set(norms[end:sent_end].tolist())
        return any(all(n in present for n in cue) for cue in cues)

    def _score(self, span: Span, in_context: bool) -> float:
        if in_context:
            return SCORE_IN_CONTEXT
        surface = " ".join(span.text.casefold().split())
        return SCORE_EXACT if surface in self._exact.get(span.label_, ()) else SCORE_INFLECTED

    def to_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "labels.json").write_text(json.dumps(self.entries, ensure_ascii=False), encoding="utf-8")

    def from_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> "SkillMatcher":
        entries = json.loads((Path(path) / "labels.json").read_text(encoding="utf-8"))
        self.set_labels(entries)
        return self
