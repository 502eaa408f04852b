"""Linking benchmark: RP@1/5/10 and MRR on the ESCO-linked TECH and HOUSE validation splits.

    python benchmarks/linking.py [--shared DIR] [--model PATH|none]
        [--methods verbatim,tfidf,model] [--json OUT.json]
    python benchmarks/linking.py --train extractors/data/linker.skops

Prints a Markdown table (the one in benchmarks/README.md, section "Linking").
`--train PATH` first trains the model (flows.evaluate.train_linker) and writes its card.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.evaluate import METHODS, evaluate_esco_linking, record_metrics, train_linker  # noqa: E402

NAMES = {"verbatim": "(a) verbatim label matching", "tfidf": "(b) untrained TF-IDF retrieval",
         "model": "(c) trained re-ranker"}


def table(result: dict) -> str:
    lines = ["| method | subset | sentences | RP@1 | RP@5 | RP@10 | MRR |", "|---|---|---:|---:|---:|---:|---:|"]
    for subset, by_method in result["subsets"].items():
        for method, m in by_method.items():
            lines.append(f"| {NAMES.get(method, method)} | {subset.upper()} | {m['sentences']} | "
                         f"{m['RP@1']:.1f} | {m['RP@5']:.1f} | {m['RP@10']:.1f} | {m['MRR']:.1f} |")
    speed = ", ".join(f"{m}: {v} sentences/s" for m, v in result["speed"].items())
    lines.append("")
    lines.append(f"Linking speed (after an index build of {result['index_build_s']} s): {speed}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")),
                        help="the shared data folder (holds data/benchmarks, data/taxonomies)")
    parser.add_argument("--model", default=None, help="a skops model file; default: the shipped model")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: verbatim,tfidf,model")
    parser.add_argument("--json", default=None, help="also write the metrics as JSON here")
    parser.add_argument("--train", default=None, metavar="PATH", help="train a model to PATH first, then evaluate it")
    args = parser.parse_args(argv)
    model = args.model
    if args.train:
        card = train_linker(args.shared, args.train, evaluate=False)
        print(f"trained {args.train} ({card['bytes']} bytes, {card['train_seconds']} s)", file=sys.stderr)
        model = args.train
    result = evaluate_esco_linking(args.shared, model, methods=[m for m in args.methods.split(",") if m])
    print(table(result))
    if args.train:
        record_metrics(args.train, result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
