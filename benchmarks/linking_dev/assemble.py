"""Join the labelled batches of the linking-dev set into benchmarks/data/linking-dev/annotations.csv.

    python benchmarks/linking_dev/assemble.py BATCH_DIR [--out CSV]

BATCH_DIR holds the batches of ``sample.py`` (``{subset}-{k}.jsonl``) and, in ``labelled/``,
the annotators' files of the same names. Every batch must pass ``check.py``; nothing is
written otherwise. Rows come out in id order, spans in the input's order, labels as given.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check import problems, read_jsonl  # noqa: E402
from esco_find import ROOT, skills  # noqa: E402

OUT = ROOT / "benchmarks" / "data" / "linking-dev" / "annotations.csv"
COLUMNS = ("id", "subset", "sentence", "span", "sub_span", "label", "note")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("batch_dir")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")))
    args = parser.parse_args(argv)
    preferred = {r["preferredLabel"] for r in skills(Path(args.shared))}
    batch_dir = Path(args.batch_dir)
    rows, bad = [], 0
    for path in sorted(batch_dir.glob("*.jsonl")):
        batch, labelled = read_jsonl(path), read_jsonl(batch_dir / "labelled" / path.name)
        found = problems(batch, labelled, preferred)
        for line in found:
            print(f"{path.name}: {line}", file=sys.stderr)
        bad += len(found)
        by_key = {(r["id"], r["span"]): r for r in labelled}
        for sentence in batch:
            for span in sentence["spans"]:
                r = by_key.get((sentence["id"], span), {"labels": [], "note": ""})
                rows += [{"id": sentence["id"], "subset": sentence["subset"], "sentence": sentence["sentence"],
                          "span": span, "sub_span": "", "label": label, "note": r.get("note", "")}
                         for label in r["labels"]]
    if bad:
        print(f"{bad} problems; nothing written", file=sys.stderr)
        return 1
    rows.sort(key=lambda r: r["id"])  # stable: spans and labels keep their order
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len({r['id'] for r in rows})} sentences, {len(rows)} rows → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
