"""The trained half of the extractor: sentence → competences, and its spaCy component.

The matcher finds taxonomy labels; this classifier finds competences that a sentence
demands without naming a label ("you will run our social media pages", "ведение
отчётности в таблицах"). It is a one-vs-rest logistic regression over sparse TF-IDF
features of the sentence's *normalised* text (the lower-cased lemmas the
``skill_normalizer`` writes to ``token.norm_``): words, word bigrams and 5-letter word
prefixes (which carry across inflection the lemmatiser misses; character n-grams were
5× slower to compute). Scores are Platt-calibrated probabilities.

Training data (``train_competence_classifier``; never the labelled competence sentences):

- the taxonomy itself: every label of every concept in every language → the concept's
  competences; competence titles (all languages) and descriptions → that competence;
- silver sentences: ads (the bundled sample and, when given, the rekrute ads and SkillSpan
  train sentences from the shared folder) run through the matcher; the matched spans are
  removed (``MASK``), so the model learns the words *around* a skill, and the sentence is
  labelled with the matched concepts' competences. Sentences without any match are
  down-weighted negatives.

The model is a plain dict of arrays and strings saved with skops (see
``extractors.persistence``): vocabularies, IDF weights, a pruned sparse coefficient
matrix, intercepts and the calibration. ``competence_classifier`` (the factory) scores
every sentence of a batch of Docs in one matrix product and writes
``doc.spans["competences"]``: one sentence span per (sentence, competence) with
probability ≥ the threshold, labelled with the competence id, ``attrs["scores"]``.

No `from __future__ import annotations` here: spaCy validates factory arguments from
their type hints.
"""

import hashlib
import json
import platform
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
import scipy.sparse as sp
from spacy.attrs import NORM, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

DATA_DIR = Path(__file__).parent / "data"
MODEL_PATH = DATA_DIR / "competence_classifier.skops"
CARD_PATH = DATA_DIR / "competence_classifier.card.json"
MODEL_FORMAT = "skillpulse-competence-classifier"
MODEL_FORMAT_VERSION = 1
SPAN_KEY = "competences"
SEED = 20261130
# What a matched label is replaced with in a silver sentence: nothing (the span is cut).
MASK = " "
DEFAULT_THRESHOLD = 0.5
# Sentences with fewer words (tokens with a letter) are not classified: headings such as
# "Требования:" alone scored high through the taxonomy's short labels ("анализ требований").
MIN_WORDS = 3
THRESHOLD_CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7)

TRAIN_CONFIG: Dict[str, Any] = {
    "seed": SEED,
    "prefix_length": 5,
    "min_df": 2,
    "max_features": 40000,
    "C": 4.0,
    "negative_weight": 0.3,
    "label_weight": 1.0,
    "label_repeats": 2,
    "prune": 0.05,
    "max_weights_per_competence": 2500,
    "calibration_share": 0.15,
    "max_silver_per_source": 40000,
}

# Shared data (relative to the shared folder) used when present.
SKILLSPAN_DIR = Path("data/benchmarks/skillspan")
REKRUTE = Path("data/jobads/rekrute-2021/rekrut_31_07_21_translated.json")
_SPACE = re.compile(r"\s+")
_MAX_SLOTS = 2_000_000  # distinct NORM hashes the classifier keeps tables for (cleared beyond)
_EMPTY = numpy.zeros((0, 2), dtype="uint64")


# --------------------------------------------------------------------------- the model


class CompetenceClassifier:
    """Score normalised sentences against every competence (vectorised per batch)."""

    def __init__(self, model: Dict[str, Any]) -> None:
        if model.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a competence classifier model (format {model.get('format')!r})")
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.model = model
        self.labels: List[str] = list(model["labels"])
        self.vectorizer = _vectorizer(TfidfVectorizer, int(model["prefix_length"]), model["vocab"], model["idf"])
        # stored sparse (pruned), used dense: a sparse × dense product is ~10× faster than sparse × sparse
        self.coef = sp.csr_matrix(
            (model["coef_data"], model["coef_indices"], model["coef_indptr"]),
            shape=(len(model["vocab"]), len(self.labels)),
        ).toarray()
        self.intercept = numpy.asarray(model["intercept"], dtype="float32")
        self.prefix_length = int(model["prefix_length"])
        self._idf = numpy.asarray(model["idf"], dtype="float32")
        self.vectorizer_vocabulary: Dict[str, int] = self.vectorizer.vocabulary_
        # the words that can start / end a bigram term (split at every space: exact, not a guess)
        self._bigram_firsts: set = set()
        self._bigram_seconds: set = set()
        for term in self.vectorizer_vocabulary:
            for i, ch in enumerate(term):
                if ch == " ":
                    self._bigram_firsts.add(term[:i])
                    self._bigram_seconds.add(term[i + 1:])
        self._reset_slots()
        self.platt = (float(model["platt_a"]), float(model["platt_b"]))

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of normalised texts; a text of fewer than MIN_WORDS words gets an empty row."""
        x = self.vectorizer.transform(texts).tocsr()
        short = [i for i, t in enumerate(texts) if sum(1 for w in t.split() if _has_letter(w)) < MIN_WORDS]
        if short:
            keep = numpy.ones(x.shape[0], dtype="float32")
            keep[short] = 0.0
            x = sp.csr_matrix(sp.diags(keep) @ x)
            x.eliminate_zeros()
        return x

    def doc_features(self, docs: Sequence[Doc]) -> Tuple[sp.csr_matrix, List[List[Tuple[int, int]]]]:
        """The features of every sentence of `docs` straight from the tokens' NORM hashes.

        Equal to ``features`` of the sentences' normalised texts (``norm_sentences``), without
        building strings. Returns (one row per sentence, each Doc's (start, end) token bounds
        per sentence).
        """
        x, starts, ends, doc_rows = self._batch_features(docs)
        bounds = []
        for i in range(len(docs)):
            lo, hi = doc_rows[i], doc_rows[i + 1]
            bounds.append(list(zip(starts[lo:hi].tolist(), ends[lo:hi].tolist())))  # noqa: B905 (same length)
        return x, bounds

    def _batch_features(self, docs: Sequence[Doc]
                        ) -> Tuple[sp.csr_matrix, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """Sentence features of a batch of Docs, vectorised over the batch's tokens.

        Each distinct NORM hash is looked up once (cached across batches) in per-hash tables:
        word id, ``~prefix`` id, has a letter, white space, may start / end a bigram term.
        Bigrams are looked up only for adjacent pairs that may form a term. Returns (rows,
        sentence start tokens, sentence end tokens, the first row of each Doc (+ the total)).
        """
        if len(self._slot_of) > _MAX_SLOTS:
            self._reset_slots()
        arrays = [doc.to_array([SENT_START, NORM]) if len(doc) else _EMPTY for doc in docs]
        lengths = numpy.fromiter((len(a) for a in arrays), dtype=numpy.int64, count=len(arrays))
        doc_start = numpy.concatenate(([0], numpy.cumsum(lengths)))
        if doc_start[-1]:
            allarr = numpy.concatenate(arrays)
        else:
            allarr = _EMPTY
        n_tok = len(allarr)
        is_start = allarr[:, 0] == 1
        nonempty = lengths > 0
        firsts = doc_start[:-1][nonempty]
        # a Doc without any sentence start is one sentence from its first token
        per_doc = numpy.add.reduceat(is_start.astype(numpy.int64), firsts) if len(firsts) else numpy.zeros(0)
        is_start[firsts[per_doc == 0]] = True
        cum = numpy.cumsum(is_start)
        tok_row = cum - 1
        # tokens before their Doc's first sentence start belong to no sentence
        before = numpy.zeros(n_tok, dtype=numpy.int64)
        if len(firsts):
            base = numpy.where(firsts > 0, cum[firsts - 1], 0)
            before = numpy.repeat(base, lengths[nonempty])
        in_sent = tok_row >= before
        starts_global = numpy.flatnonzero(is_start)
        n_rows = len(starts_global)
        doc_of_start = numpy.searchsorted(doc_start, starts_global, side="right") - 1
        doc_rows = numpy.searchsorted(doc_of_start, numpy.arange(len(docs) + 1), side="left")
        next_start = numpy.append(starts_global[1:], n_tok)
        # a sentence ends at the next start or at the end of its Doc
        sent_end_global = numpy.minimum(next_start, doc_start[doc_of_start + 1])
        starts = starts_global - doc_start[doc_of_start]
        ends = sent_end_global - doc_start[doc_of_start]

        uniq, inverse = numpy.unique(allarr[:, 1], return_inverse=True)
        slot = self._slots(uniq, docs[0].vocab.strings if len(docs) else None)[inverse.reshape(-1)]
        word = self._word[slot]
        keep = numpy.flatnonzero(in_sent & (word != -2))  # white space: no feature, no bigram break
        s, sl, word = tok_row[keep], slot[keep], word[keep]
        n_words = numpy.bincount(s, weights=self._letter[sl], minlength=n_rows)
        prefix = self._prefix[sl]
        pair = (s[1:] == s[:-1]) & self._first[sl[:-1]] & self._second[sl[1:]]
        pair_at = numpy.flatnonzero(pair)
        bigram = self._bigrams(sl[pair_at], sl[pair_at + 1], docs[0].vocab.strings if len(docs) else None)
        hit_w, hit_p, hit_b = word >= 0, prefix >= 0, bigram >= 0
        rows = numpy.concatenate((s[hit_w], s[hit_p], s[pair_at + 1][hit_b]))
        cols = numpy.concatenate((word[hit_w], prefix[hit_p], bigram[hit_b]))
        ok = n_words[rows] >= MIN_WORDS  # too short to classify: an empty row
        rows, cols = rows[ok], cols[ok]
        counts = sp.csr_matrix((numpy.ones(len(rows), dtype="float32"), (rows, cols)),
                               shape=(n_rows, len(self.vectorizer_vocabulary)), dtype="float32")
        counts.sum_duplicates()
        counts.data = (numpy.log(counts.data) + 1.0) * self._idf[counts.indices]
        norms2 = numpy.sqrt(numpy.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        norms2[norms2 == 0] = 1.0
        x = sp.csr_matrix(sp.diags(1.0 / norms2).astype("float32") @ counts)
        return x, starts, ends, doc_rows

    def _reset_slots(self) -> None:
        self._slot_of: Dict[int, int] = {}  # NORM hash -> row of the per-hash tables below
        self._slot_hash: List[int] = []
        self._bigram_of: Dict[int, int] = {}  # slot pair -> vocabulary id of the bigram (-1 none)
        # the tables, with room to grow (doubled when full: adding rows stays linear)
        self._word = numpy.zeros(1024, dtype=numpy.int64)  # vocabulary id of the word; -1 none, -2 white space
        self._prefix = numpy.zeros(1024, dtype=numpy.int64)  # vocabulary id of its ~prefix; -1 none
        self._letter = numpy.zeros(1024, dtype=numpy.float64)  # 1.0 when it has a letter (counts as a word)
        self._first = numpy.zeros(1024, dtype=bool)  # may be the first word of a bigram term
        self._second = numpy.zeros(1024, dtype=bool)  # may be the second word of a bigram term

    def _slots(self, hashes: numpy.ndarray, strings: Any) -> numpy.ndarray:
        """Table rows of distinct NORM hashes, adding rows for hashes not seen before."""
        slot_of = self._slot_of
        lo = len(self._slot_hash)
        out = numpy.empty(len(hashes), dtype=numpy.int64)
        new: List[int] = []
        for j, h in enumerate(hashes.tolist()):
            k = slot_of.get(h)
            if k is None:
                k = slot_of[h] = len(self._slot_hash)
                self._slot_hash.append(h)
                new.append(h)
            out[j] = k
        if new:
            hi = lo + len(new)
            if hi > len(self._word):
                size = max(2 * len(self._word), hi)
                for name in ("_word", "_prefix", "_letter", "_first", "_second"):
                    old = getattr(self, name)
                    grown = numpy.zeros(size, dtype=old.dtype)
                    grown[:lo] = old[:lo]
                    setattr(self, name, grown)
            vocab, n = self.vectorizer_vocabulary, self.prefix_length
            texts = [strings[h] for h in new]
            self._word[lo:hi] = [-2 if t.isspace() else vocab.get(t, -1) for t in texts]
            self._prefix[lo:hi] = [vocab.get("~" + t[:n], -1) if len(t) > n + 1 and not t.isspace() else -1
                                   for t in texts]
            self._letter[lo:hi] = [1.0 if _has_letter(t) else 0.0 for t in texts]
            self._first[lo:hi] = [t in self._bigram_firsts for t in texts]
            self._second[lo:hi] = [t in self._bigram_seconds for t in texts]
        return out

    def _bigrams(self, left: numpy.ndarray, right: numpy.ndarray, strings: Any) -> numpy.ndarray:
        """Vocabulary ids of the bigrams of (left, right) slot pairs; -1 for none."""
        if not len(left):
            return numpy.zeros(0, dtype=numpy.int64)
        keys, inverse = numpy.unique((left << 32) | right, return_inverse=True)
        cache, vocab, hashes = self._bigram_of, self.vectorizer_vocabulary, self._slot_hash
        ids = numpy.empty(len(keys), dtype=numpy.int64)
        for j, key in enumerate(keys.tolist()):
            bid = cache.get(key)
            if bid is None:
                bid = cache[key] = vocab.get(strings[hashes[key >> 32]] + " " + strings[hashes[key & 0xFFFFFFFF]], -1)
            ids[j] = bid
        return ids[inverse.reshape(-1)]

    def proba_from_features(self, x: sp.csr_matrix) -> numpy.ndarray:
        """Calibrated probabilities; 0 for an empty row (no known word: no evidence).

        Only the rows with a feature are multiplied (the others would be set to 0 anyway).
        """
        a, b = self.platt
        probs = numpy.zeros((x.shape[0], len(self.labels)), dtype="float32")
        rows = numpy.flatnonzero(numpy.diff(x.indptr))
        if len(rows):
            scores = numpy.asarray(x[rows] @ self.coef) + self.intercept
            probs[rows] = 1.0 / (1.0 + numpy.exp(-(a * scores + b)))
        return probs

    def decision(self, texts: Sequence[str]) -> numpy.ndarray:
        """Raw scores, (n texts × n competences)."""
        if not len(texts):
            return numpy.zeros((0, len(self.labels)), dtype="float32")
        return numpy.asarray(self.features(texts) @ self.coef) + self.intercept

    def predict_proba(self, texts: Sequence[str]) -> numpy.ndarray:
        """Calibrated probabilities, (n texts × n competences)."""
        if not len(texts):
            return numpy.zeros((0, len(self.labels)), dtype="float32")
        return self.proba_from_features(self.features(texts))

    def predict(self, texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> List[Dict[str, float]]:
        """{competence id: probability} for each text, at or above `threshold`."""
        probs = self.predict_proba(texts)
        out: List[Dict[str, float]] = []
        for row in probs:
            hits = numpy.flatnonzero(row >= threshold)
            out.append({self.labels[j]: float(row[j]) for j in hits})
        return out


class SentenceAnalyzer:
    """Features of a normalised sentence: its words, word bigrams and ``~prefix`` of each long word.

    The prefixes (first `prefix_length` letters of words longer than that + 1) tie together
    inflected forms the lemmatiser leaves apart and related words ("тестирование",
    "тестировщик"); they cost far less than character n-grams.
    """

    def __init__(self, prefix_length: int) -> None:
        self.prefix_length = prefix_length

    def __call__(self, text: str) -> List[str]:
        words = text.split()
        n = self.prefix_length
        out = words + [a + " " + b for a, b in zip(words, words[1:])]  # noqa: B905 (one shorter)
        out += ["~" + w[:n] for w in words if len(w) > n + 1]
        return out


def _has_letter(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


def _vectorizer(cls: Any, prefix_length: int, vocab: Optional[Sequence[str]] = None, idf: Any = None,
                **fit_args: Any) -> Any:
    vec = cls(analyzer=SentenceAnalyzer(prefix_length), sublinear_tf=True, dtype=numpy.float32,
              vocabulary={term: i for i, term in enumerate(vocab)} if vocab is not None else None, **fit_args)
    if idf is not None:
        vec.idf_ = numpy.asarray(idf, dtype=numpy.float64)
    return vec


@lru_cache(maxsize=4)
def load_classifier(path: str = "") -> CompetenceClassifier:
    """The classifier in `path` (default: the shipped model), loaded once per process."""
    from extractors.persistence import load_model

    return CompetenceClassifier(load_model(Path(path) if path else MODEL_PATH))


def file_sha256(path: Any) -> str:
    """SHA-256 of a file's bytes (as ``extractors.persistence.file_sha256``).

    Here so that importing this module (which every extract process does) does not import
    skops and scikit-learn: they are imported when a model is loaded or trained.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_hash(path: Optional[Path] = None) -> str:
    """The first 8 hex digits of the model file's SHA-256 (names the model in MODEL_VERSION)."""
    path = path or MODEL_PATH
    if not path.is_file():
        return "none"
    return file_sha256(path)[:8]


# --------------------------------------------------------------------------- the spaCy component


def norm_sentences(doc: Doc) -> List[Tuple[int, int, str]]:
    """(start token, end token, normalised text) of each sentence of a Doc."""
    if not len(doc):
        return []
    starts = numpy.flatnonzero(doc.to_array(SENT_START) == 1).tolist() or [0]
    bounds = starts[1:] + [len(doc)]
    strings = doc.vocab.strings
    norms = [strings[h] for h in doc.to_array(NORM).tolist()]
    out = []
    for start, end in zip(starts, bounds, strict=True):
        text = " ".join(n for n in norms[start:end] if not n.isspace())
        out.append((start, end, text))
    return out


@Language.factory(
    "competence_classifier",
    default_config={"span_key": SPAN_KEY, "threshold": DEFAULT_THRESHOLD, "model": ""},
)
def make_competence_classifier(nlp: Language, name: str, span_key: str, threshold: float,
                               model: str) -> "CompetenceClassifierComponent":
    return CompetenceClassifierComponent(name, span_key=span_key, threshold=threshold, model=model)


class CompetenceClassifierComponent:
    """Write ``doc.spans[span_key]``: sentence spans labelled by competence, with ``attrs["scores"]``.

    ``pipe`` classifies all sentences of a batch of Docs in one call.
    """

    def __init__(self, name: str, *, span_key: str, threshold: float, model: str) -> None:
        self.name = name
        self.span_key = span_key
        self.threshold = float(threshold)
        self.model_path = model
        self._classifier: Optional[CompetenceClassifier] = None

    @property
    def classifier(self) -> "CompetenceClassifier":
        """The model, loaded at first use (so a pipeline builds even before a model is trained)."""
        if self._classifier is None:
            self._classifier = load_classifier(self.model_path)
        return self._classifier

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self._batch([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        batch: List[Doc] = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._batch(batch)
                batch = []
        if batch:
            yield from self._batch(batch)

    def _batch(self, docs: List[Doc]) -> List[Doc]:
        clf = self.classifier
        x, starts, ends, doc_rows = clf._batch_features(docs)
        probs = clf.proba_from_features(x)
        labels = clf.labels
        # every (sentence, competence) at or above the threshold, in row order, then label order
        hit_rows, hit_cols = numpy.nonzero(probs >= self.threshold)
        hit_scores = probs[hit_rows, hit_cols].tolist()
        cut = numpy.searchsorted(hit_rows, doc_rows).tolist()
        hit_starts, hit_ends = starts[hit_rows].tolist(), ends[hit_rows].tolist()
        hit_cols = hit_cols.tolist()
        for i, doc in enumerate(docs):
            lo, hi = cut[i], cut[i + 1]
            spans = [Span(doc, hit_starts[k], hit_ends[k], label=labels[hit_cols[k]]) for k in range(lo, hi)]
            scores = [round(hit_scores[k], 4) for k in range(lo, hi)]
            doc.spans[self.span_key] = SpanGroup(doc, name=self.span_key, spans=spans, attrs={"scores": scores})
        return docs

    def to_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "cfg.json").write_text(json.dumps({"threshold": self.threshold, "model": self.model_path}))

    def from_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> "CompetenceClassifierComponent":
        cfg = json.loads((Path(path) / "cfg.json").read_text())
        self.threshold = float(cfg["threshold"])
        return self


# --------------------------------------------------------------------------- training data


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def sample_ad_texts() -> List[Tuple[str, str]]:
    """(text, language) of the bundled sample ads, normalised as ingest does."""
    import csv

    from flows.records import Posting, to_posting

    jsonl, csv_path = sample_files()
    records: List[Any] = []
    for line in jsonl.read_bytes().splitlines():
        try:  # lines ingest would quarantine (bad bytes, bad JSON) are skipped
            records.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    with csv_path.open(encoding="utf-8", errors="replace", newline="") as handle:
        records.extend(csv.DictReader(handle))
    out = []
    for record in records:
        posting = to_posting(record, "sample")
        if isinstance(posting, Posting):
            out.append((posting.text, posting.language))
    return out


def sample_files() -> List[Path]:
    root = Path(__file__).resolve().parent.parent / "flows" / "sample_data"
    return [root / "ads.jsonl", root / "ads.csv"]


def silver_sentences(nlp_for: Any, texts: Iterable[Tuple[str, str]], taxonomy: Any
                     ) -> Iterator[Tuple[str, Tuple[str, ...], str]]:
    """(normalised sentence with matched labels cut, competences, language) of texts, sentence by sentence."""
    by_lang: Dict[str, List[str]] = {}
    for text, lang in texts:
        by_lang.setdefault(lang, []).append(text)
    for lang in sorted(by_lang):
        nlp = nlp_for(lang)
        for doc in nlp.pipe(by_lang[lang], batch_size=256):
            group = doc.spans.get("skills") or []
            norms = [t.norm_ for t in doc]
            for start, end, _ in norm_sentences(doc):
                comps: set = set()
                cut: set = set()
                for span in group:
                    if span.start >= start and span.end <= end:
                        concept = taxonomy.concepts.get(span.label_)
                        if concept is not None:
                            comps.update(concept.competences)
                            cut.update(range(span.start, span.end))
                words = [norms[i] if i not in cut else MASK for i in range(start, end)]
                text = _clean(" ".join(w for w in words if not w.isspace()))
                if len(text.split()) >= 2:
                    yield text, tuple(sorted(comps)), lang


def read_skillspan_train(shared: Path) -> List[str]:
    out = []
    for subset in ("tech", "house"):
        path = shared / SKILLSPAN_DIR / f"skillspan_{subset}_train.conll"
        sentence: List[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                if sentence:
                    out.append(" ".join(sentence))
                sentence = []
            else:
                sentence.append(line.split("\t")[0])
        if sentence:
            out.append(" ".join(sentence))
    return out


def read_rekrute(shared: Path) -> List[str]:
    data = json.loads((shared / REKRUTE).read_text(encoding="utf-8"))
    return [line for ad in data.values() for line in ad.get("skills_text") or [] if line]


def taxonomy_examples(normalise_for: Any, taxonomy: Any, labels: Sequence[str]
                      ) -> List[Tuple[str, Tuple[str, ...], str]]:
    """Concept labels (every language) → the concept's competences; competence titles and descriptions."""
    known = set(labels)
    out: List[Tuple[str, Tuple[str, ...], str]] = []
    for concept in sorted(taxonomy.concepts.values(), key=lambda c: c.id):
        comps = tuple(sorted(c for c in concept.competences if c in known))
        if not comps:
            continue
        for label in concept.labels:
            out.append((normalise_for(label.lang, label.text), comps, label.lang))
    for comp in sorted(taxonomy.competences.values(), key=lambda c: c.id):
        if comp.id not in known:
            continue
        for lang, title in sorted(comp.labels.items()):
            out.append((normalise_for(lang, title), (comp.id,), lang))
        if comp.description:
            for part in re.split(r"(?<=\.)\s+", comp.description):
                if part.strip():
                    out.append((normalise_for("en", part), (comp.id,), "en"))
    return [(t, c, lang) for t, c, lang in out if t]


# --------------------------------------------------------------------------- training


def _training_set(shared: Optional[Path], taxonomy: Any, labels: Sequence[str], config: Dict[str, Any]
                  ) -> Tuple[List[str], List[Tuple[str, ...]], List[str], Dict[str, Any]]:
    from extractors.nlp import build_nlp

    pipes: Dict[str, Any] = {}

    def nlp_for(lang: str) -> Any:
        if lang not in pipes:
            nlp = build_nlp(lang, "builtin")
            if "competence_classifier" in nlp.pipe_names:  # the model being trained is not needed
                nlp.remove_pipe("competence_classifier")
            pipes[lang] = nlp
        return pipes[lang]

    def normalise_for(lang: str, text: str) -> str:
        nlp = nlp_for(lang if lang in ("en", "ru", "uk", "ro", "ka", "be") else "en")
        doc = nlp.get_pipe("skill_normalizer")(nlp.make_doc(text))
        return _clean(" ".join(t.norm_ for t in doc))

    files: Dict[str, str] = {}
    rows: List[Tuple[str, Tuple[str, ...], str]] = []
    sources: List[str] = []

    def add(part: Iterable[Tuple[str, Tuple[str, ...], str]], name: str) -> None:
        part = list(part)
        rows.extend(part)
        sources.extend([name] * len(part))

    tax_rows = taxonomy_examples(normalise_for, taxonomy, labels)
    add(tax_rows * int(config["label_repeats"]), "taxonomy")
    for path in sample_files():
        files[f"flows/sample_data/{path.name}"] = file_sha256(path)
    add(silver_sentences(nlp_for, sample_ad_texts(), taxonomy), "sample-ads-silver")
    if shared is not None:
        rekrute = shared / REKRUTE
        files[str(REKRUTE)] = file_sha256(rekrute)
        add(silver_sentences(nlp_for, ((t, "en") for t in read_rekrute(shared)), taxonomy), "rekrute-silver")
        for subset in ("tech", "house"):
            path = shared / SKILLSPAN_DIR / f"skillspan_{subset}_train.conll"
            files[str(path.relative_to(shared))] = file_sha256(path)
        add(silver_sentences(nlp_for, ((t, "en") for t in read_skillspan_train(shared)), taxonomy),
            "skillspan-train-silver")
    # one copy of each (text, labels) per source; a bounded number per source
    rng = numpy.random.default_rng(int(config["seed"]))
    seen: set = set()
    texts, targets, kinds = [], [], []
    by_source: Dict[str, List[int]] = {}
    for i, (text, comps, _lang) in enumerate(rows):
        key = (text, comps, sources[i])
        if key in seen and sources[i] != "taxonomy":
            continue
        seen.add(key)
        by_source.setdefault(sources[i], []).append(i)
    keep: List[int] = []
    cap = int(config["max_silver_per_source"])
    for name in sorted(by_source):
        idx = by_source[name]
        if name != "taxonomy" and len(idx) > cap:
            idx = sorted(rng.choice(idx, size=cap, replace=False).tolist())
        keep.extend(idx)
    keep.sort()
    for i in keep:
        texts.append(rows[i][0])
        targets.append(tuple(c for c in rows[i][1] if c in set(labels)))
        kinds.append(sources[i])
    about = {
        "files_sha256": files,
        "used_shared_folder": shared is not None,
        "sentences": {name: kinds.count(name) for name in sorted(set(kinds))},
        "positive_sentences": {name: sum(1 for t, k in zip(targets, kinds, strict=True) if k == name and t)
                               for name in sorted(set(kinds))},
        "taxonomy_version": taxonomy.version,
    }
    return texts, targets, kinds, about


def fit_model(texts: Sequence[str], targets: Sequence[Tuple[str, ...]], kinds: Sequence[str],
              labels: Sequence[str], config: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Fit vectorisers, one-vs-rest logistic regressions and the calibration; return (model dict, metrics)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MultiLabelBinarizer

    seed = int(config["seed"])
    rng = numpy.random.default_rng(seed)
    n = len(texts)
    # a calibration split of silver sentences (taxonomy rows always train)
    silver = numpy.array([k != "taxonomy" for k in kinds])
    calib = silver & (rng.random(n) < float(config["calibration_share"]))
    train = ~calib
    vectorizer = _vectorizer(TfidfVectorizer, int(config["prefix_length"]), min_df=int(config["min_df"]),
                             max_features=int(config["max_features"]))
    vectorizer.fit([t for t, m in zip(texts, train, strict=True) if m])
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    x = vectorizer.transform(texts)
    y = MultiLabelBinarizer(classes=list(labels)).fit_transform(targets)
    weights = numpy.where(y.sum(axis=1) > 0, 1.0, float(config["negative_weight"]))
    weights[numpy.array([k == "taxonomy" for k in kinds])] = float(config["label_weight"])
    coefs, intercepts = [], []
    xt, wt = x[train], weights[train]
    for j in range(len(labels)):
        yj = y[train, j]
        if yj.sum() == 0:
            coefs.append(numpy.zeros(x.shape[1], dtype="float32"))
            intercepts.append(-10.0)
            continue
        clf = LogisticRegression(C=float(config["C"]), solver="liblinear", random_state=seed, max_iter=200)
        clf.fit(xt, yj, sample_weight=wt)
        coefs.append(clf.coef_[0].astype("float32"))
        intercepts.append(float(clf.intercept_[0]))
    coef = numpy.vstack(coefs).T  # features × labels
    # keep the model small: per competence, only the largest weights (and none below `prune`)
    keep_n = int(config["max_weights_per_competence"])
    for j in range(coef.shape[1]):
        column = numpy.abs(coef[:, j])
        if numpy.count_nonzero(column) > keep_n:
            cutoff = numpy.partition(column, -keep_n)[-keep_n]
            coef[column < cutoff, j] = 0.0
    coef[numpy.abs(coef) < float(config["prune"])] = 0.0
    coef_csr = sp.csr_matrix(coef)
    intercept = numpy.asarray(intercepts, dtype="float32")
    # Platt scaling of the raw scores on the calibration split
    raw = numpy.asarray((x[calib] @ coef_csr).todense()) + intercept
    platt = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    platt.fit(raw.reshape(-1, 1), y[calib].reshape(-1))
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    model = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "labels": list(labels),
        "prefix_length": int(config["prefix_length"]),
        "vocab": vocab,
        "idf": vectorizer.idf_.astype("float32"),
        "coef_data": coef_csr.data.astype("float32"),
        "coef_indices": coef_csr.indices.astype("int32"),
        "coef_indptr": coef_csr.indptr.astype("int32"),
        "intercept": intercept,
        "platt_a": a,
        "platt_b": b,
    }
    probs_raw = 1.0 / (1.0 + numpy.exp(-raw))
    probs = 1.0 / (1.0 + numpy.exp(-(a * raw + b)))
    metrics = {
        "calibration_sentences": int(calib.sum()),
        "train_sentences": int(train.sum()),
        "features": int(x.shape[1]),
        "nonzero_coefficients": int(coef_csr.nnz),
        "calibration_ece_raw": round(_ece(probs_raw.ravel(), y[calib].ravel()), 4),
        "calibration_ece_platt": round(_ece(probs.ravel(), y[calib].ravel()), 4),
        "calibration_reliability": _reliability(probs.ravel(), y[calib].ravel()),
    }
    return model, metrics


def _ece(probs: numpy.ndarray, truth: numpy.ndarray, bins: int = 10) -> float:
    edges = numpy.linspace(0, 1, bins + 1)
    idx = numpy.clip(numpy.digitize(probs, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(probs[mask].mean() - truth[mask].mean())
    return float(total / max(len(probs), 1))


def _reliability(probs: numpy.ndarray, truth: numpy.ndarray) -> List[Dict[str, float]]:
    out = []
    for lo in (0.1, 0.3, 0.5, 0.7, 0.9):
        mask = (probs >= lo - 0.1) & (probs < lo + 0.1)
        if mask.any():
            out.append({"bin": f"{lo - 0.1:.1f}-{lo + 0.1:.1f}", "n": int(mask.sum()),
                        "mean_probability": round(float(probs[mask].mean()), 3),
                        "positive_rate": round(float(truth[mask].mean()), 3)})
    return out


def train_competence_classifier(shared_dir: Optional[Any] = None, output: Optional[Any] = None,
                                config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Train the classifier reproducibly, save it (skops) and its card beside it; return the card.

    `shared_dir` is the project's shared folder (rekrute ads and SkillSpan train); None or a
    missing folder trains on the taxonomy and the bundled sample ads only.
    """
    from extractors.persistence import save_model
    from taxonomy.load import load_taxonomy

    t0 = time.perf_counter()
    config = {**TRAIN_CONFIG, **(config or {})}
    shared = Path(shared_dir) if shared_dir is not None else None
    if shared is not None and not (shared / REKRUTE).is_file():
        shared = None
    taxonomy = load_taxonomy("builtin")
    labels = sorted(c.id for c in taxonomy.competences.values() if c.kind == "competence")
    texts, targets, kinds, about = _training_set(shared, taxonomy, labels, config)
    model, metrics = fit_model(texts, targets, kinds, labels, config)
    output = Path(output) if output is not None else MODEL_PATH
    save_model(model, output)
    card: Dict[str, Any] = {
        "model": output.name,
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "description": "One-vs-rest logistic regression (liblinear) per competence over TF-IDF word 1-2-grams "
                       "and 5-letter word prefixes of the normalised (lemmatised, lower-cased) sentence; "
                       "Platt-calibrated probabilities. Silver sentences have their matched labels cut out.",
        "labels": labels,
        "config": config,
        "training_data": about | {"sentences_total": len(texts)},
        "metrics": metrics,
        "threshold_note": "the pipeline threshold (extractors/pipeline.cfg) is chosen among THRESHOLD_CANDIDATES "
                          "on the DEV split of benchmarks/data/competence-sentences (never trained on) and "
                          "reported on its TEST split: see competence_sentences (record_evaluation)",
        "train_seconds": round(time.perf_counter() - t0, 1),
        "versions": _versions(),
        "sha256": file_sha256(output),
        "bytes": output.stat().st_size,
    }
    card_path(output).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    load_classifier.cache_clear()
    return card


def record_evaluation(result: Dict[str, Any], model_path: Optional[Any] = None) -> None:
    """Write a competence evaluation (flows.competence_eval.evaluate_competences) into the model's card."""
    path = card_path(model_path or MODEL_PATH)
    card = json.loads(path.read_text(encoding="utf-8"))
    card["competence_sentences"] = {
        "file": "benchmarks/data/competence-sentences/sentences.csv",
        "sha256": file_sha256(Path(result["path"])),
        "threshold": result["threshold"],
        "dev": result.get("dev"),
        "test": {"sentences": result["sentences"], "methods": result["methods"]},
    }
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def card_path(model_path: Any) -> Path:
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".skops") + ".card.json")


def _versions() -> Dict[str, str]:
    import scipy
    import simplemma
    import sklearn
    import skops
    import spacy

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "skops": skops.__version__, "spacy": spacy.__version__,
            "simplemma": getattr(simplemma, "__version__", "?")}
