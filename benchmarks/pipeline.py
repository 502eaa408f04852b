"""The whole pipeline (what `skillpulse run` does) on N generated ads, with 1 and 2 extract workers.

    python benchmarks/generate_ads.py 10000 ads-10k.jsonl
    python benchmarks/pipeline.py ads-10k.jsonl [--workers 1 2] [--workdir bench-work]

Each (file, workers) runs in a fresh child process: Prefect's start-up (the temporary local
server, started by a trivial flow) is timed and reported separately, then ``pipeline_flow``
runs ingest → extract → aggregate → report into a new output folder. Reports ads/s and
words/s of the whole run and of extract alone, the bare spaCy tokenizer's words/s on the
same texts in the same process, and the peak RSS of the process tree (the Prefect server
process included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from flows.settings import configure_environment

configure_environment()  # before Prefect is imported (a busy machine needs the longer server start-up timeout)

from throughput import TreeRss, bare_tokenizer_seconds, load_postings  # noqa: E402


def child(ads: Path, out: Path, workers: int) -> dict[str, float]:
    from prefect import flow

    from flows import datasets
    from flows.pipeline import pipeline_flow
    from flows.settings import PipelineSettings

    frame, _ = load_postings(ads)
    words = int(frame["text"].str.split().str.len().sum())
    t_tok = bare_tokenizer_seconds(frame)
    del frame

    @flow(name="bench-startup")
    def startup() -> None:
        return None

    with TreeRss() as rss:
        t0 = time.perf_counter()
        startup()
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = pipeline_flow(PipelineSettings(source=str(ads), out_dir=str(out), workers=workers))
        t_run = time.perf_counter() - t0
    run = datasets.read_dataset(out, "runs")
    run = run[run["run_id"] == summary["run_id"]].iloc[0]
    kept = int(summary["counts"].get("kept", 0))
    return {
        "ads": kept, "words": words, "workers": workers, "mentions": summary["mentions"],
        "prefect_startup_s": t_start, "run_s": t_run,
        "run_ads_per_s": kept / t_run, "run_words_per_s": words / t_run,
        **{k: float(run[k]) for k in run.index if k.startswith("seconds_")},
        "extract_ads_per_s": kept / float(run["seconds_extract"]),
        "extract_words_per_s": words / float(run["seconds_extract"]),
        "tokenizer_words_per_s": words / t_tok, "ratio": t_tok / float(run["seconds_extract"]),
        "peak_rss_mib": rss.peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ads", type=Path, nargs="*")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("bench-work"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("ADS", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ads, out, workers = args.child
        print(json.dumps(child(Path(ads), Path(out), int(workers))))
        return
    if not args.ads:
        parser.error("give at least one ads file")
    results = []
    print("| ads | workers | Prefect start-up s | run s | run ads/s | ingest s | extract s | extract ads/s "
          "| extract words/s | tokenizer words/s | extract / tokenizer | aggregate s | report s | peak RSS MiB |")
    print("|" + "---:|" * 14)
    for ads in args.ads:
        for workers in args.workers:
            out = args.workdir / f"{ads.stem}-w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            proc = subprocess.run([sys.executable, __file__, "--child", str(ads), str(out), str(workers)],
                                  capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"| {r['ads']:,} | {workers} | {r['prefect_startup_s']:.0f} | {r['run_s']:.0f} "
                  f"| {r['run_ads_per_s']:,.0f} | {r['seconds_ingest']:.0f} | {r['seconds_extract']:.0f} "
                  f"| {r['extract_ads_per_s']:,.0f} | {r['extract_words_per_s']:,.0f} "
                  f"| {r['tokenizer_words_per_s']:,.0f} | {r['ratio']:.2f} | {r['seconds_aggregate']:.0f} "
                  f"| {r['seconds_report']:.0f} | {r['peak_rss_mib']:,.0f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
