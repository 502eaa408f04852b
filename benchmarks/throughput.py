"""Extract throughput against the bare spaCy tokenizer, on the same text, in the same run.

    python benchmarks/generate_ads.py 10000 ads-10k.jsonl
    python benchmarks/throughput.py ads-10k.jsonl

Normalises the ads (as ingest does), then times (1) the bare blank-pipeline tokenizer
of each ad's language and (2) the skill pipeline (sentences, normaliser, matcher) plus
mention rows, both with nlp.pipe over the same texts. Pipelines are built before
timing. Prints ads/s, words/s and the ratio extract / tokenizer.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import defaultdict
from pathlib import Path

import spacy

from extractors.mentions import extract_mentions
from extractors.nlp import get_nlp, spacy_lang
from flows.records import Posting, to_posting
from taxonomy.load import load_taxonomy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ads", type=Path, help="JSON Lines of ads (benchmarks/generate_ads.py)")
    parser.add_argument("--taxonomy", default="builtin")
    args = parser.parse_args()

    t0 = time.perf_counter()
    with args.ads.open(encoding="utf-8") as fh:
        posts = [p for p in (to_posting(json.loads(line), "bench") for line in fh) if isinstance(p, Posting)]
    t_norm = time.perf_counter() - t0
    words = sum(len(p.text.split()) for p in posts)
    by_lang: dict[str, list[str]] = defaultdict(list)
    for p in posts:
        by_lang[p.language].append(p.text)

    blank = {lang: spacy.blank(spacy_lang(lang)) for lang in by_lang}
    t0 = time.perf_counter()
    for lang, texts in by_lang.items():
        for _ in blank[lang].pipe(texts, batch_size=256):
            pass
    t_tok = time.perf_counter() - t0

    taxonomy = load_taxonomy(args.taxonomy)
    for lang in by_lang:
        get_nlp(lang, args.taxonomy, taxonomy.version)
    t0 = time.perf_counter()
    rows = sum(
        1 for _ in extract_mentions(((p.posting_id, p.text, p.language) for p in posts), taxonomy, args.taxonomy)
    )
    t_ext = time.perf_counter() - t0

    n = len(posts)
    print(f"ads {n}, words {words}, mention rows {rows}, languages {dict((k, len(v)) for k, v in by_lang.items())}")
    print(f"normalise (ingest, one process): {n / t_norm:,.0f} ads/s")
    print(f"bare tokenizer:                  {n / t_tok:,.0f} ads/s  {words / t_tok:,.0f} words/s")
    print(f"extract (pipeline + rows):       {n / t_ext:,.0f} ads/s  {words / t_ext:,.0f} words/s")
    print(f"extract / tokenizer:             {t_tok / t_ext:.2f}")
    print(f"peak RSS:                        {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
