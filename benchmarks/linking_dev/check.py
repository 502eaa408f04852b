"""Check a labelled batch of the linking-dev set against its input batch and ESCO.

    python benchmarks/linking_dev/check.py INPUT.jsonl LABELLED.jsonl

LABELLED.jsonl has one line per span: {"id", "span", "labels": [ESCO preferred labels] or
["LABEL NOT PRESENT"] or ["UNDERSPECIFIED"], "note"}. Every span of every input sentence must be
there once, and every label must be an exact ESCO v1.1.1 preferred label. Exit 0 when clean.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from esco_find import ROOT, skills  # noqa: E402

SPECIAL = {"LABEL NOT PRESENT", "UNDERSPECIFIED"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def problems(batch: list[dict], labelled: list[dict], preferred: set[str]) -> list[str]:
    out = []
    want = {(r["id"], s) for r in batch for s in r["spans"]}
    got: dict[tuple[str, str], list[str]] = {}
    for n, row in enumerate(labelled, 1):
        key = (row.get("id"), row.get("span"))
        if key not in want:
            out.append(f"line {n}: no such (id, span) in the input: {key}")
        if key in got:
            out.append(f"line {n}: {key} labelled twice")
        labels = row.get("labels")
        if not isinstance(labels, list) or not labels:
            out.append(f"line {n}: labels must be a non-empty list")
            continue
        got[key] = labels
        for label in labels:
            if label not in preferred and label not in SPECIAL:
                out.append(f"line {n}: {label!r} is not an ESCO preferred label")
        if len(labels) > 1 and SPECIAL & set(labels):
            out.append(f"line {n}: {sorted(SPECIAL & set(labels))} must stand alone")
    out += [f"missing: {key}" for key in sorted(want - set(got))]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    batch, labelled = read_jsonl(Path(argv[0])), read_jsonl(Path(argv[1]))
    shared = Path(os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")))
    found = problems(batch, labelled, {r["preferredLabel"] for r in skills(shared)})
    for line in found:
        print(line)
    print("clean" if not found else f"{len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
