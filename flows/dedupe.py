"""Exact and near-duplicate detection within a month (MinHash LSH from datasketch).

Dedupe needs, per posting, only its id, posted date and content hash, plus one MinHash
sketch per distinct content hash (equal hashes mean the same words, hence the same
sketch). `mark_duplicates_sketched` works on exactly that, so a month can be
deduplicated without holding its texts: the caller streams the texts once through
`sketch` and keeps 64 integers per distinct text (see flows/ingest.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from extractors.text import shingles
from flows.records import Posting

NUM_PERM = 64
NEAR_THRESHOLD = 0.8
SEED = 1


@dataclass(frozen=True)
class DuplicateMark:
    duplicate_of: str | None
    kind: str | None  # "exact" | "near" | None (an original)


@dataclass(frozen=True)
class DedupeKey:
    """What dedupe needs of a posting besides its sketch."""

    posting_id: str
    posted_date: date
    content_hash: str


@lru_cache(maxsize=1)
def _permutations() -> tuple[tuple[np.ndarray, np.ndarray], str]:
    # The same permutations MinHash(num_perm=NUM_PERM, seed=SEED) draws, computed once
    # instead of once per sketch.
    mh = MinHash(num_perm=NUM_PERM, seed=SEED)
    return mh.permutations, mh.scheme


@lru_cache(maxsize=1)
def _affine() -> tuple[Any, int] | None:
    """datasketch's finaliser and word width for the permutation scheme, if it is an affine one (else None)."""
    _, scheme = _permutations()
    try:
        from datasketch.minhash import _SCHEME_WIDTHS, _fmix
    except ImportError:  # pragma: no cover - another datasketch: use its public update_batch
        return None
    return (_fmix, _SCHEME_WIDTHS[scheme]) if scheme in _SCHEME_WIDTHS else None


def _identity(value: int) -> int:
    return value


def sketch(title: str | None, text: str) -> np.ndarray:
    """The MinHash signature (NUM_PERM values) of a posting's title and text: datasketch's, computed faster.

    Equal to `MinHash(num_perm=NUM_PERM, seed=SEED)` updated with every shingle (its
    default hash, `sha1_hash32`: the first 4 bytes of the SHA-1 digest, little-endian).
    The hashes are read with one `frombuffer` instead of one `struct.unpack` each, and
    for datasketch's affine schemes the permutation is applied as its `update_batch`
    does, on the array, without a Python call per shingle.
    """
    permutations, scheme = _permutations()
    mh = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=_identity, permutations=permutations,
                 scheme=scheme)  # type: ignore[arg-type]
    grams = shingles(f"{title or ''}\n{text}")
    if not grams:
        return mh.hashvalues
    sha1 = hashlib.sha1
    hashes = np.frombuffer(b"".join([sha1(g.encode("utf-8")).digest()[:4] for g in grams]), dtype="<u4")
    affine = _affine()
    if affine is None:
        mh.update_batch(hashes.tolist())
        return mh.hashvalues
    fmix, width = affine
    a, b = permutations
    hv = fmix(hashes.astype(mh.hashvalues.dtype).reshape(-1, 1), width)  # datasketch's update_batch, CPU path
    return np.minimum(mh.hashvalues, (hv * a + b).min(axis=0))


def _from_values(values: np.ndarray) -> MinHash:
    permutations, scheme = _permutations()
    return MinHash(num_perm=NUM_PERM, seed=SEED, hashvalues=values, permutations=permutations,
                   scheme=scheme)  # type: ignore[arg-type]


def mark_duplicates_sketched(keys: Iterable[DedupeKey], sketches: Mapping[str, np.ndarray],
                             threshold: float = NEAR_THRESHOLD) -> dict[str, DuplicateMark]:
    """Mark duplicates from ids, dates, content hashes and one sketch per content hash.

    `sketches[content_hash]` is `sketch(title, text)` of any posting with that hash.
    Gives the same marks as `mark_duplicates` on the full postings.
    """
    marks: dict[str, DuplicateMark] = {}
    by_hash: dict[str, str] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    originals: dict[str, MinHash] = {}
    order: dict[str, tuple[str, str]] = {}
    for key in sorted(keys, key=lambda k: (k.posted_date, k.posting_id)):
        pid = key.posting_id
        original = by_hash.get(key.content_hash)
        if original is not None:
            marks[pid] = DuplicateMark(original, "exact")
            continue
        mh = _from_values(sketches[key.content_hash])
        near = [c for c in lsh.query(mh) if originals[c].jaccard(mh) >= threshold]
        if near:
            marks[pid] = DuplicateMark(min(near, key=order.__getitem__), "near")
            continue
        marks[pid] = DuplicateMark(None, None)
        by_hash[key.content_hash] = pid
        lsh.insert(pid, mh)
        originals[pid] = mh
        order[pid] = (key.posted_date.isoformat(), pid)
    return marks


def mark_duplicates(postings: Sequence[Posting], threshold: float = NEAR_THRESHOLD) -> dict[str, DuplicateMark]:
    """Mark each posting as an original, or an exact or near duplicate of an original.

    Postings (unique ids) are visited by (posted_date, posting_id), so the earliest
    of a group is the original and the result does not depend on input order. Exact
    means the same words in title and text; near means an estimated Jaccard
    similarity of word 3-gram sets of at least `threshold`.
    """
    sketches: dict[str, np.ndarray] = {}
    for p in postings:
        if p.content_hash not in sketches:
            sketches[p.content_hash] = sketch(p.title, p.text)
    keys = [DedupeKey(p.posting_id, p.posted_date, p.content_hash) for p in postings]
    return mark_duplicates_sketched(keys, sketches, threshold)


@lru_cache(maxsize=4)
def lsh_bands(threshold: float = NEAR_THRESHOLD, num_perm: int = NUM_PERM) -> tuple[tuple[int, int], ...]:
    """The bands (start, end) of the sketch that datasketch's MinHashLSH uses for `threshold`."""
    return tuple((int(s), int(e)) for s, e in MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges)


def mark_duplicate_rows(visit: np.ndarray, hash_codes: np.ndarray, sketches: np.ndarray,
                        threshold: float = NEAR_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """`mark_duplicates_sketched` on arrays, with no per-posting Python objects.

    Args:
        visit: row numbers in visiting order, i.e. sorted by (posted_date, posting_id).
        hash_codes: per row, the number of its content hash (a row of `sketches`).
        sketches: one MinHash signature per distinct content hash (n_hashes x NUM_PERM).

    Returns:
        Per row, the row number of the original it duplicates (-1 for an original) and
        its kind: 0 original, 1 exact, 2 near.

    The same marks as `mark_duplicates_sketched`: an exact duplicate has the content
    hash of an earlier original; a near duplicate shares at least one LSH band (the
    bands of datasketch's MinHashLSH, compared exactly) with an earlier original whose
    estimated Jaccard similarity is at least `threshold`, and the earliest such
    original is chosen. Besides the rows' arrays (about 25 bytes a row), the state is per
    distinct text: the sketch (NUM_PERM x 4 bytes) and one group number (4 bytes) per band.
    """
    n_rows, (n_hashes, width) = len(hash_codes), sketches.shape
    duplicate_of = np.full(n_rows, -1, dtype=np.int64)
    kind = np.zeros(n_rows, dtype=np.int8)
    if n_rows == 0:
        return duplicate_of, kind
    rank = np.empty(n_rows, dtype=np.int64)
    rank[visit] = np.arange(n_rows)
    groups: list[tuple[np.ndarray, dict[int, list[int]]]] = []  # per band: group of each hash, members of shared ones
    for start, end in lsh_bands(threshold, width):
        band = np.ascontiguousarray(sketches[:, start:end])
        keys = band.view(np.dtype((np.void, band.itemsize * (end - start)))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        inverse = inverse.astype(np.int32)
        members: dict[int, list[int]] = {}
        for h in np.flatnonzero(counts[inverse] >= 2).tolist():
            members.setdefault(int(inverse[h]), []).append(h)
        if members:
            groups.append((inverse, members))
    original = np.full(n_hashes, -1, dtype=np.int64)  # per content hash: the original row that has it
    for start in range(0, n_rows, _CHUNK):  # Python ints for a chunk of rows at a time, not for the month
        chunk = visit[start : start + _CHUNK]
        for row, h in zip(chunk.tolist(), hash_codes[chunk].tolist(), strict=True):
            _visit(row, h, original, duplicate_of, kind, rank, groups, sketches, threshold)
    return duplicate_of, kind


_CHUNK = 65_536


def _visit(row: int, h: int, original: np.ndarray, duplicate_of: np.ndarray, kind: np.ndarray, rank: np.ndarray,
           groups: list[tuple[np.ndarray, dict[int, list[int]]]], sketches: np.ndarray, threshold: float) -> None:
    """Mark one row (content hash number `h`), in visiting order: as datasketch's MinHashLSH would."""
    first = int(original[h])
    if first >= 0:  # an original has the same words: exact
        duplicate_of[row], kind[row] = first, 1
        return
    candidates: set[int] = set()  # texts sharing a band with this one
    for inverse, members in groups:
        shared = members.get(int(inverse[h]))
        if shared:
            candidates.update(shared)
    best = -1
    for other in candidates:
        target = int(original[other])
        if target < 0:
            continue
        similarity = float(np.count_nonzero(sketches[h] == sketches[other])) / float(sketches.shape[1])
        if similarity >= threshold and (best < 0 or rank[target] < rank[best]):
            best = target
    if best >= 0:  # the earliest original that is similar enough: near
        duplicate_of[row], kind[row] = best, 2
        return
    original[h] = row
