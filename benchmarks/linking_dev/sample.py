"""Draw the sentences of the annotated linking dev set from SkillSpan *dev* (not validation).

    python benchmarks/linking_dev/sample.py [--shared DIR] [--per-subset 90] [--batches 4] OUT_DIR

Sentences with at least one SKILL/KNOWLEDGE span, minus every sentence of the ESCO-linked
validation annotations, drawn with a fixed seed; written as JSON Lines batches for labelling
(``OUT_DIR/{subset}-{k}.jsonl``: id, subset, sentence, spans). The labelling protocol is in
``benchmarks/linking_dev/README.md``; the labelled result is ``annotations.csv`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.evaluate import SKILLSPAN_DIR, SUBSETS, benchmark_sentences, read_conll  # noqa: E402

SEED = 2026


def draw(shared: Path, per_subset: int, seed: int = SEED) -> list[dict]:
    banned = benchmark_sentences(shared)
    rng = np.random.default_rng(seed)
    out = []
    for subset in SUBSETS:
        seen: set[str] = set()
        pool = []
        for sentence, spans in read_conll(shared / SKILLSPAN_DIR / f"skillspan_{subset}_dev.conll"):
            key = " ".join(sentence.split())
            if spans and key not in banned and key not in seen:
                seen.add(key)
                pool.append((sentence, list(dict.fromkeys(spans))))
        for n, i in enumerate(sorted(rng.choice(len(pool), size=per_subset, replace=False))):
            sentence, spans = pool[int(i)]
            out.append({"id": f"{subset}-{n:03d}", "subset": subset, "sentence": sentence, "spans": spans})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--per-subset", type=int, default=90)
    parser.add_argument("--batches", type=int, default=4, help="batches per subset")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = draw(Path(args.shared), args.per_subset)
    for subset in SUBSETS:
        mine = [r for r in rows if r["subset"] == subset]
        for k in range(args.batches):
            part = mine[k::args.batches]
            (out / f"{subset}-{k}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
                                                     encoding="utf-8")
    print(f"{len(rows)} sentences, {sum(len(r['spans']) for r in rows)} spans → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
