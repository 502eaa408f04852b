"""Competence-level P/R/F1 of the extractor: matcher only, classifier only, and both.

    python benchmarks/competences.py [--path benchmarks/data/competence-sentences/sentences.csv]
                                     [--split test] [--threshold T] [--json OUT.json]

Without --threshold the threshold is chosen among 0.3/0.4/0.5/0.6/0.7 on the dev split
(combined micro-F1) and the dev figures of every candidate are printed first.
--record writes the figures into the model card (extractors/data/competence_classifier.card.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flows.competence_eval import DEFAULT_PATH, evaluate_competences, table_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--split", default="test")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--model", default="", help="a competence classifier .skops (default: the shipped one)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--record", action="store_true", help="write the figures into the model's card")
    args = parser.parse_args()
    result = evaluate_competences(args.path, split=args.split, threshold=args.threshold, model=args.model)
    if "dev" in result:
        print(f"dev split ({result['dev']['sentences']} sentences): micro P/R/F1 per threshold candidate")
        print(f"{'threshold':>9}  {'classifier P/R/F1':>20}  {'combined P/R/F1':>20}")
        for t, scores in result["dev"]["candidates"].items():
            c, m = scores["classifier"], scores["combined"]
            print(f"{t:>9}  {c['P']:>6.1f}{c['R']:>7.1f}{c['F1']:>7.1f}  {m['P']:>6.1f}{m['R']:>7.1f}{m['F1']:>7.1f}")
        print()
    print(f"{result['split']} split ({result['sentences']} sentences), threshold {result['threshold']}")
    print("| method | group | sentences | P | R | F1 | TP | FP | FN |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in table_rows(result):
        print("| " + " | ".join(row) + " |")
    if args.record:
        from extractors.classifier import MODEL_PATH, record_evaluation

        record_evaluation(result, args.model or MODEL_PATH)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
