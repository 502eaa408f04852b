"""Ingest throughput and peak memory for N generated ads (JSON Lines).

For each N, generates N ads with benchmarks/generate_ads.py (cached in --workdir), then
runs the ingest flow's body (`ingest_flow.fn`, its tasks replaced by their bodies: no
Prefect server, no API calls) in a fresh child process, so that the peak resident
memory (ru_maxrss) is that run's alone:

    python benchmarks/ingest.py 10000 100000 [--workdir DIR] [--workers 1 0]

Each N runs once per `--workers` value (the pipeline's `workers` setting: 1 = normalise
in one process, 0 = automatic, 2 worker processes on a 2-core machine). Start-up (loading
the language model, the lemmatiser's dictionaries, the occupation rules and the
gazetteer, by normalising one ad, in the main process) is timed apart from the ingest
itself; ads/second is over the ingest after start-up, which includes starting the worker
processes (they load the same models). CPU seconds (user + system, of the process and its
workers) are printed too: on a shared machine they say more than wall-clock seconds, and
the load average (1 minute, at the start and end of each run) says how shared it was.
Peak RSS is the largest sum over the process and its workers (sampled every 0.2 s).

Prints a Markdown table: N, workers, start-up and ingest seconds, ads/second, CPU seconds,
ads per CPU second, peak RSS, and the run's counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import TreeRss  # noqa: E402  (peak RSS of the process tree, sampled)


def run_child(ads: Path, out: Path, workers: int) -> dict:
    """Ingest `ads` into `out` in this process; the numbers as a dict."""
    from prefect import Task
    from prefect.logging import disable_run_logger

    from flows import ingest
    from flows.settings import PipelineSettings

    for name, obj in list(vars(ingest).items()):  # run the tasks' bodies: no Prefect server, no API calls
        if isinstance(obj, Task):
            setattr(ingest, name, obj.fn)

    from datetime import UTC, datetime

    from flows.records import Posting, to_posting

    t0 = time.perf_counter()
    with ads.open(encoding="utf-8") as fh:  # start-up: load every model by normalising the first ad
        first = json.loads(fh.readline())
    warm = to_posting(first, "bench")
    if isinstance(warm, Posting):
        ingest.posting_row(warm, "bench", datetime.now(UTC))
    startup = time.perf_counter() - t0

    settings = PipelineSettings(source=str(ads), out_dir=str(out), workers=workers)
    load = os.getloadavg()[0]
    cpu0, t0 = _cpu(), time.perf_counter()
    with disable_run_logger(), TreeRss(every=0.2) as rss:
        result = ingest.ingest_flow.fn(settings, "bench")
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    peak_kib = max(rss.peak_kib, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    return {"workers": ingest.ingest_workers(workers), "startup": startup, "seconds": seconds, "cpu": cpu,
            "peak_rss_mib": peak_kib / 1024, "main_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load": [load, os.getloadavg()[0]], "counts": result["counts"]}


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (the ingest's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "skillpulse-bench")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0],
                        help="the workers setting to run each N with (1 = one process, 0 = automatic)")
    parser.add_argument("--child", nargs=3, metavar=("ADS", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))))
        return
    sys.path.insert(0, str(HERE))
    from generate_ads import generate

    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.n:
        ads = args.workdir / f"ads-{n}.jsonl"
        if not ads.exists():
            generate(n, ads)
        for workers in args.workers:
            out = args.workdir / f"out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            env = os.environ | {"PREFECT_LOGGING_LEVEL": "CRITICAL"}
            proc = subprocess.run([sys.executable, __file__, "--child", str(ads), str(out), str(workers)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                sys.exit(f"N={n}: the ingest failed (status {proc.returncode}):\n{proc.stderr[-5000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((n, result))
            print(f"N={n}, workers={workers}: {result}", file=sys.stderr, flush=True)
    print("| ads | workers | start-up s | ingest s | ads/second | CPU s | ads/CPU second | peak RSS (MiB) "
          "| load (1 min) | read | kept | duplicates | quarantined |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for n, r in rows:
        c = r["counts"]
        print(f"| {n:,} | {r['workers']} | {r['startup']:.1f} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | "
              f"{r['cpu']:.1f} | {n / r['cpu']:,.0f} | {r['peak_rss_mib']:,.0f} | "
              f"{r['load'][0]:.1f} → {r['load'][1]:.1f} | {c.get('read', 0):,} | {c.get('kept', 0):,} | "
              f"{c.get('duplicates', 0):,} | {c.get('quarantined', 0):,} |")


if __name__ == "__main__":
    main()
