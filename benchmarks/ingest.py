"""Ingest throughput and peak memory for N generated ads (JSON Lines).

For each N, generates N ads with benchmarks/generate_ads.py (cached in --workdir), then
runs the ingest flow's body (`ingest_flow.fn`, its tasks replaced by their bodies: no
Prefect server, no API calls) in a fresh child process, so that the peak resident
memory (ru_maxrss) is that run's alone:

    python benchmarks/ingest.py 10000 100000 [--workdir DIR]

Prints a Markdown table: N, seconds, ads/second, peak RSS, and the run's counts.
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

    settings = PipelineSettings(source=str(ads), out_dir=str(out))
    t0 = time.perf_counter()
    with disable_run_logger():
        result = ingest.ingest_flow.fn(settings, "bench")
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "counts": result["counts"]}


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
                              check=True, capture_output=True, text=True, env=env)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((n, result))
        print(f"N={n}: {result}", file=sys.stderr, flush=True)
    print("| ads | seconds | ads/second | peak RSS (MiB) | read | kept | duplicates | quarantined |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in rows:
        c = r["counts"]
        print(f"| {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['peak_rss_mib']:,.0f} | "
              f"{c.get('read', 0):,} | {c.get('kept', 0):,} | {c.get('duplicates', 0):,} | "
              f"{c.get('quarantined', 0):,} |")


if __name__ == "__main__":
    main()
