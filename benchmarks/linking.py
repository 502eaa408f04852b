"""Linking benchmark: RP@1/5/10 and MRR on the ESCO-linked TECH and HOUSE validation splits.

    python benchmarks/linking.py [--shared DIR] [--model PATH|none]
        [--methods verbatim,tfidf,model[,embeddings]] [--json OUT.json]
        [--weights 0,0.25,0.5,1] [--variant label,label_desc,label_alts] [--choose]
    python benchmarks/linking.py --train extractors/data/linker.skops
    python benchmarks/linking.py --candidates OUT_DIR [--only C3,C4]

Prints a Markdown table (the one in benchmarks/README.md, section "Linking").
`--train PATH` first trains the model (flows.evaluate.train_linker) and writes its card.
`embeddings` (what `skillpulse link` does by default, `--rerank embeddings`) re-scores the model's candidates
with sentence embeddings; `--weights` / `--variant` (VARIANT or VARIANT+N) report each setting;
`--choose` first scores the linker alone and every variant × candidate count × weight on SkillSpan
dev: the annotated set (benchmarks/data/linking-dev) and the silver sets
(flows.evaluate.evaluate_embedding_weights_dev), prints that table and the setting the
pre-declared rule chooses (on the annotated set; the silver rule's choice is printed beside it).
`--candidates OUT_DIR` trains the re-ranker candidates (flows.evaluate.LINKER_CANDIDATES)
on one training feature matrix (cached in OUT_DIR), scores each on the four dev-silver sets (used
to choose) and on validation (reported only), prints that table and the rule's choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.evaluate import (  # noqa: E402
    EMBEDDING_REPORTED_ONLY,
    EMBEDDING_VARIANTS,
    EMBEDDING_WEIGHTS,
    METHODS,
    SILVER_CHOOSE_SETS,
    compare_linker_candidates,
    evaluate_embedding_weights_dev,
    evaluate_esco_linking,
    record_metrics,
    train_linker,
)

NAMES = {"verbatim": "(a) verbatim label matching", "tfidf": "(b) untrained TF-IDF retrieval",
         "model": "(c) trained re-ranker", "embeddings": "(d) re-ranker + sentence embeddings"}


def method_name(method: str) -> str:
    if method.startswith("embeddings@"):
        return f"(d) re-ranker + embeddings, weight {method.split('@', 1)[1]}"
    return NAMES.get(method, method)


def dev_table(result: dict) -> str:
    sets = list(result["sets"])
    chosen_on, silver = " + ".join(result["choose_on"]), " + ".join(SILVER_CHOOSE_SETS)
    lines = ["Embedding settings on SkillSpan dev (the rule chooses among: "
             f"{', '.join(result['eligible'])}, by the mean over {chosen_on}; 'none' = the linker alone):", "",
             "| setting | " + " | ".join(f"{n} ({result['sets'][n]}) RP@5 / MRR" for n in sets)
             + f" | mean RP@5 / MRR ({chosen_on}) | mean RP@5 / MRR ({silver}) |", "|---|" + "---:|" * (len(sets) + 2)]
    rows = [("none", result["none"])] + [
        (f"{v}@{w}", {n: by_set[n][w] for n in sets})
        for v, data in result["variants"].items() for by_set in [data["sets"]] for w in by_set[sets[0]]]
    for name, by_set in rows:
        cells = " | ".join(f"{by_set[n]['RP@5']:.1f} / {by_set[n]['MRR']:.1f}" for n in sets)
        mark = "**" if name == result["chosen"] else ""
        m, ms = result["means"][name], result["means_silver"][name]
        lines.append(f"| {mark}{name}{mark}{'' if name == 'none' or name in result['eligible'] else ' (reported only)'}"
                     f" | {cells} | {m['RP@5']:.2f} / {m['MRR']:.2f} | {ms['RP@5']:.2f} / {ms['MRR']:.2f} |")
    lines += ["", f"Chosen by the rule (dev only, {chosen_on}): {result['chosen']}",
              f"The session-5 rule ({silver}) would choose: {result['chosen_silver']}"]
    return "\n".join(lines)


def candidates_table(result: dict) -> str:
    lines = ["| candidate | re-ranker, features | TECH RP@1/5/10, MRR | HOUSE RP@1/5/10, MRR | "
             "dev-silver RP@5 (tech / house / tech-hidden / house-hidden) | dev-silver mean |",
             "|---|---|---|---|---|---:|"]
    for name, c in result["candidates"].items():
        kind = c["config"].get("reranker", "logistic")
        val = [f"{m['RP@1']:.1f} / {m['RP@5']:.1f} / {m['RP@10']:.1f}, {m['MRR']:.1f}"
               for m in c["validation"].values()]
        dev = " / ".join(f"{m['RP@5']:.1f}" for m in c["dev"]["sets"].values())
        lines.append(f"| {name} | {kind}, {len(c['config']['features'])} | {val[0]} | {val[1]} | {dev} | "
                     f"{c['dev']['mean_RP@5']:.2f} |")
    lines += ["", f"Chosen by the rule (dev-silver only): {result['chosen']}"]
    return "\n".join(lines)


def table(result: dict) -> str:
    lines = ["| method | subset | sentences | RP@1 | RP@5 | RP@10 | MRR |", "|---|---|---:|---:|---:|---:|---:|"]
    for subset, by_method in result["subsets"].items():
        for method, m in by_method.items():
            lines.append(f"| {method_name(method)} | {subset.upper()} | {m['sentences']} | "
                         f"{m['RP@1']:.1f} | {m['RP@5']:.1f} | {m['RP@10']:.1f} | {m['MRR']:.1f} |")
    speed = ", ".join(f"{m}: {v} sentences/s" for m, v in result["speed"].items())
    lines.append("")
    lines.append(f"Linking speed (after an index build of {result['index_build_s']} s): {speed}")
    for variant, build in result.get("embeddings", {}).get("variants", {}).items():
        lines.append(f"Concept embeddings ({variant}): {'read from cache' if build['cached'] else 'computed'} "
                     f"in {build['seconds']} s ({build['cache']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("SKILLPULSE_SHARED", str(ROOT.parent / "shared")),
                        help="the shared data folder (holds data/benchmarks, data/taxonomies)")
    parser.add_argument("--model", default=None, help="a skops model file; default: the shipped model")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated: verbatim,tfidf,model,embeddings")
    parser.add_argument("--weights", default=None, help="embedding weights to report, comma-separated")
    parser.add_argument("--variant", default=None,
                        help="concept texts embedded, comma-separated: label, label_desc, label_alts; "
                        "VARIANT+N also adds the N concepts nearest by cosine to the candidates")
    parser.add_argument("--choose", action="store_true",
                        help="first score the --weights on SkillSpan dev data (not validation) and apply the rule")
    parser.add_argument("--json", default=None, help="also write the metrics as JSON here")
    parser.add_argument("--train", default=None, metavar="PATH", help="train a model to PATH first, then evaluate it")
    parser.add_argument("--candidates", default=None, metavar="OUT_DIR",
                        help="train and compare the re-ranker candidates in OUT_DIR (nothing else is run)")
    parser.add_argument("--only", default=None, metavar="C3,C4",
                        help="with --candidates: these candidates only, in this order (the rule walks them)")
    args = parser.parse_args(argv)
    if args.candidates:
        chosen = None
        if args.only:
            from flows.evaluate import LINKER_CANDIDATES

            chosen = {name: LINKER_CANDIDATES[name] for name in args.only.split(",") if name}
        result = compare_linker_candidates(args.shared, args.candidates, chosen)
        print(candidates_table(result))
        return 0
    model = args.model
    if args.train:
        card = train_linker(args.shared, args.train, evaluate=False)
        print(f"trained {args.train} ({card['bytes']} bytes, {card['train_seconds']} s)", file=sys.stderr)
        model = args.train
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    variants = [v for v in args.variant.split(",") if v] if args.variant else None
    dev = None
    if args.choose:
        # the dev grid: every base variant named (``label_desc+0`` → ``label_desc``) × EMBEDDING_N_EMBED
        dev_variants = list(dict.fromkeys(v.split("+")[0] for v in variants)) if variants else None
        dev = evaluate_embedding_weights_dev(args.shared, weights or EMBEDDING_WEIGHTS, model,
                                             dev_variants or EMBEDDING_VARIANTS + EMBEDDING_REPORTED_ONLY)
        print(dev_table(dev), flush=True)
        print(flush=True)
    result = evaluate_esco_linking(args.shared, model, methods=[m for m in args.methods.split(",") if m],
                                   embedding_weights=weights, embedding_variants=variants)
    if dev is not None:
        result["embedding_dev"] = dev
    print(table(result))
    if args.train:
        record_metrics(args.train, result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
