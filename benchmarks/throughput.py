"""Extract throughput against the bare spaCy tokenizer, on the same text, in the same run.

    python benchmarks/generate_ads.py 10000 ads-10k.jsonl
    python benchmarks/throughput.py ads-10k.jsonl [--workers 1 2]

Normalises the ads (as ingest does), then times (1) the bare blank-pipeline tokenizer
of each ad's language and (2) extract as the flow runs it (``flows.extract.month_mentions``:
sentences, normaliser, matcher, the competence classifier when it is in the pipeline,
and the mention rows, sorted), with 1 and 2 worker processes. Pipelines are built
before timing (start-up is reported separately). Prints ads/s, words/s, the ratio
extract / tokenizer and the peak RSS of the whole process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import spacy

from extractors.nlp import spacy_lang, warm_up
from flows.extract import extract_pool, month_mentions
from flows.records import Posting, to_posting


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


class TreeRss:
    """Peak resident memory of this process and all its descendants (sampled every 0.2 s; Linux)."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.2)

    def sample(self) -> int:
        now = sum(_rss_kib(p) for p in _descendants(os.getpid()))
        self.peak_kib = max(self.peak_kib, now)
        return now

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def load_postings(path: Path) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        posts = [p for p in (to_posting(json.loads(line), "bench") for line in fh) if isinstance(p, Posting)]
    seconds = time.perf_counter() - t0
    frame = pd.DataFrame({
        "posting_id": [p.posting_id for p in posts],
        "text": [p.text for p in posts],
        "language": [p.language for p in posts],
        "duplicate_of": [None] * len(posts),
    })
    return frame, seconds


def bare_tokenizer_seconds(frame: pd.DataFrame) -> float:
    by_lang: dict[str, list[str]] = defaultdict(list)
    for text, lang in zip(frame["text"], frame["language"], strict=True):
        by_lang[lang].append(text)
    blank = {lang: spacy.blank(spacy_lang(lang)) for lang in by_lang}
    t0 = time.perf_counter()
    for lang, texts in by_lang.items():
        for _ in blank[lang].pipe(texts, batch_size=256):
            pass
    return time.perf_counter() - t0


def extract_seconds(frame: pd.DataFrame, workers: int, taxonomy: str, disable: tuple = ()) -> dict[str, float]:
    """Start-up (pipelines built, workers started) and extract seconds, and mention rows."""
    languages = sorted(set(frame["language"]))
    t0 = time.perf_counter()
    with extract_pool(workers) as pool:
        if pool is None:
            warm_up(languages, taxonomy, 0.0, disable)
        else:  # one warm-up per worker: each holds its task until the other has taken one
            list(pool.map(warm_up, [languages] * workers, [taxonomy] * workers, [2.0] * workers, [disable] * workers))
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = month_mentions(frame, taxonomy, 256, "bench", pool)
        seconds = time.perf_counter() - t0
    return {"startup": startup, "seconds": seconds, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ads", type=Path, nargs="+", help="JSON Lines of ads (benchmarks/generate_ads.py)")
    parser.add_argument("--taxonomy", default="builtin")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--without", nargs="*", default=[], help="pipeline components to switch off")
    args = parser.parse_args()

    results = []
    print("| ads | workers | tokenizer words/s | extract ads/s | extract words/s | extract / tokenizer "
          "| start-up s | peak RSS MiB (tree) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.ads:
        frame, t_norm = load_postings(path)
        n = len(frame)
        words = int(frame["text"].str.split().str.len().sum())
        for workers in args.workers:
            t_tok = bare_tokenizer_seconds(frame)  # the limit, measured again beside each extract run
            with TreeRss() as rss:
                ext = extract_seconds(frame, workers, args.taxonomy, tuple(args.without))
            row = {
                "file": str(path), "without": args.without, "ads": n, "words": words, "workers": workers,
                "mention_rows": ext["rows"],
                "normalise_ads_per_s": n / t_norm, "tokenizer_words_per_s": words / t_tok,
                "extract_ads_per_s": n / ext["seconds"], "extract_words_per_s": words / ext["seconds"],
                "ratio": t_tok / ext["seconds"], "startup_s": ext["startup"], "peak_rss_mib": rss.peak_mib,
            }
            results.append(row)
            print(f"| {n:,} | {workers} | {row['tokenizer_words_per_s']:,.0f} | {row['extract_ads_per_s']:,.0f} "
                  f"| {row['extract_words_per_s']:,.0f} | {row['ratio']:.2f} | {ext['startup']:.1f} "
                  f"| {rss.peak_mib:,.0f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
