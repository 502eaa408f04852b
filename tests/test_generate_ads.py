"""benchmarks/generate_ads.py: deterministic, valid ads whose vocabulary grows like real text's."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from extractors.text import looks_like_html
from flows.records import Posting, to_posting

ROOT = Path(__file__).resolve().parent.parent


def _generate(path: Path, n: int, seed: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate_ads import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    generate(n, path, seed)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generated_ads_are_deterministic_valid_and_varied(tmp_path: Path) -> None:
    ads = _generate(tmp_path / "a.jsonl", 2_000, seed=11)
    again = _generate(tmp_path / "b.jsonl", 2_000, seed=11)
    other = _generate(tmp_path / "c.jsonl", 50, seed=12)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes() and ads == again
    assert other[:50] != ads[:50]
    assert [ad["id"] for ad in ads] == [f"gen-{i:07d}" for i in range(2_000)]
    postings = [to_posting(ad, "gen") for ad in ads]
    assert all(isinstance(p, Posting) for p in postings)
    languages = Counter(p.language for p in postings if isinstance(p, Posting))
    assert {"en", "ru", "uk", "ro", "ka", "be"} <= set(languages) and max(languages.values()) < 0.4 * len(ads)
    html = sum(looks_like_html(ad["description"]) for ad in ads) / len(ads)
    assert 0.1 < html < 0.4
    repeats = Counter(ad["description"] for ad in ads)
    assert 0 < sum(n - 1 for n in repeats.values()) < 0.05 * len(ads)  # a few ads repeated, as boards do
    # vocabulary grows with the text (Heaps' law), unlike bodies made of whole sample lines
    words = [w for ad in ads for w in re.sub(r"<[^>]+>", " ", ad["description"]).split()]
    assert len(set(words[:100_000])) > 1.6 * len(set(words[:25_000])) > 8_000
    # skill words are never replaced: the sample's skills still appear, often
    text = " ".join(ad["description"] for ad in ads)
    assert text.count("Excel") > 100 and text.count("1С") > 20 and text.count("Python") > 20
