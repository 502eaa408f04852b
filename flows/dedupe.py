"""Exact and near-duplicate detection within a month (MinHash LSH from datasketch).

Dedupe needs, per posting, only its id, posted date and content hash, plus one MinHash
sketch per distinct content hash (equal hashes mean the same words, hence the same
sketch). `mark_duplicates_sketched` works on exactly that, so a month can be
deduplicated without holding its texts: the caller streams the texts once through
`sketch` and keeps 64 integers per distinct text (see flows/ingest.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

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


def _minhash(text: str) -> MinHash:
    permutations, scheme = _permutations()
    mh = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=permutations, scheme=scheme)  # type: ignore[arg-type]
    grams = shingles(text)
    if grams:
        mh.update_batch([g.encode("utf-8") for g in grams])
    return mh


def sketch(title: str | None, text: str) -> np.ndarray:
    """The MinHash signature (NUM_PERM uint64) of a posting's title and text."""
    return _minhash(f"{title or ''}\n{text}").hashvalues


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
