"""Occupation (ISCO-08) benchmark: accuracy on the hand-labelled titles, and speed.

    python benchmarks/occupations.py [--split test|dev|all] [--errors] [--json OUT.json]

Prints a Markdown table (the one in docs/occupations.md): accuracy at major (1-digit) and
sub-major (2-digit) level per language and overall on tests/fixtures/occupations_labelled.csv,
then throughput in titles/s (warm: dictionaries loaded, lemma cache on; the title cache is
cleared so every title is matched afresh).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractors import occupations  # noqa: E402
from extractors.occupations import classify_occupation  # noqa: E402

LABELLED = ROOT / "tests" / "fixtures" / "occupations_labelled.csv"
LANGUAGES = ("en", "ru", "uk", "ro", "ka", "be")


def load_labelled(path: Path = LABELLED) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def evaluate(rows: list[dict[str, str]]) -> dict:
    """Counts and accuracies per language and overall; a prediction of None is wrong."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, major ok, sub-major ok
    errors = []
    for row in rows:
        code = classify_occupation(row["title"], "", row["language"]).code
        major = code is not None and code[0] == row["isco"][0]
        sub = code == row["isco"]
        for key in (row["language"], "all"):
            counts[key][0] += 1
            counts[key][1] += major
            counts[key][2] += sub
        if not sub:
            errors.append({"id": row["id"], "title": row["title"], "gold": row["isco"], "predicted": code})
    result = {key: {"n": n, "major": ok1 / n, "sub_major": ok2 / n} for key, (n, ok1, ok2) in counts.items()}
    return {"accuracy": result, "errors": errors}


def throughput(titles: list[str], languages: list[str], repeat: int = 20) -> float:
    for title, lang in zip(titles, languages, strict=True):  # warm-up: load dictionaries and rules
        classify_occupation(title, "", lang)
    n = 0
    start = time.perf_counter()
    for _ in range(repeat):
        occupations._classify_title.cache_clear()
        for title, lang in zip(titles, languages, strict=True):
            classify_occupation(title, "", lang)
            n += 1
    return n / (time.perf_counter() - start)


def table(accuracy: dict) -> str:
    lines = ["| language | titles | major (1-digit) | sub-major (2-digit) |", "|---|---:|---:|---:|"]
    for key in (*LANGUAGES, "all"):
        if key in accuracy:
            a = accuracy[key]
            lines.append(f"| {key} | {a['n']} | {100 * a['major']:.1f} % | {100 * a['sub_major']:.1f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["test", "dev", "all"])
    parser.add_argument("--errors", action="store_true", help="list the misclassified titles")
    parser.add_argument("--json", help="write the result as JSON to this path")
    args = parser.parse_args()
    rows = [r for r in load_labelled() if args.split == "all" or r["split"] == args.split]
    start = time.perf_counter()
    result = evaluate(rows)
    cold = time.perf_counter() - start
    print(f"Split: {args.split} ({len(rows)} titles)\n")
    print(table(result["accuracy"]))
    if args.errors:
        print("\nErrors:")
        for e in result["errors"]:
            print(f"  {e['id']}  {e['title']!r}: gold {e['gold']}, predicted {e['predicted']}")
    all_rows = load_labelled()
    speed = throughput([r["title"] for r in all_rows], [r["language"] for r in all_rows])
    result["titles_per_second"] = speed
    print(f"\nSpeed: {speed:,.0f} titles/s (warm); first pass incl. loading dictionaries {cold:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
