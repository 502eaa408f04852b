"""Extraction benchmark: skill-span precision, recall and F1 on the SkillSpan TECH and HOUSE dev splits.

    python benchmarks/spans.py [--shared DIR] [--taxonomy builtin --taxonomy esco:DIR] [--json OUT.json]

Runs the extraction pipeline (extractors.nlp.build_nlp: the spaCy phrase matcher,
``doc.spans["skills"]``) on the gold tokens of every dev sentence and compares its spans
with the gold SKILL and KNOWLEDGE spans, exactly and by token overlap
(flows.evaluate.evaluate_skillspan_spans). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.evaluate import ESCO_DIR, evaluate_skillspan_spans  # noqa: E402


def table(result: dict) -> str:
    lines = ["| taxonomy | subset | gold spans | predicted | exact P | exact R | exact F1 | partial P | partial R "
             "| partial F1 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for spec, entry in result["taxonomies"].items():
        name = "ESCO v1.1.1" if spec.startswith("esco:") else spec
        for subset, m in entry["subsets"].items():
            e, p = m["exact"], m["partial"]
            lines.append(f"| {name} | {subset.upper()} | {m['gold']} | {m['predicted']} | {e['P']:.1f} | {e['R']:.1f} "
                         f"| {e['F1']:.1f} | {p['P']:.1f} | {p['R']:.1f} | {p['F1']:.1f} |")
        notes.append(f"{name}: pipeline built in {entry['build_s']} s, {entry['sentences_per_s']} sentences/s")
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")),
                        help="the shared data folder (holds data/benchmarks, data/taxonomies)")
    parser.add_argument("--taxonomy", action="append", default=None,
                        help="a taxonomy spec (repeatable); default: builtin and the shared ESCO export")
    parser.add_argument("--json", default=None, help="also write the metrics as JSON here")
    args = parser.parse_args(argv)
    specs = args.taxonomy or ["builtin", f"esco:{Path(args.shared) / ESCO_DIR}"]
    result = evaluate_skillspan_spans(args.shared, specs)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
