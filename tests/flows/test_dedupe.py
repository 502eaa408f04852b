from __future__ import annotations

from datetime import date

from extractors.text import fingerprint
from flows.dedupe import mark_duplicates
from flows.records import Posting

BASE = ("Мы ищем бухгалтера в производственную компанию. Обязанности: ведение первичной документации, "
        "расчёт заработной платы, сдача отчётности в налоговую. Требования: опыт работы с 1С:Бухгалтерия "
        "от двух лет, уверенное знание Excel, внимательность. Мы предлагаем: официальное оформление, "
        "зарплату от 1500 рублей, дружный коллектив и обучение за счёт компании.")


def _posting(pid: str, text: str, day: int = 1) -> Posting:
    return Posting(posting_id=pid, source="s", source_id=pid, url=None, title="Бухгалтер", employer=None,
                   text=text, language="ru", country="BY", region=None, city=None,
                   posted_date=date(2026, 8, day), content_hash=fingerprint("Бухгалтер\n" + text), pii_removed=0)


def test_dedupe_marks_exact_and_near_duplicates_against_the_earliest() -> None:
    postings = [
        _posting("c", BASE.replace("1500", "1700"), day=3),   # near: salary changed
        _posting("a", BASE, day=1),                             # the original
        _posting("b", BASE.upper(), day=2),                     # exact: same words
        _posting("d", "Водитель категории C, опыт от трёх лет, маршруты по городу и области.", day=2),
    ]
    marks = mark_duplicates(postings)
    assert (marks["a"].duplicate_of, marks["a"].kind) == (None, None)
    assert (marks["b"].duplicate_of, marks["b"].kind) == ("a", "exact")
    assert (marks["c"].duplicate_of, marks["c"].kind) == ("a", "near")
    assert (marks["d"].duplicate_of, marks["d"].kind) == (None, None)


def test_dedupe_result_does_not_depend_on_input_order() -> None:
    postings = [_posting("a", BASE, 1), _posting("b", BASE + " Добавлено одно предложение.", 2), _posting("c", BASE, 3)]
    assert mark_duplicates(postings) == mark_duplicates(list(reversed(postings)))


def test_dedupe_keeps_different_ads() -> None:
    other = ("Ищем программиста Python: Django, PostgreSQL, Docker, Git. Удалённая работа, гибкий график, "
             "опыт от трёх лет.")
    marks = mark_duplicates([_posting("a", BASE), _posting("b", other)])
    assert all(m.kind is None for m in marks.values())


def test_dedupe_from_sketches_equals_dedupe_from_texts() -> None:
    from flows.dedupe import DedupeKey, mark_duplicates_sketched, sketch

    postings = [_posting("c", BASE.replace("1500", "1700"), 3), _posting("a", BASE, 1), _posting("b", BASE.upper(), 2),
                _posting("e", BASE.upper(), 4), _posting("d", "Водитель категории C, опыт от трёх лет.", 2)]
    sketches = {p.content_hash: sketch(p.title, p.text) for p in postings}
    assert len(sketches) == 3  # one per distinct text: exact duplicates share theirs
    keys = [DedupeKey(p.posting_id, p.posted_date, p.content_hash) for p in postings]
    assert mark_duplicates_sketched(keys, sketches) == mark_duplicates(postings)
    assert mark_duplicates(postings)["e"].kind == "exact"


def test_dedupe_sketch_is_datasketch_minhash() -> None:
    from datasketch import MinHash

    from extractors.text import shingles
    from flows.dedupe import NUM_PERM, SEED, sketch

    reference = MinHash(num_perm=NUM_PERM, seed=SEED)
    for gram in shingles("Бухгалтер\n" + BASE):
        reference.update(gram.encode("utf-8"))
    assert (sketch("Бухгалтер", BASE) == reference.hashvalues).all()
    for title, text in ((None, ""), ("", "Excel"), ("SQL", "Excel")):  # no shingle, one, two
        reference = MinHash(num_perm=NUM_PERM, seed=SEED)
        for gram in shingles(f"{title or ''}\n{text}"):
            reference.update(gram.encode("utf-8"))
        assert (sketch(title, text) == reference.hashvalues).all()


def _variants(n: int, seed: int) -> list[Posting]:
    """Postings built from a few texts with a few words changed: exact, near and not-so-near duplicates."""
    import random

    rng = random.Random(seed)
    words = BASE.split()
    bases = [words, list(reversed(words)), words[10:] + words[:10]]
    postings = []
    for i in range(n):
        text = list(rng.choice(bases))
        for _ in range(rng.choice([0, 0, 1, 2, 4, 8, 16])):
            text[rng.randrange(len(text))] = rng.choice(["Excel", "SQL", "1С", "Python", "опыт", "график"])
        body = " ".join(text)
        if rng.random() < 0.2:
            body = body.upper()  # the same words: an exact duplicate of the lower-case one
        postings.append(_posting(f"{rng.randrange(16**6):06x}{i:04d}", body, day=rng.randint(1, 4)))
    return postings


def test_dedupe_rows_equal_datasketch_lsh_marks() -> None:
    """mark_duplicate_rows (arrays, used by ingest) gives exactly the marks of datasketch's MinHashLSH."""
    import numpy as np

    from flows.dedupe import DedupeKey, mark_duplicate_rows, mark_duplicates_sketched, sketch

    for seed in range(3):
        postings = _variants(150, seed)
        hashes = list(dict.fromkeys(p.content_hash for p in postings))
        by_hash = {p.content_hash: sketch(p.title, p.text) for p in postings}
        sketches = np.stack([by_hash[h] for h in hashes])
        codes = np.array([hashes.index(p.content_hash) for p in postings])
        visit = np.array(sorted(range(len(postings)), key=lambda i: (postings[i].posted_date, postings[i].posting_id)))
        duplicate_of, kind = mark_duplicate_rows(visit, codes, sketches)
        names = {0: None, 1: "exact", 2: "near"}
        got = {p.posting_id: (postings[duplicate_of[i]].posting_id if duplicate_of[i] >= 0 else None, names[kind[i]])
               for i, p in enumerate(postings)}
        reference = mark_duplicates_sketched(
            [DedupeKey(p.posting_id, p.posted_date, p.content_hash) for p in postings], by_hash)
        assert got == {pid: (m.duplicate_of, m.kind) for pid, m in reference.items()}
        kinds = [m.kind for m in reference.values()]
        assert kinds.count("near") >= 10 and kinds.count("exact") >= 10 and kinds.count(None) >= 3
