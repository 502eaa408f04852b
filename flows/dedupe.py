"""Exact and near-duplicate detection within a month (MinHash LSH from datasketch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def _minhash(text: str) -> MinHash:
    mh = MinHash(num_perm=NUM_PERM, seed=SEED)
    for shingle in shingles(text):
        mh.update(shingle.encode("utf-8"))
    return mh


def mark_duplicates(postings: Sequence[Posting], threshold: float = NEAR_THRESHOLD) -> dict[str, DuplicateMark]:
    """Mark each posting as an original, or an exact or near duplicate of an original.

    Postings (unique ids) are visited by (posted_date, posting_id), so the earliest
    of a group is the original and the result does not depend on input order. Exact
    means the same words in title and text; near means an estimated Jaccard
    similarity of word 3-gram sets of at least `threshold`.
    """
    marks: dict[str, DuplicateMark] = {}
    by_hash: dict[str, str] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[str, MinHash] = {}
    order: dict[str, tuple[str, str]] = {}
    for posting in sorted(postings, key=lambda p: (p.posted_date, p.posting_id)):
        pid = posting.posting_id
        original = by_hash.get(posting.content_hash)
        if original is not None:
            marks[pid] = DuplicateMark(original, "exact")
            continue
        sketch = _minhash(f"{posting.title or ''}\n{posting.text}")
        near = [c for c in lsh.query(sketch) if sketches[c].jaccard(sketch) >= threshold]
        if near:
            marks[pid] = DuplicateMark(min(near, key=order.__getitem__), "near")
            continue
        marks[pid] = DuplicateMark(None, None)
        by_hash[posting.content_hash] = pid
        lsh.insert(pid, sketch)
        sketches[pid] = sketch
        order[pid] = (posting.posted_date.isoformat(), pid)
    return marks
