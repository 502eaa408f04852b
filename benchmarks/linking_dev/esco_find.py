"""Look ESCO skills up by regular expression: the search tool of the linking-dev labelling protocol.

    python benchmarks/linking_dev/esco_find.py [--desc] [--limit 25] PATTERN [PATTERN ...]

Case-blind regular expressions over preferred and alternative labels (``--desc``: descriptions
too); a skill must match every PATTERN. Prints the preferred label (what an annotation names),
skill type, up to six alternative labels and the start of the description. A plain lexical
search on purpose: the annotators never see a skillpulse ranking.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKILLS = Path("data/taxonomies/esco-v1.1.1/en/skills_en.csv")


def skills(shared: Path) -> list[dict[str, str]]:
    with (shared / SKILLS).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def find(rows: list[dict[str, str]], patterns: list[str], desc: bool = False) -> list[dict[str, str]]:
    regexes = [re.compile(p, re.IGNORECASE) for p in patterns]
    out = []
    for row in rows:
        text = row["preferredLabel"] + "\n" + row["altLabels"] + ("\n" + row["description"] if desc else "")
        if all(r.search(text) for r in regexes):
            out.append(row)
    # preferred-label hits first, then shorter labels
    out.sort(key=lambda r: (not all(x.search(r["preferredLabel"]) for x in regexes), len(r["preferredLabel"])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="+")
    parser.add_argument("--desc", action="store_true", help="search descriptions too")
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")))
    args = parser.parse_args(argv)
    try:
        hits = find(skills(Path(args.shared)), args.patterns, args.desc)
    except re.error as exc:
        print(f"esco_find: bad pattern: {exc}", file=sys.stderr)
        return 2
    for row in hits[: args.limit]:
        alts = [a for a in row["altLabels"].split("\n") if a][:6]
        print(f"* {row['preferredLabel']}  [{row['skillType']}]")
        if alts:
            print(f"    alt: {'; '.join(alts)}")
        print(f"    {row['description'][:160]}")
    shown = f", first {args.limit}" if len(hits) > args.limit else ""
    print(f"({len(hits)} match{'es' if len(hits) != 1 else ''}{shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
