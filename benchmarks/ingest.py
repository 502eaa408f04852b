"""Ingest throughput and peak memory for N generated ads (JSON Lines).

For each N, generates N ads with benchmarks/generate_ads.py (cached in --workdir), then
runs the ingest flow's body (`ingest_flow.fn`, its tasks replaced by their bodies: no
Prefect server, no API calls) in a fresh child process, so that the peak resident
memory (ru_maxrss) is that run's alone:

    python benchmarks/ingest.py 10000 100000 [--workdir DIR]

Start-up (loading the language model, the lemmatiser's dictionaries, the occupation
rules and the gazetteer, by normalising one ad) is timed apart from the ingest itself;
ads/second is over the ingest after start-up. CPU seconds (user + system) are printed
too: on a shared machine they say more than wall-clock seconds, and the load average
(1 minute, at the start and end of each run) says how shared it was.

Prints a Markdown table: N, start-up and ingest seconds, ads/second, CPU seconds, ads
per CPU second, peak RSS, and the run's counts.
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


def run_child(ads: Path, out: Path) -> dict:
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

    settings = PipelineSettings(source=str(ads), out_dir=str(out))
    load = os.getloadavg()[0]
    cpu0, t0 = _cpu(), time.perf_counter()
    with disable_run_logger():
        result = ingest.ingest_flow.fn(settings, "bench")
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"startup": startup, "seconds": seconds, "cpu": cpu, "peak_rss_mib": peak_kib / 1024,
            "load": [load, os.getloadavg()[0]], "counts": result["counts"]}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "skillpulse-bench")
    parser.add_argument("--child", nargs=2, metavar=("ADS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(Path(args.child[0]), Path(args.child[1]))))
        return
    sys.path.insert(0, str(HERE))
    from generate_ads import generate

    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.n:
        ads = args.workdir / f"ads-{n}.jsonl"
        if not ads.exists():
            generate(n, ads)
        out = args.workdir / f"out-{n}"
        shutil.rmtree(out, ignore_errors=True)
        env = os.environ | {"PREFECT_LOGGING_LEVEL": "CRITICAL"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(ads), str(out)],
                              capture_output=True, text=True, env=env)
        if proc.returncode:
            sys.exit(f"N={n}: the ingest failed (status {proc.returncode}):\n{proc.stderr[-5000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((n, result))
        print(f"N={n}: {result}", file=sys.stderr, flush=True)
    print("| ads | start-up s | ingest s | ads/second | CPU s | ads/CPU second | peak RSS (MiB) | load (1 min) "
          "| read | kept | duplicates | quarantined |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for n, r in rows:
        c = r["counts"]
        print(f"| {n:,} | {r['startup']:.1f} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['cpu']:.1f} | "
              f"{n / r['cpu']:,.0f} | {r['peak_rss_mib']:,.0f} | {r['load'][0]:.1f} → {r['load'][1]:.1f} | "
              f"{c.get('read', 0):,} | {c.get('kept', 0):,} | {c.get('duplicates', 0):,} | "
              f"{c.get('quarantined', 0):,} |")


if __name__ == "__main__":
    main()
