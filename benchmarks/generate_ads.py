"""Generate N realistic job ads for benchmarks from the bundled sample's distributions.

Each generated ad takes a title, employer, place and language from one sample ad and
builds its body from lines of sample ads of the same language (so lengths, languages,
HTML share and skill density follow the sample). Deterministic for a given seed.

    python benchmarks/generate_ads.py 100000 ads-100k.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import date, timedelta
from pathlib import Path

from flows.records import Posting, to_posting
from flows.sources import load_sources, read_records


def sample_ads() -> list[dict]:
    ads = []
    for source in load_sources(None):
        for raw in read_records(source):
            posting = to_posting(raw.record, source.name) if raw.record is not None else None
            if isinstance(posting, Posting):
                ads.append(dict(raw.record) | {"_lang": posting.language, "_lines": posting.text.split("\n")})
    return ads


def generate(n: int, out: Path, seed: int = 7) -> int:
    rng = random.Random(seed)
    ads = sample_ads()
    lines_by_lang: dict[str, list[str]] = {}
    for ad in ads:
        lines_by_lang.setdefault(ad["_lang"], []).extend(line for line in ad["_lines"] if line)
    start = date(2026, 1, 1)
    words = 0
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n):
            base = rng.choice(ads)
            pool = lines_by_lang[base["_lang"]]
            body = [rng.choice(pool) for _ in range(max(3, len(base["_lines"]) + rng.randint(-3, 3)))]
            html = rng.random() < 0.25
            description = "".join(f"<p>{line}</p>" for line in body) if html else "\n".join(body)
            words += sum(len(line.split()) for line in body)
            record = {k: v for k, v in base.items() if not k.startswith("_")}
            record |= {"id": f"gen-{i:07d}", "description": description,
                       "posted_at": (start + timedelta(days=rng.randrange(365))).isoformat()}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    words = generate(args.n, args.out, args.seed)
    print(f"wrote {args.n} ads, {words} words, to {args.out}")


if __name__ == "__main__":
    main()
