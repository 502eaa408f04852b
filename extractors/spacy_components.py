"""spaCy components of the skill pipeline, registered as factories.

No `from __future__ import annotations` here: spaCy validates factory arguments
from their type hints.

- ``line_sentencizer``: sentences end at line breaks and at . ! ? … ; (job ads are lists).
- ``skill_normalizer``: sets ``token.norm_`` to the lower-cased lemma (simplemma, per
  language; Georgian case suffixes stripped), so "электронной почтой" matches the label
  "электронная почта".
- ``skill_matcher``: a PhraseMatcher on NORM over every label of every concept; writes
  ``doc.spans["skills"]`` (label = concept id) with ``attrs["scores"]``.
"""

import json
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import numpy
import simplemma
from spacy.attrs import IS_SPACE, LOWER, NORM, ORTH, SENT_START
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import compile_infix_regex, compile_suffix_regex, filter_spans, registry

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


@registry.callbacks("skillpulse.tokenizer_rules.v1")
def make_tokenizer_rules() -> Callable[[Language], Language]:
    """Split "C++/C#" at the slash, "Python-ის" before a Georgian suffix, "1C." before the dot."""

    def apply(nlp: Language) -> Language:
        infixes = list(nlp.Defaults.infixes or []) + [r"/", r"(?<=[\w+#])-(?=[\u10a0-\u10ff])"]
        nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
        suffixes = list(nlp.Defaults.suffixes or []) + [r"(?<=\d[^\W\d_])\."]
        nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
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


class LineSentencizer:
    """Start a sentence after a line break or sentence-final punctuation.

    Sentence starts are written in one ``Doc.from_array`` call: setting
    ``token.is_sent_start`` token by token costs O(n) each in spaCy.
    """

    def __init__(self) -> None:
        self._ends: Dict[int, bool] = {}  # orth hash -> ends a sentence (punctuation or a line break)

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        ends = self._ends
        strings = doc.vocab.strings
        attrs = doc.to_array([ORTH, IS_SPACE]).tolist()
        starts = numpy.full(len(doc), -1, dtype="int64")
        prev_end = True
        for i, (orth, is_space) in enumerate(attrs):
            end = ends.get(orth)
            if end is None:
                text = strings[orth]
                end = ends[orth] = text in SENTENCE_END or "\n" in text
            if is_space:  # white space stays with the sentence before it
                prev_end = prev_end or end
                continue
            if prev_end:
                starts[i] = 1
            prev_end = end
        starts[0] = 1
        doc.from_array([SENT_START], starts.astype("uint64"))
        return doc


@Language.factory("skill_normalizer", default_config={"lang": "en"})
def make_skill_normalizer(nlp: Language, name: str, lang: str) -> "SkillNormalizer":
    return SkillNormalizer(lang=lang)


class SkillNormalizer:
    """Set ``token.norm_`` to the token's lower-cased lemma in the ad's language."""

    def __init__(self, *, lang: str) -> None:
        self.lang = lang
        self._langs = _LEMMA_LANGS.get(lang, ())
        self._cache: Dict[int, int] = {}  # hash of the lower form -> hash of the norm

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        cache = self._cache
        strings = doc.vocab.strings
        lowers = doc.to_array(LOWER)
        norms = numpy.empty_like(lowers)
        for i, key in enumerate(lowers.tolist()):
            norm = cache.get(key)
            if norm is None:
                if len(cache) > _MAX_CACHE:
                    cache.clear()
                norm = cache[key] = strings.add(self.norm(strings[key]))
            norms[i] = norm
        doc.from_array([NORM], norms)
        return doc

    def norm(self, lower: str) -> str:
        """The normal form of one lower-cased token."""
        if len(lower) < 4 or not lower.isalpha():
            return lower
        lemma = lower
        if self._langs:
            lemma = simplemma.lemmatize(lower, lang=self._langs).casefold()
        if lemma == lower and _GEORGIAN.match(lower):
            for suffix in _KA_SUFFIXES:
                if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
                    return lower[: -len(suffix)]
        return lemma


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
        self._cues: Dict[str, List[tuple]] = {}

    def initialize(self, get_examples: Optional[Callable[[], Iterable]] = None, *,
                   nlp: Optional[Language] = None,
                   labels: Optional[List[Dict[str, object]]] = None) -> None:
        self.set_labels(labels or [])

    def set_labels(self, entries: List[Dict[str, object]]) -> None:
        """Build the matcher from label entries (see taxonomy.patterns.matcher_labels)."""
        self.entries = list(entries)
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self._exact, self._cased, self._cues = {}, set(), {}
        normalise = self._normaliser()
        patterns: Dict[str, List[Doc]] = {}
        for entry in self.entries:
            concept, label = str(entry["concept"]), str(entry["label"])
            key = concept + "~" if entry.get("ambiguous") else concept
            patterns.setdefault(key, []).append(normalise(self.nlp.make_doc(label)))
            self._exact.setdefault(concept, set()).add(" ".join(label.casefold().split()))
            if entry.get("ambiguous") and label != label.lower():
                self._cased.add(concept)
            if entry.get("context") and concept not in self._cues:
                cues = [normalise(self.nlp.make_doc(str(c))) for c in entry["context"]]  # type: ignore[union-attr]
                self._cues[concept] = [tuple(t.norm_ for t in cue) for cue in cues if len(cue)]
        for key, docs in patterns.items():
            self.matcher.add(key, docs)

    def _normaliser(self) -> Callable[[Doc], Doc]:
        if "skill_normalizer" in self.nlp.pipe_names:
            return self.nlp.get_pipe("skill_normalizer")
        return lambda doc: doc

    def __call__(self, doc: Doc) -> Doc:
        found: List[Span] = []
        pending: List[Span] = []
        for match_id, start, end in self.matcher(doc):
            key = self.nlp.vocab.strings[match_id]
            span = Span(doc, start, end, label=key.rstrip("~"))
            (pending if key.endswith("~") else found).append(span)
        for span in pending:
            if self._confirmed(span, found):
                found.append(span)
        spans = filter_spans(found)
        scores = [self._score(span, span in pending) for span in spans]
        group = SpanGroup(doc, name=self.span_key, spans=spans, attrs={"scores": scores})
        doc.spans[self.span_key] = group
        return doc

    def _confirmed(self, span: Span, unambiguous: List[Span]) -> bool:
        surface = span.text
        if span.label_ in self._cased and surface == surface.lower():
            return False
        sent = span.sent
        if any(s.start >= sent.start and s.end <= sent.end and s.label_ != span.label_ for s in unambiguous):
            return True
        norms = {t.norm_ for t in sent if not (span.start <= t.i < span.end)}
        return any(all(n in norms for n in cue) for cue in self._cues.get(span.label_, []))

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
