"""Rank taxonomy concepts for a sentence: TF-IDF retrieval plus a trained re-ranker.

Two parts:

- ``ConceptIndex`` is built at run time from the taxonomy (any taxonomy: ``builtin``,
  a folder, ``esco:DIR``). It holds TF-IDF matrices over every label of every concept
  (lemmatised words, 1–2-grams; characters, 3–5-grams within words) and over each
  concept's "document" (labels + description), and a latent-semantic space (a seeded
  TruncatedSVD of the documents' TF-IDF). For a batch of sentences it computes,
  per concept, label *containment* (how much of the label, IDF-weighted, is in the
  sentence), cosine similarities, verbatim matches and ranks, and keeps the top
  candidates of each retrieval score.
- ``Linker`` scores those candidates with a re-ranker: a HistGradientBoostingClassifier
  (the shipped model) or a ``Pipeline`` (StandardScaler + LogisticRegression), trained on
  pairwise features (``FEATURES``: containment, cosines, windows, ranks, BM25, how much of
  the sentence a label covers, the latent-semantic cosine, ESCO skill type, reuse level
  and how many ESCO occupations require the skill),
  from synthetic sentences built from ESCO itself (held-out labels as paraphrases)
  and SkillSpan training sentences linked by exact label matching (silver labels).

Only the re-ranker, the feature names, a popularity prior and plain settings are
persisted (``extractors.persistence``, skops): the index is rebuilt from the taxonomy,
so the model is small and works with any taxonomy.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from extractors.errors import TaxonomyError
from extractors.lemmas import lemmatize

MODEL_FORMAT = "skillpulse-linker"
MODEL_FORMAT_VERSION = 1
SEED = 13
N_PER_SCORE = 40  # candidates kept per retrieval score, per sentence
SCORE_BATCH = 64  # sentences whose candidates the re-ranker scores in one call
REUSE_LEVELS = ("transversal", "cross-sector", "sector-specific", "occupation-specific")
FEATURES: tuple[str, ...] = (
    "word_contain_pref", "word_contain_any", "char_contain_pref", "char_contain_any",
    "char_cos_pref", "char_cos_any", "word_cos_any", "doc_cos", "desc_cos",
    "exact_pref", "exact_any", "log_label_tokens", "contain_x_len", "log_n_labels",
    "is_knowledge", *(f"reuse_{r}" for r in REUSE_LEVELS),
    "log_rank_word_contain", "log_rank_char_contain", "log_rank_char_cos", "log_rank_doc_cos",
    "gap_char_contain", "gap_char_cos", "gap_doc_cos", "gap_word_contain",
    "log_prior", "win_char_cos_pref", "win_char_cos_any", "win_word_cos_any",
    "sent_cover", "log_sent_tokens", "bm25_doc", "bm25_gap", "log_rank_bm25",
    # Session 3: ESCO structure (how many occupations list the skill as essential / optional,
    # how many skill–skill relations it has; zero outside ESCO) and a latent-semantic cosine.
    "log_occ_essential", "log_occ_optional", "log_skill_relations",
    "lsa_cos", "gap_lsa_cos", "log_rank_lsa_cos",
)
S3_FEATURES = FEATURES  # the 42 of session 3
# Session 5: the sentence-embedding cosine (all-MiniLM-L6-v2, extractors.embeddings) between the
# sentence and the concept's *description* (no label text, so hiding a label hides nothing from
# it), its gap to the sentence's best concept and its rank. Computed only when the index has
# embeddings attached (``ConceptIndex.attach_embeddings``), else zero.
EMBEDDING_FEATURES = ("emb_desc_cos", "gap_emb_desc_cos", "log_rank_emb_desc_cos")
FEATURES = S3_FEATURES + EMBEDDING_FEATURES
EMBEDDING_VARIANT = "desc"
STRUCTURE_FEATURES = ("log_occ_essential", "log_occ_optional", "log_skill_relations")
LSA_FEATURES = ("lsa_cos", "gap_lsa_cos", "log_rank_lsa_cos")
BASE_FEATURES = tuple(f for f in S3_FEATURES if f not in STRUCTURE_FEATURES + LSA_FEATURES)  # the 36 of session 2
LSA_DIMS = 200
BM25_K1, BM25_B = 1.2, 0.75
MAX_WINDOW = 4
_TOKEN = re.compile(r"[^\W_](?:[\w+#]|[.\-](?=\w))*", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by for from have in is it of on or our the this to we will with you your "
    "able ability etc e.g i.e".split()
)


# --------------------------------------------------------------------------- concepts


@dataclass(frozen=True)
class ConceptEntry:
    """What the linker knows about one concept."""

    id: str
    label: str
    alt_labels: tuple[str, ...] = ()
    description: str = ""
    skill_type: str = ""
    reuse_level: str = ""
    n_essential: int = 0  # ESCO occupations listing the skill as essential
    n_optional: int = 0  # ... as optional
    n_skill_relations: int = 0  # ESCO skill–skill relations the skill takes part in

    @property
    def labels(self) -> tuple[str, ...]:
        """The preferred label first, then the other labels (deduplicated, case-blind)."""
        seen: dict[str, str] = {}
        for text in (self.label, *self.alt_labels):
            text = " ".join(text.split())
            if text:
                seen.setdefault(text.casefold(), text)
        return tuple(seen.values())


def esco_skills_csv(folder: str | Path) -> Path:
    """The ESCO skills CSV in an ESCO folder (the folder itself or its ``en/``)."""
    folder = Path(folder)
    for path in (folder / "skills_en.csv", folder / "en" / "skills_en.csv"):
        if path.is_file():
            return path
    raise TaxonomyError(f"[T001] ESCO folder {folder}: no skills_en.csv (nor en/skills_en.csv)")


def _open_csv(folder: Path, name: str) -> Any:
    """Open ``name`` (or ``name.gz``) in an ESCO folder as text; None if it is not there."""
    import gzip

    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            if path.suffix == ".gz":
                return gzip.open(path, "rt", encoding="utf-8", newline="")
            return path.open(encoding="utf-8", newline="")
    return None


def esco_relation_counts(folder: str | Path) -> dict[str, tuple[int, int, int]]:
    """Skill URI → (occupations listing it as essential, as optional, skill–skill relations).

    Read from ``occupationSkillRelations.csv`` (or ``.csv.gz``) and ``skillSkillRelations.csv``
    next to ``skills_en.csv``; a missing file counts zero.
    """
    folder = Path(folder)
    counts: dict[str, list[int]] = {}
    handle = _open_csv(folder, "occupationSkillRelations.csv")
    if handle is not None:
        with handle:
            for row in csv.DictReader(handle):
                kind = (row.get("relationType") or "").strip()
                if kind in ("essential", "optional"):
                    counts.setdefault(row["skillUri"], [0, 0, 0])[0 if kind == "essential" else 1] += 1
    handle = _open_csv(folder, "skillSkillRelations.csv")
    if handle is not None:
        with handle:
            for row in csv.DictReader(handle):
                for uri in {row["originalSkillUri"], row["relatedSkillUri"]}:
                    counts.setdefault(uri, [0, 0, 0])[2] += 1
    return {uri: (a, b, c) for uri, (a, b, c) in counts.items()}


def esco_entries(folder: str | Path) -> list[ConceptEntry]:
    """ESCO skills as concept entries: id = concept URI, label = preferred label.

    With the occupation–skill and skill–skill relation counts (``esco_relation_counts``).
    """
    path = esco_skills_csv(folder)
    relations = esco_relation_counts(path.parent)
    out: list[ConceptEntry] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            essential, optional, related = relations.get(row["conceptUri"], (0, 0, 0))
            out.append(ConceptEntry(
                id=row["conceptUri"], label=row["preferredLabel"].strip(),
                alt_labels=tuple(a.strip() for a in (row.get("altLabels") or "").split("\n") if a.strip()),
                description=(row.get("description") or "").strip(),
                skill_type=(row.get("skillType") or "").strip(),
                reuse_level=(row.get("reuseLevel") or "").strip(),
                n_essential=essential, n_optional=optional, n_skill_relations=related,
            ))
    return out


def taxonomy_entries(taxonomy: Any, lang: str = "en") -> list[ConceptEntry]:
    """Concept entries of a loaded ``Taxonomy``: unambiguous labels in `lang`."""
    out = []
    for concept in sorted(taxonomy.concepts.values(), key=lambda c: c.id):
        alts = tuple(lab.text for lab in concept.labels if lab.lang == lang and not lab.ambiguous)
        out.append(ConceptEntry(id=concept.id, label=concept.label, alt_labels=alts,
                                description=getattr(concept, "description", "") or ""))
    return out


def load_entries(spec: str = "builtin") -> list[ConceptEntry]:
    """Concept entries for a taxonomy spec (``builtin``, ``esco:DIR``, folder, CSV).

    ESCO is read from its CSV directly, for the descriptions, skill types and reuse
    levels that the taxonomy model does not carry; ids and labels are the same as
    ``load_taxonomy("esco:DIR")`` gives (URI, preferred label).
    """
    spec = str(spec)
    if spec.startswith("esco:"):
        return _esco_cached(str(esco_skills_csv(spec[5:])))
    from taxonomy.load import load_taxonomy

    return taxonomy_entries(load_taxonomy(spec))


@lru_cache(maxsize=2)
def _esco_cached(path: str) -> list[ConceptEntry]:
    return esco_entries(Path(path).parent)


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=200_000)
def _lemma(token: str) -> str:
    if len(token) < 4 or not token.isalpha():
        return token
    return lemmatize(token, "en").casefold()


def word_tokens(text: str) -> list[str]:
    """Lower-cased word tokens ("c++", "node.js" and "c#" stay whole)."""
    return _TOKEN.findall(text.casefold())


def normalise_words(text: str) -> str:
    """Lemmatised tokens without stop words, joined by spaces (the word space)."""
    return " ".join(_lemma(t) for t in word_tokens(text) if t not in _STOP)


def normalise_chars(text: str) -> str:
    """Lower-cased tokens joined by spaces (the character space)."""
    return " ".join(word_tokens(text))


def _ws_split(text: str) -> list[str]:
    return text.split()


# --------------------------------------------------------------------------- index


def _l1(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(abs(matrix).sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ matrix)


def _row_l1(matrix: sp.csr_matrix) -> np.ndarray:
    sums = np.asarray(abs(matrix).sum(axis=1), dtype=np.float32).ravel()
    sums[sums == 0] = 1.0
    return sums


def _label_products(labels: sp.csc_matrix, sentences: sp.csr_matrix, binary: bool = True) -> np.ndarray:
    """Labels × sentences dot products, shape (labels, 2 × sentences): TF-IDF sentence
    vectors first, then binary ones (without `binary`: only the first half).

    Only the columns (features) the sentences use are touched, and the product is sparse
    times dense (no sparse result to assemble), which is much faster than sparse × sparse
    when, as for character n-grams, most labels share some feature with a sentence.
    """
    n = sentences.shape[0]
    cols = np.unique(sentences.indices)
    width = 2 * n if binary else n
    if len(cols) == 0:
        return np.zeros((labels.shape[0], width), dtype=np.float32)
    dense = sentences[:, cols].toarray().T
    if binary:
        dense = np.hstack([dense, (dense != 0).astype(np.float32)])
    return np.ascontiguousarray(labels[:, cols] @ dense, dtype=np.float32)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = matrix.copy().tocsr()
    out.data[:] = 1.0
    return out


def _bm25(docs: Sequence[str], word_vec: TfidfVectorizer, cols: np.ndarray) -> sp.csr_matrix:
    """BM25 term weights of the concept documents over the unigram columns of `word_vec`.

    A sentence's BM25 score against every document is then one sparse product with
    the sentence's binary unigram vector.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    vocab = word_vec.vocabulary_
    uni = {t: j for j, t in enumerate(sorted((t for t in vocab if " " not in t), key=vocab.__getitem__))}
    counts = CountVectorizer(analyzer="word", tokenizer=_ws_split, token_pattern=None, lowercase=False,
                             vocabulary=uni, dtype=np.float32).transform(docs).tocsr()
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(lengths.mean(), 1.0))
    out = counts.copy()
    row_norm = np.repeat(norm, np.diff(out.indptr))
    out.data = (idf[out.indices] * out.data * (BM25_K1 + 1) / (out.data + row_norm)).astype(np.float32)
    return out


@dataclass
class Candidates:
    """Candidates of one sentence: concept row numbers and their feature rows."""

    concepts: np.ndarray
    features: np.ndarray
    baseline: np.ndarray = field(default_factory=lambda: np.zeros(0))


class ConceptIndex:
    """TF-IDF views of a taxonomy's concepts, for retrieval and features."""

    def __init__(self, entries: Sequence[ConceptEntry], prior: dict[str, float] | None = None) -> None:
        if not entries:
            raise TaxonomyError("[T001] the taxonomy has no concepts to link to")
        self.entries = list(entries)
        self.ids = [e.id for e in self.entries]
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        label_texts: list[str] = []
        label_concept: list[int] = []
        pref_row: list[int] = []
        for i, entry in enumerate(self.entries):
            labels = entry.labels or (entry.id,)
            pref_row.append(len(label_texts))
            label_texts.extend(labels)
            label_concept.extend([i] * len(labels))
        self.label_texts = label_texts
        self.label_concept = np.asarray(label_concept, dtype=np.int64)
        self.pref_row = np.asarray(pref_row, dtype=np.int64)
        self.label_starts = self.pref_row  # labels are contiguous per concept, preferred first
        self.n_labels = np.diff(np.append(self.pref_row, len(label_texts)))
        self.label_words = [normalise_words(t) for t in label_texts]
        self.label_chars = [normalise_chars(t) for t in label_texts]
        self.label_len = np.asarray([max(1, len(t.split())) for t in self.label_chars], dtype=float)
        descs = [normalise_words(e.description) for e in self.entries]
        self.desc_words = descs
        docs = [" ".join(self.label_words[s:s + n]) + " " + d
                for s, n, d in zip(self.pref_row, self.n_labels, descs, strict=True)]

        self.word_vec = TfidfVectorizer(analyzer="word", tokenizer=_ws_split, token_pattern=None,
                                        lowercase=False, ngram_range=(1, 2), sublinear_tf=True,
                                        dtype=np.float32)
        both = self.word_vec.fit_transform(self.label_words + docs)
        self.char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=False,
                                        sublinear_tf=True, dtype=np.float32, min_df=1)
        lc = self.char_vec.fit_transform(self.label_chars).tocsr()
        lw = both[:len(self.label_words)]
        self.lw_rows = sp.csr_matrix(lw)
        self.lc_rows = sp.csr_matrix(lc)
        # Label matrices by column (CSC) for label × sentence products in one sparse-times-dense
        # pass; containment (L1-normalised labels) = the product with the binary sentence / L1 norm.
        self.lw_csc = sp.csc_matrix(lw)
        self.lc_csc = sp.csc_matrix(lc)
        self.lw_l1 = _row_l1(lw)
        self.lc_l1 = _row_l1(lc)
        self.doc_t = both[len(self.label_words):].T.tocsr()
        self.desc_t = self.word_vec.transform(descs).T.tocsr()
        # Words of each label (binary, unigrams): how much of the sentence a label covers.
        vocab = self.word_vec.vocabulary_
        self.unigram_cols = np.asarray(sorted(i for t, i in vocab.items() if " " not in t), dtype=np.int64)
        self.lw_uni_csc = sp.csc_matrix(_binary(lw[:, self.unigram_cols]))
        self.bm25_rows = _bm25(docs, self.word_vec, self.unigram_cols)
        self._fit_lsa(sp.csr_matrix(both[len(self.label_words):]))
        self.bm25_t = self.bm25_rows.T.tocsr()
        self.is_knowledge = np.asarray([e.skill_type == "knowledge" for e in self.entries], dtype=float)
        self.reuse = np.asarray([[e.reuse_level == r for r in REUSE_LEVELS] for e in self.entries],
                                dtype=float)
        self.structure = np.log1p(np.asarray(
            [[e.n_essential, e.n_optional, e.n_skill_relations] for e in self.entries], dtype=float))
        self.set_prior(prior)
        self._by_first: dict[str, list[tuple[int, str]]] | None = None
        self._label_set = [
            {f" {t} " for t in self.label_chars[s:s + n] if t}
            for s, n in zip(self.pref_row, self.n_labels, strict=True)
        ]

    def _fit_lsa(self, docs: sp.csr_matrix) -> None:
        """Latent-semantic space: a TruncatedSVD (seeded) of the concept documents' TF-IDF.

        Fitted on the taxonomy's own documents (no training data), over the unigram columns
        (with bigrams the SVD of ESCO took ≈40 CPU-s; unigrams and 2 power iterations ≈4);
        ``lsa_docs`` holds the L2-normalised concept vectors. Too small a taxonomy (< 3 concepts
        or words) has none (the features are then zero).
        """
        from sklearn.decomposition import TruncatedSVD

        uni = docs[:, self.unigram_cols]
        dims = min(LSA_DIMS, uni.shape[0] - 1, uni.shape[1] - 1)
        self.lsa_components: np.ndarray | None = None
        self.lsa_docs = np.zeros((docs.shape[0], 1), dtype=np.float32)
        if dims < 2:
            return
        # one BLAS thread: the randomized SVD's dense products differ in the last bits with the
        # thread count (4th decimal of the LSA vectors between 1 and 2 OpenBLAS threads), and the
        # index must be the same on every machine, for training and for auditing a ranking
        with threadpool_limits(limits=1, user_api="blas"):
            svd = TruncatedSVD(n_components=dims, n_iter=2, random_state=SEED).fit(uni)
        self.lsa_components = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
        self.lsa_docs = self._lsa_vectors(docs)

    def _lsa_vectors(self, tfidf: sp.csr_matrix) -> np.ndarray:
        """L2-normalised latent-semantic vectors of word-space TF-IDF rows (all columns)."""
        if self.lsa_components is None:
            return np.zeros((tfidf.shape[0], 1), dtype=np.float32)
        vec = np.asarray(sp.csr_matrix(tfidf)[:, self.unigram_cols] @ self.lsa_components, dtype=np.float32)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vec / norms

    def set_prior(self, prior: dict[str, float] | None) -> None:
        """Set the popularity prior (concept id → count of ad lines); ids not in the taxonomy are ignored."""
        self.prior = np.zeros(len(self.entries))
        for cid, count in (prior or {}).items():
            if cid in self.position:
                self.prior[self.position[cid]] = count
        self.log_prior = np.log1p(self.prior)

    def __len__(self) -> int:
        return len(self.entries)

    def labels_by_first_token(self) -> dict[str, list[tuple[int, str]]]:
        """First token of each label → (concept, " label ") pairs (built once, for verbatim matching)."""
        if self._by_first is None:
            table: dict[str, list[tuple[int, str]]] = {}
            for c, labels in enumerate(self._label_set):
                for padded in sorted(labels):
                    table.setdefault(padded.split()[0], []).append((c, padded))
            self._by_first = table
        return self._by_first

    # ------------------------------------------------------------------ scoring

    @staticmethod
    def _windows(chars: str) -> list[str]:
        """The 1–4-token windows of a sentence that neither start nor end with a stop word."""
        toks = chars.split()
        return [" ".join(toks[i:i + n]) for n in range(1, MAX_WINDOW + 1) for i in range(len(toks) - n + 1)
                if toks[i] not in _STOP and toks[i + n - 1] not in _STOP]

    def _window_features(self, wc: sp.csr_matrix, ww: sp.csr_matrix, cand: np.ndarray,
                         hidden: set[int]) -> np.ndarray:
        """Best cosine between a 1–4-token window of the sentence and a concept label.

        `wc` and `ww` hold the sentence's windows (characters, words). Columns:
        preferred label (characters), any label (characters), any label (words).
        """
        out = np.zeros((len(cand), 3))
        if wc.shape[0] == 0 or len(cand) == 0:
            return out
        starts = self.pref_row[cand]
        counts = self.n_labels[cand]
        rows = np.concatenate([np.arange(a, a + b) for a, b in zip(starts, counts, strict=True)])
        seg = np.concatenate([[0], np.cumsum(counts)[:-1]])
        c_best = (self.lc_rows[rows] @ wc.T).max(axis=1).toarray().ravel()
        w_best = (self.lw_rows[rows] @ ww.T).max(axis=1).toarray().ravel()
        if hidden:
            mask = np.isin(rows, list(hidden))
            c_best[mask] = 0.0
            w_best[mask] = 0.0
        out[:, 0] = c_best[seg]
        out[:, 1] = np.maximum.reduceat(c_best, seg)
        out[:, 2] = np.maximum.reduceat(w_best, seg)
        return out

    def _hide_in_docs(self, doc: np.ndarray, lsa: np.ndarray, i: int, sentence: sp.csr_matrix,
                      rows: set[int]) -> None:
        """Recompute the document scores (TF-IDF and latent-semantic cosines) of concepts whose
        labels `rows` are hidden."""
        for c in sorted({int(self.label_concept[r]) for r in rows}):
            start, count = int(self.pref_row[c]), int(self.n_labels[c])
            kept = [self.label_words[r] for r in range(start, start + count) if r not in rows]
            vec = self.word_vec.transform([" ".join(kept) + " " + self.desc_words[c]])
            doc[i, c] = float((sentence @ vec.T).toarray()[0, 0])
            lsa[i, c] = float(self._lsa_vectors(sentence)[0] @ self._lsa_vectors(vec)[0])

    def _concept_max_t(self, label_scores_t: np.ndarray) -> np.ndarray:
        """Per concept, the best of its labels: (labels, sentences) → (sentences, concepts)."""
        return np.ascontiguousarray(np.maximum.reduceat(label_scores_t, self.label_starts, axis=0).T)

    emb_concepts: np.ndarray | None = None  # concept description embeddings, once attached
    emb_encoder: Any = None

    def attach_embeddings(self, encoder: Any | None = None) -> dict[str, Any]:
        """Compute (or read from the cache) the concepts' description embeddings, so that
        ``candidates`` fills the ``EMBEDDING_FEATURES``; returns how the matrix was built."""
        from extractors import embeddings as em

        if self.emb_concepts is not None:
            return {"cached": True, "seconds": 0.0, "cache": "in memory"}
        self.emb_encoder = encoder if encoder is not None else em.load_encoder()
        self.emb_concepts, info = em.concept_matrix(self.entries, EMBEDDING_VARIANT, self.emb_encoder)
        return info

    def _embedding_sims(self, sentences: list[str]) -> np.ndarray | None:
        """Cosine of each sentence with every concept description (None when not attached)."""
        if self.emb_concepts is None:
            return None
        from extractors import embeddings as em

        return em.encode(sentences, self.emb_encoder) @ self.emb_concepts.T

    def candidates(self, sentences: Sequence[str], *, n_per_score: int = N_PER_SCORE,
                   exclude_labels: Sequence[Iterable[int]] | None = None,
                   must_include: Sequence[Iterable[int]] | None = None,
                   batch_size: int = 32) -> list[Candidates]:
        """Candidates and features for each sentence (see ``FEATURES``).

        `exclude_labels` (training only) hides label rows from a sentence, as if the
        taxonomy did not have them; `must_include` adds concepts to the candidates.
        """
        out: list[Candidates] = []
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start:start + batch_size])
            excl = exclude_labels[start:start + batch_size] if exclude_labels else None
            incl = must_include[start:start + batch_size] if must_include else None
            out.extend(self._batch(batch, n_per_score, excl, incl))
        return out

    def _batch(self, sentences: list[str], n_per_score: int,
               exclude: Sequence[Iterable[int]] | None,
               include: Sequence[Iterable[int]] | None) -> list[Candidates]:
        words = [normalise_words(s) for s in sentences]
        chars = [normalise_chars(s) for s in sentences]
        sw = self.word_vec.transform(words)
        sc = self.char_vec.transform(chars)
        n = len(sentences)
        # Label scores are computed labels × sentences (contiguous per label, for the
        # per-concept maxima) and used through their transposes (sentences × labels).
        pw = _label_products(self.lw_csc, sw)
        pc = _label_products(self.lc_csc, sc)
        wcos_t, wc_t = pw[:, :n], pw[:, n:] / self.lw_l1[:, None]
        ccos_t, cc_t = pc[:, :n], pc[:, n:] / self.lc_l1[:, None]
        wc, cc, ccos, wcos = wc_t.T, cc_t.T, ccos_t.T, wcos_t.T
        doc = (sw @ self.doc_t).toarray()
        desc = (sw @ self.desc_t).toarray()
        lsa = self._lsa_vectors(sw) @ self.lsa_docs.T
        emb = self._embedding_sims(sentences)
        su = _binary(sw[:, self.unigram_cols])
        shared_t = _label_products(self.lw_uni_csc, su, binary=False)
        shared = shared_t.T
        bm25 = (su @ self.bm25_t).toarray()
        n_tokens = np.asarray(su.sum(axis=1)).ravel()
        if exclude is not None:
            for i, rows in enumerate(exclude):
                rows = list(rows)
                if rows:
                    for m in (wc, cc, ccos, wcos, shared):
                        m[i, rows] = 0.0
                    self._hide_in_docs(doc, lsa, i, sw[i], set(rows))
                    self._hide_in_bm25(bm25, i, words[i], set(rows))
        # All windows of the batch at once (one vectoriser call per space).
        windows = [self._windows(c) for c in chars]
        bounds = np.cumsum([0] + [len(w) for w in windows])
        flat = [w for ws in windows for w in ws]
        win_c = self.char_vec.transform(flat).tocsr() if flat else None
        win_w = self.word_vec.transform([normalise_words(w) for w in flat]).tocsr() if flat else None
        pref = self.pref_row
        wc_any, cc_any = self._concept_max_t(wc_t), self._concept_max_t(cc_t)
        ccos_any, wcos_any = self._concept_max_t(ccos_t), self._concept_max_t(wcos_t)
        cover_any = self._concept_max_t(shared_t)
        scores = {"word_contain": wc_any, "char_contain": cc_any, "char_cos": ccos_any, "doc_cos": doc}
        # Top candidates per score (argpartition), and ranks = 1 + how many concepts score higher.
        top = {name: np.argpartition(-m, min(n_per_score, m.shape[1] - 1), axis=1)[:, :n_per_score]
               for name, m in scores.items()}
        ranked_only = (("bm25", bm25), ("lsa", lsa)) + ((("emb", emb),) if emb is not None else ())
        ordered = {name: np.sort(-m, axis=1) for name, m in (*scores.items(), *ranked_only)}
        both = cc + wc
        results = []
        for i in range(len(sentences)):
            chosen: set[int] = set()
            for name in scores:
                chosen.update(top[name][i].tolist())
            if include is not None:
                chosen.update(int(c) for c in include[i])
            cand = np.asarray(sorted(chosen), dtype=np.int64)
            ranks = {name: 1 + np.searchsorted(ordered[name][i], -m[i, cand], side="left")
                     for name, m in (*scores.items(), *ranked_only)}
            padded = f" {chars[i]} "
            hidden = set(exclude[i]) if exclude is not None else set()
            exact_pref = np.asarray([
                float(pref[c] not in hidden and f" {self.label_chars[pref[c]]} " in padded) for c in cand])
            exact_any = np.asarray([
                float(any(f" {self.label_chars[r]} " in padded
                          for r in range(pref[c], pref[c] + self.n_labels[c]) if r not in hidden))
                for c in cand])
            best = [pref[c] + int(np.argmax(both[i, pref[c]:pref[c] + self.n_labels[c]])) for c in cand]
            blen = self.label_len[best]
            top_bm25 = max(float(bm25[i].max()), 1e-9)
            feats = np.column_stack([
                wc[i, pref[cand]], wc_any[i, cand], cc[i, pref[cand]], cc_any[i, cand],
                ccos[i, pref[cand]], ccos_any[i, cand], wcos_any[i, cand], doc[i, cand], desc[i, cand],
                exact_pref, exact_any, np.log1p(blen), cc_any[i, cand] * np.log1p(blen),
                np.log1p(self.n_labels[cand]), self.is_knowledge[cand], self.reuse[cand],
                np.log(ranks["word_contain"]), np.log(ranks["char_contain"]),
                np.log(ranks["char_cos"]), np.log(ranks["doc_cos"]),
                cc_any[i, cand] - cc_any[i].max(), ccos_any[i, cand] - ccos_any[i].max(),
                doc[i, cand] - doc[i].max(), wc_any[i, cand] - wc_any[i].max(),
                self.log_prior[cand],
            ])
            lo, hi = bounds[i], bounds[i + 1]
            win = (self._window_features(win_c[lo:hi], win_w[lo:hi], cand, hidden) if hi > lo
                   else np.zeros((len(cand), 3)))
            extra = np.column_stack([
                cover_any[i, cand] / max(n_tokens[i], 1.0), np.full(len(cand), np.log1p(n_tokens[i])),
                bm25[i, cand] / top_bm25, bm25[i, cand] - top_bm25, np.log(ranks["bm25"]),
                self.structure[cand], lsa[i, cand], lsa[i, cand] - lsa[i].max(), np.log(ranks["lsa"]),
            ])
            if emb is not None:
                emb_feats = np.column_stack([emb[i, cand], emb[i, cand] - emb[i].max(), np.log(ranks["emb"])])
            else:
                emb_feats = np.zeros((len(cand), len(EMBEDDING_FEATURES)))
            feats = np.column_stack([feats, win, extra, emb_feats]).astype(np.float32)
            baseline = 0.5 * doc[i, cand] + 0.5 * ccos_any[i, cand] + exact_any
            results.append(Candidates(cand, feats, baseline))
        return results

    def _hide_in_bm25(self, bm25: np.ndarray, i: int, words: str, rows: set[int]) -> None:
        """Recompute the BM25 score of concepts whose labels `rows` are hidden (training only).

        Approximation: the hidden labels' words are taken out of the document's terms
        that the sentence matches; the document length is kept.
        """
        sent = set(words.split())
        vocab = self.word_vec.vocabulary_
        pos = {int(c): j for j, c in enumerate(self.unigram_cols)}
        for c in sorted({int(self.label_concept[r]) for r in rows}):
            start, count = int(self.pref_row[c]), int(self.n_labels[c])
            kept = " ".join(self.label_words[r] for r in range(start, start + count) if r not in rows)
            kept_terms = set(kept.split()) | set(self.desc_words[c].split())
            lo, hi = self.bm25_rows.indptr[c], self.bm25_rows.indptr[c + 1]
            weights = dict(zip(self.bm25_rows.indices[lo:hi].tolist(), self.bm25_rows.data[lo:hi].tolist(),
                               strict=True))
            total = 0.0
            for term in sent & kept_terms:
                j = pos.get(vocab.get(term, -1))
                if j is not None:
                    total += weights.get(j, 0.0)
            bm25[i, c] = total

# --------------------------------------------------------------------------- verbatim baseline


def verbatim_rank(index: ConceptIndex, sentence: str) -> list[tuple[int, float]]:
    """Concepts with a label that appears verbatim (case-blind, whole tokens), longest first."""
    padded = f" {normalise_chars(sentence)} "
    best: dict[int, float] = {}
    # A label occurs as whole tokens only if its first token is a token of the sentence.
    for token in set(padded.split()):
        for c, label in index.labels_by_first_token().get(token, ()):
            if label in padded and len(label) > best.get(c, 0.0):
                best[c] = float(len(label))
    return sorted(best.items(), key=lambda x: (-x[1], x[0]))


# --------------------------------------------------------------------------- the model


def new_reranker(c: float = 1.0, kind: str = "logistic", **params: Any) -> Any:
    """The re-ranker: built-in scikit-learn parts only (a small skops allowlist).

    ``logistic``: StandardScaler + LogisticRegression. ``hgb``: a
    HistGradientBoostingClassifier (`params`: max_iter, learning_rate, max_leaf_nodes,
    min_samples_leaf, l2_regularization), with a fixed seed.
    """
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        settings = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 40,
                    "l2_regularization": 1.0} | params
        return HistGradientBoostingClassifier(early_stopping=False, random_state=SEED, **settings)
    if kind != "logistic":
        raise ValueError(f"unknown re-ranker kind {kind!r}")
    return Pipeline([
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=SEED)),
    ])


class Linker:
    """Rank concepts for sentences with a trained re-ranker (or the untrained baseline)."""

    def __init__(self, model: dict[str, Any] | None, index: ConceptIndex) -> None:
        self.model = model
        self.index = index
        self.columns: np.ndarray | None = None
        if model is not None:
            names = tuple(model["feature_names"])
            if not set(names) <= set(FEATURES) or len(set(names)) != len(names):
                from extractors.errors import UntrustedModelError

                raise UntrustedModelError(
                    "[M002] the model was trained with other features than this version computes; retrain it"
                )
            # A model may use a subset of the features this version computes (an older model).
            if names != FEATURES:
                self.columns = np.asarray([FEATURES.index(n) for n in names], dtype=np.int64)
            if set(names) & set(EMBEDDING_FEATURES):
                index.attach_embeddings()

    @classmethod
    def build(cls, model: dict[str, Any] | None, taxonomy_spec: str = "builtin") -> Linker:
        prior = dict(zip(model["prior_ids"], model["prior_counts"], strict=True)) if model else None
        return cls(model, ConceptIndex(load_entries(taxonomy_spec), prior=prior))

    def rank(self, sentences: Sequence[str], top_k: int = 10,
             exclude_labels: Sequence[Iterable[int]] | None = None) -> list[list[tuple[str, str, float]]]:
        """For each sentence, the top `top_k` (concept_id, label, score), best first.

        `exclude_labels` (evaluation only) hides label rows per sentence, as for a paraphrase.
        """
        out = []
        batch: list[Candidates] = []
        for cands in self.index.candidates(sentences, n_per_score=self._n_per_score(),
                                           exclude_labels=exclude_labels):
            batch.append(cands)
            if len(batch) == SCORE_BATCH:
                out.extend(self._top(batch, top_k))
                batch = []
        out.extend(self._top(batch, top_k))
        return out

    def score_batch(self, batch: Sequence[Candidates]) -> list[np.ndarray]:
        """The scores of each sentence's candidates, the re-ranker called once for the whole batch."""
        if not batch:
            return []
        sizes = [len(c.concepts) for c in batch]
        stacked = Candidates(np.concatenate([c.concepts for c in batch]),
                             np.concatenate([c.features for c in batch]),
                             np.concatenate([c.baseline for c in batch]))
        # one thread: HistGradientBoosting's OpenMP threads cost more than they gain on a few
        # thousand rows, and spin badly on a busy machine
        with threadpool_limits(limits=1):
            all_scores = self.score(stacked)
        return np.split(all_scores, np.cumsum(sizes)[:-1])

    def _top(self, batch: list[Candidates], top_k: int) -> list[list[tuple[str, str, float]]]:
        """The top `top_k` of each sentence's candidates, the re-ranker called once for the whole batch."""
        if not batch:
            return []
        out = []
        for cands, scores in zip(batch, self.score_batch(batch), strict=True):
            order = np.lexsort((cands.concepts, -scores))[:top_k]
            out.append([(self.index.ids[cands.concepts[j]], self.index.entries[cands.concepts[j]].label,
                         round(float(scores[j]), 4)) for j in order])
        return out

    def _n_per_score(self) -> int:
        if self.model is None:
            return N_PER_SCORE
        return int(self.model.get("config", {}).get("n_per_score", N_PER_SCORE))

    def score(self, cands: Candidates) -> np.ndarray:
        if self.model is None:
            return cands.baseline
        if len(cands.concepts) == 0:
            return np.zeros(0)
        weight = float(self.model.get("config", {}).get("residual_weight", 0.0))
        x = cands.features if self.columns is None else cands.features[:, self.columns]
        if weight <= 0:
            return self.model["reranker"].predict_proba(x)[:, 1]
        # The re-ranker learns a correction to the retrieval score: the score is the
        # retrieval score plus `residual_weight` times the re-ranker's logit (higher is
        # better; not a probability).
        return cands.baseline + weight * self.model["reranker"].decision_function(x)


# --------------------------------------------------------------------------- training data


@dataclass
class TrainingSet:
    sentences: list[str]
    positives: list[set[int]]
    exclude: list[set[int]]
    source: list[str]


_TEMPLATES = (
    "{}", "experience with {}", "you have {}", "knowledge of {}", "skills in {}",
    "you will {}", "strong {} skills", "ability to {}", "we expect {}", "good understanding of {}",
    "responsibilities include {}", "familiarity with {} is a plus", "{} is required",
)
_JOINERS = (" and ", ", ", " as well as ", " , ", " or ")


def synthetic_esco(index: ConceptIndex, n_sentences: int, rng: np.random.Generator,
                   context: Sequence[str] = (), weights: np.ndarray | None = None,
                   p_hold: float = 0.7) -> TrainingSet:
    """Sentences of 1–3 concept labels in job-ad phrasing, with labels held out.

    A held-out label is hidden from the index for its sentence, so the positive must
    be found through its other labels, characters or description — the situation of
    a paraphrase in an ad. Some sentences carry a context sentence as noise.
    """
    n = len(index)
    probs = None if weights is None else weights / weights.sum()
    sentences, positives, excluded, source = [], [], [], []
    for _ in range(n_sentences):
        k = int(rng.choice([1, 1, 1, 2, 2, 3]))
        concepts = [int(c) for c in rng.choice(n, size=k, replace=False, p=probs)]
        parts, hide = [], set()
        for c in concepts:
            start, count = int(index.pref_row[c]), int(index.n_labels[c])
            row = start + int(rng.integers(count))
            parts.append(index.label_texts[row] if rng.random() > 0.15 else index.label_texts[row].lower())
            if rng.random() < p_hold:
                hide.add(row)
        body = _JOINERS[int(rng.integers(len(_JOINERS)))].join(parts)
        text = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))].format(body)
        if context and rng.random() < 0.5:
            extra = context[int(rng.integers(len(context)))]
            text = f"{extra} {text}" if rng.random() < 0.5 else f"{text} {extra}"
        sentences.append(text)
        positives.append(set(concepts))
        excluded.append(hide)
        source.append("esco-synthetic")
    return TrainingSet(sentences, positives, excluded, source)


def synthetic_in_context(index: ConceptIndex, examples: Iterable[tuple[str, list[str]]],
                         rng: np.random.Generator, weights: np.ndarray | None = None,
                         p_hold: float = 0.5, repeats: int = 1) -> TrainingSet:
    """Real ad sentences whose every skill span is replaced by a label of a sampled concept.

    The sentence keeps its real context and phrasing around the spans, and every skill
    in it is known, so the other candidates are true negatives. Each inserted label
    is hidden from the index with probability `p_hold` (a paraphrase).
    """
    n = len(index)
    probs = None if weights is None else weights / weights.sum()
    sentences, positives, excluded, source = [], [], [], []
    usable = [(s, spans) for s, spans in examples if spans]
    for _ in range(repeats):
        for sentence, spans in usable:
            concepts = [int(c) for c in rng.choice(n, size=len(spans), replace=False, p=probs)]
            hide: set[int] = set()
            text = sentence
            for span, c in zip(spans, concepts, strict=True):
                row = int(index.pref_row[c]) + int(rng.integers(int(index.n_labels[c])))
                text = text.replace(span, index.label_texts[row], 1)
                if rng.random() < p_hold:
                    hide.add(row)
            sentences.append(text)
            positives.append(set(concepts))
            excluded.append(hide)
            source.append("skillspan-replaced")
    return TrainingSet(sentences, positives, excluded, source)


def exact_label_links(index: ConceptIndex, words: bool = False) -> dict[str, int]:
    """Normalised label text → concept, for labels that name exactly one concept.

    With `words`, labels are keyed by their lemmatised form (``normalise_words``).
    """
    owners: dict[str, set[int]] = {}
    texts = index.label_words if words else index.label_chars
    for row, text in enumerate(texts):
        if text:
            owners.setdefault(text, set()).add(int(index.label_concept[row]))
    return {t: next(iter(cs)) for t, cs in owners.items() if len(cs) == 1}


def link_span(span: str, chars: dict[str, int], words: dict[str, int]) -> int | None:
    """The concept whose label equals the span (exactly, or after lemmatising)."""
    found = chars.get(normalise_chars(span))
    return found if found is not None else words.get(normalise_words(span))


def silver_from_spans(index: ConceptIndex, examples: Iterable[tuple[str, list[str]]],
                      rng: np.random.Generator, p_hold: float = 0.5,
                      require_all: bool = False) -> TrainingSet:
    """Sentences with skill spans that equal a concept label (silver positives).

    With `p_hold`, the matching labels of a linked span are hidden from the index for
    that sentence, so the positive must be found another way (a paraphrase).
    """
    chars, words = exact_label_links(index), exact_label_links(index, words=True)
    sentences, positives, excluded, source = [], [], [], []
    for sentence, spans in examples:
        found = [link_span(s, chars, words) for s in spans]
        linked = [(s, c) for s, c in zip(spans, found, strict=True) if c is not None]
        if not linked or (require_all and len(linked) < len(spans)):
            continue
        hide: set[int] = set()
        for span, c in linked:
            if rng.random() < p_hold:
                key_c, key_w = normalise_chars(span), normalise_words(span)
                start, count = int(index.pref_row[c]), int(index.n_labels[c])
                hide.update(r for r in range(start, start + count)
                            if index.label_chars[r] == key_c or index.label_words[r] == key_w)
        sentences.append(sentence)
        positives.append({c for _, c in linked})
        excluded.append(hide)
        source.append("skillspan-silver")
    return TrainingSet(sentences, positives, excluded, source)


def silver_prior(index: ConceptIndex, texts: Iterable[str], max_label_tokens: int = 6) -> dict[str, float]:
    """In how many unlabelled ad lines each concept's labels occur (lemmatised n-grams)."""
    links = exact_label_links(index, words=True)
    lengths = sorted({len(t.split()) for t in links if len(t.split()) <= max_label_tokens})
    counts: dict[int, int] = {}
    for text in texts:
        toks = normalise_words(text).split()
        seen = set()
        for n in lengths:
            for i in range(len(toks) - n + 1):
                c = links.get(" ".join(toks[i:i + n]))
                if c is not None:
                    seen.add(c)
        for c in seen:
            counts[c] = counts.get(c, 0) + 1
    return {index.ids[c]: float(v) for c, v in sorted(counts.items())}


def featurise(index: ConceptIndex, data: TrainingSet, n_per_score: int = N_PER_SCORE
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, 0/1 targets and group ids (sentence numbers) of a training set."""
    cands = index.candidates(data.sentences, n_per_score=n_per_score,
                             exclude_labels=[sorted(e) for e in data.exclude],
                             must_include=[sorted(p) for p in data.positives])
    xs, ys, gs = [], [], []
    for g, (cand, pos) in enumerate(zip(cands, data.positives, strict=True)):
        xs.append(cand.features)
        ys.append(np.isin(cand.concepts, list(pos)).astype(np.int8))
        gs.append(np.full(len(cand.concepts), g, dtype=np.int32))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs)


def fit_reranker(x: np.ndarray, y: np.ndarray, c: float = 1.0, kind: str = "logistic", **params: Any) -> Any:
    model = new_reranker(c, kind, **params).fit(x, y)
    # Training-only state (a numpy Generator for feature subsampling): not needed to predict,
    # and one type fewer for the skops allowlist.
    if hasattr(model, "_feature_subsample_rng"):
        del model._feature_subsample_rng
    return model


def model_dict(reranker: Any, prior: dict[str, float], config: dict[str, Any],
               feature_names: Sequence[str] = FEATURES) -> dict[str, Any]:
    """The persisted model: plain values and built-in scikit-learn objects only.

    `feature_names`: the features (a subset of ``FEATURES``, in that order) the re-ranker was fitted on.
    """
    ids = sorted(prior)
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "feature_names": list(feature_names),
        "reranker": reranker,
        "prior_ids": ids,
        "prior_counts": np.asarray([prior[i] for i in ids], dtype=np.float64),
        "config": dict(config),
    }
