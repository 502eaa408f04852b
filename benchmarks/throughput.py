"""Extract throughput against the bare spaCy tokenizer, on the same text, in the same run.

    python benchmarks/generate_ads.py 10000 ads-10k.jsonl
    python benchmarks/throughput.py ads-10k.jsonl [--workers 1 2]

Normalises the ads (as ingest does), then times (1) the bare blank-pipeline tokenizer
of each ad's language and (2) extract as the flow runs a month (sentences, normaliser, matcher, the
competence classifier when it is in the pipeline, the mention rows sorted as Arrow tables,
written to a streamed Parquet partition), with 1 and 2 worker processes. Pipelines are built
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

# spaCy, Prefect and the extractors are imported where used, so that importing TreeRss from
# here (benchmarks/pipeline.py does) stays light for the extract workers, which import the
# main script again


def _proc_kib(pid: int, name: str, field: str) -> int:
    """A kB figure of /proc/<pid>/<name> (the line starting with `field`), 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kib(pid: int) -> int:
    return _proc_kib(pid, "status", "VmRSS:")


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them (Linux)."""
    return _proc_kib(pid, "smaps_rollup", "Pss:")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


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
    """Peak memory of this process and all its descendants (sampled every `every` s; Linux).

    RSS summed over processes counts pages they share (the forkserver's pipelines, in
    every worker forked from it) once per process; PSS divides each shared page among
    its sharers, so summed PSS is the tree's real footprint. Also kept: each process's
    peak RSS and PSS, role (main, forkserver, worker = forked from it, spawned, other) and CPU
    seconds (as last seen).
    """

    def __init__(self, every: float = 0.5) -> None:
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.procs: dict[int, dict[str, object]] = {}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def _role(self, pid: int) -> str:
        if pid == os.getpid():
            return "main"
        cmd = _cmdline(pid)
        if "resource_tracker" in cmd:
            return "other"
        if "forkserver" in cmd:  # the forkserver, and the workers forked from it (same command line)
            return "forkserver" if _parent(pid) == os.getpid() else "worker"
        if "spawn_main" in cmd:  # a spawned worker (ingest's pool, or extract's without a forkserver)
            return "spawned"
        return "other"

    def sample(self) -> int:
        rss_total = pss_total = 0
        for pid in _descendants(os.getpid()):
            rss, pss = _rss_kib(pid), _pss_kib(pid)
            rss_total, pss_total = rss_total + rss, pss_total + pss
            info = self.procs.setdefault(pid, {"role": self._role(pid), "rss_kib": 0, "pss_kib": 0, "cpu_s": 0.0})
            info["rss_kib"] = max(int(info["rss_kib"]), rss)  # type: ignore[call-overload]
            info["pss_kib"] = max(int(info["pss_kib"]), pss)  # type: ignore[call-overload]
            info["cpu_s"] = max(float(info["cpu_s"]), _cpu_seconds(pid))  # type: ignore[arg-type]
        self.peak_kib = max(self.peak_kib, rss_total)
        self.peak_pss_kib = max(self.peak_pss_kib, pss_total)
        return rss_total

    @property
    def peak_pss_mib(self) -> float:
        return self.peak_pss_kib / 1024

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of the tree: every process seen, as last sampled."""
        return sum(float(p["cpu_s"]) for p in self.procs.values())  # type: ignore[arg-type]

    def by_role(self) -> dict[str, list[dict[str, float]]]:
        """Per process of each role: peak RSS and PSS (MiB) and CPU seconds."""
        out: dict[str, list[dict[str, float]]] = {}
        for info in self.procs.values():
            out.setdefault(str(info["role"]), []).append({
                "rss_mib": int(info["rss_kib"]) / 1024, "pss_mib": int(info["pss_kib"]) / 1024,  # type: ignore[call-overload]
                "cpu_s": float(info["cpu_s"])})  # type: ignore[arg-type]
        return out

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
    """Every ad of the file, normalised as ingest does (in memory: for 10k-100k ads, not 1M)."""
    from flows.records import Posting, to_posting

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
    import spacy

    from extractors.nlp import spacy_lang

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
    """Start-up (pipelines built, workers started) and extract seconds, and mention rows.

    Extract runs as the flow runs a month (``flows.extract.extract_month`` after reading the
    postings): chunks of ads → sorted Arrow tables of mention rows (in the pool's workers
    when there is a pool) → one streamed, zstd-compressed Parquet partition in a temporary
    folder.
    """
    import tempfile

    from extractors.nlp import warm_up
    from flows import datasets, storage
    from flows.extract import MENTION_ROW_GROUP, chunk_size, extract_pool, mention_tables
    from taxonomy.load import load_taxonomy

    languages = sorted(set(frame["language"]))
    version = load_taxonomy(taxonomy).version
    originals = frame[frame["duplicate_of"].isna()]
    triples = list(zip(originals["posting_id"], originals["text"], originals["language"], strict=True))
    t0 = time.perf_counter()
    with extract_pool(workers, taxonomy, languages) as pool, tempfile.TemporaryDirectory() as tmp:
        if pool is None:
            warm_up(languages, taxonomy, 0.0, disable)
        else:  # one warm-up per worker: each holds its task until the other has taken one
            list(pool.map(warm_up, [languages] * workers, [taxonomy] * workers, [2.0] * workers, [disable] * workers))
        startup = time.perf_counter() - t0
        size = chunk_size(len(triples), workers)
        parts = [triples[i:i + size] for i in range(0, len(triples), size)]
        rows = [0]

        def tables():  # type: ignore[no-untyped-def]
            for table in mention_tables(parts, taxonomy, version, 256, "bench", pool):
                rows[0] += table.num_rows
                yield table

        t0 = time.perf_counter()
        datasets.write_partition_streamed(storage.root(tmp), "mentions", "2026-01", tables(), MENTION_ROW_GROUP,
                                          coalesce=True)
        seconds = time.perf_counter() - t0
    return {"startup": startup, "seconds": seconds, "rows": rows[0]}


def worker_startup(workers: int, taxonomy: str, languages: list[str], method: str) -> dict[str, object]:
    """Seconds until a pool of `workers` extract processes holds the pipelines, and their RSS / PSS.

    `method` is "forkserver" (the default of flows.extract: pipelines built once in the
    forkserver) or "spawn" (each worker builds its own). For the forkserver, a second pool
    is timed too: the forkserver is then running already, so that is a worker's own start-up.
    """
    from extractors.nlp import warm_up
    from flows import extract

    extract.START_METHOD = method
    out: dict[str, object] = {"method": method, "workers": workers}
    for attempt in ("first pool", "second pool") if method == "forkserver" else ("first pool",):
        t0 = time.perf_counter()
        with extract.extract_pool(workers, taxonomy, languages) as pool:
            assert pool is not None
            # each worker holds its task for 2 s, so that every worker takes one
            pids = list(pool.map(warm_up, [languages] * workers, [taxonomy] * workers, [2.0] * workers))
            seconds = time.perf_counter() - t0 - 2.0
            procs = [{"pid": p, "rss_mib": _rss_kib(p) / 1024, "pss_mib": _pss_kib(p) / 1024,
                      "cpu_s": _cpu_seconds(p)} for p in set(pids)]
            servers = {_parent(p) for p in pids} - {os.getpid()}
            server = [{"rss_mib": _rss_kib(p) / 1024, "pss_mib": _pss_kib(p) / 1024, "cpu_s": _cpu_seconds(p)}
                      for p in servers]
        out[attempt] = {"seconds": seconds, "workers": procs, "forkserver": server}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ads", type=Path, nargs="+", help="JSON Lines of ads (benchmarks/generate_ads.py)")
    parser.add_argument("--taxonomy", default="builtin")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--without", nargs="*", default=[], help="pipeline components to switch off")
    parser.add_argument("--startup", choices=["forkserver", "spawn"],
                        help="only time the start-up of a pool of --workers processes (the first value)")
    args = parser.parse_args()
    if args.startup:
        frame, _ = load_postings(args.ads[0])
        result = worker_startup(args.workers[0], args.taxonomy, sorted(set(frame["language"])), args.startup)
        result["load"] = os.getloadavg()
        print(json.dumps(result, indent=2))
        return

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
