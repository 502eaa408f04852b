"""The whole pipeline (what `skillpulse run` does) on N generated ads, with 1 and 2 extract workers.

    python benchmarks/generate_ads.py 100000 ads-100k.jsonl
    python benchmarks/pipeline.py ads-10k.jsonl ads-100k.jsonl [--workers 1 2] [--workdir bench-work]

Each (file, workers) runs in a fresh child process: Prefect's start-up (the temporary local
server, started by a trivial flow) is timed and reported separately, then ``pipeline_flow``
runs ingest → extract → aggregate → report into a new output folder. Reports, per run:
ads/s and words/s of the whole run, ads/s after the extract pipelines' start-up, seconds per
stage (from the runs/ dataset), CPU seconds of the process tree, and the peak RSS and PSS of
the tree (the Prefect server, the forkserver and the extract workers included), with each
process's peak; and the load average before and after. Words are counted on the postings
written (originals, streamed from the output), and the bare spaCy tokenizer is timed on a
sample of at most --sample of them, so the benchmark itself holds no more than that sample:
it runs on 1M ads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from flows.settings import configure_environment

configure_environment()  # before Prefect is imported (a busy machine needs the longer server start-up timeout)

# light: the extract workers import this script again (Prefect, spaCy are imported in child())
from throughput import TreeRss  # noqa: E402


def output_words(out: Path, sample: int) -> tuple[int, int, list[tuple[str, str]]]:
    """(original postings, their words, a sample of (text, language)) read back from out/postings, streamed."""
    import pyarrow.compute as pc

    from flows import datasets, storage

    root = storage.root(out)
    months = datasets.partitions(root, "postings")
    per_month = -(-sample // max(1, len(months)))
    ads = words = 0
    picked: list[tuple[str, str]] = []
    for month in months:
        file = storage.parquet_file(datasets.partition_file(root, "postings", month))
        taken = 0
        for batch in file.iter_batches(batch_size=10_000, columns=["text", "language", "duplicate_of"]):
            batch = batch.filter(pc.is_null(batch.column("duplicate_of")))
            ads += batch.num_rows
            words += int(pc.sum(pc.list_value_length(pc.utf8_split_whitespace(batch.column("text")))).as_py() or 0)
            if taken < per_month:
                rows = zip(batch.column("text").to_pylist()[:per_month - taken],
                           batch.column("language").to_pylist(), strict=False)
                new = [(t, lang) for t, lang in rows]
                picked.extend(new)
                taken += len(new)
    return ads, words, picked


def tokenizer_words_per_s(texts: list[tuple[str, str]]) -> float:
    import pandas as pd
    from throughput import bare_tokenizer_seconds

    frame = pd.DataFrame(texts, columns=["text", "language"])
    words = int(frame["text"].str.split().str.len().sum())
    return words / bare_tokenizer_seconds(frame) if words else 0.0


def child(ads: Path, out: Path, workers: int, sample: int) -> dict[str, object]:
    from prefect import flow

    from flows import datasets
    from flows.pipeline import pipeline_flow
    from flows.settings import PipelineSettings

    @flow(name="bench-startup")
    def startup() -> None:
        return None

    load_before = os.getloadavg()
    with TreeRss() as rss:
        t0 = time.perf_counter()
        startup()
        t_start = time.perf_counter() - t0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        summary = pipeline_flow(PipelineSettings(source=str(ads), out_dir=str(out), workers=workers))
        t_run = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    load_after = os.getloadavg()
    run = datasets.read_dataset(out, "runs")
    run = run[run["run_id"] == summary["run_id"]].iloc[0]
    kept = int(summary["counts"].get("kept", 0))
    originals, words, texts = output_words(out, sample)
    ext_start = float(summary.get("extract_startup_seconds") or 0.0)
    seconds = {k: float(run[k]) for k in run.index if k.startswith("seconds_")}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "ads": kept, "originals": originals, "words": words, "workers": workers, "mentions": summary["mentions"],
        "prefect_startup_s": t_start, "run_s": t_run, "extract_startup_s": ext_start,
        "run_ads_per_s": kept / t_run, "run_words_per_s": words / t_run,
        "ads_per_s_after_startup": kept / (t_run - ext_start),
        **seconds,
        "extract_ads_per_s": originals / seconds["seconds_extract"],
        "extract_words_per_s": words / seconds["seconds_extract"],
        "tokenizer_words_per_s": tokenizer_words_per_s(texts), "tokenizer_sample": len(texts),
        "main_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "tree_cpu_s": rss.cpu_seconds, "reaped_children_cpu_s": children.ru_utime + children.ru_stime,
        "peak_rss_mib": rss.peak_mib, "peak_pss_mib": rss.peak_pss_mib, "processes": rss.by_role(),
        "load_before": load_before, "load_after": load_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ads", type=Path, nargs="*")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("bench-work"))
    parser.add_argument("--sample", type=int, default=20_000, help="ads the bare tokenizer is timed on")
    parser.add_argument("--keep", action="store_true", help="keep the output folders")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=4, metavar=("ADS", "OUT", "WORKERS", "SAMPLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ads, out, workers, sample = args.child
        print(json.dumps(child(Path(ads), Path(out), int(workers), int(sample))))
        return
    if not args.ads:
        parser.error("give at least one ads file")
    results = []
    print("| ads | workers | load | Prefect start-up s | run s | run ads/s | extract start-up s | ads/s after start-up "
          "| ingest s | extract s | extract words/s | tokenizer words/s | aggregate s | report s | tree CPU s "
          "| peak RSS MiB | peak PSS MiB | per worker RSS / PSS MiB |")
    print("|" + "---:|" * 18)
    for ads in args.ads:
        for workers in args.workers:
            out = args.workdir / f"{ads.stem}-w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            proc = subprocess.run([sys.executable, __file__, "--child", str(ads), str(out), str(workers),
                                   str(args.sample)], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["file"] = str(ads)
            results.append(r)
            per_worker = ", ".join(f"{p['rss_mib']:,.0f} / {p['pss_mib']:,.0f}"
                                   for p in r["processes"].get("worker", [])) or "–"
            print(f"| {r['ads']:,} | {workers} | {r['load_before'][0]:.1f}–{r['load_after'][0]:.1f} "
                  f"| {r['prefect_startup_s']:.0f} | {r['run_s']:.0f} | {r['run_ads_per_s']:,.0f} "
                  f"| {r['extract_startup_s']:.1f} | {r['ads_per_s_after_startup']:,.0f} "
                  f"| {r['seconds_ingest']:.0f} | {r['seconds_extract']:.0f} | {r['extract_words_per_s']:,.0f} "
                  f"| {r['tokenizer_words_per_s']:,.0f} | {r['seconds_aggregate']:.0f} | {r['seconds_report']:.0f} "
                  f"| {r['tree_cpu_s']:.0f} | {r['peak_rss_mib']:,.0f} | {r['peak_pss_mib']:,.0f} "
                  f"| {per_worker} |", flush=True)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
