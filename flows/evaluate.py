"""Train the concept linker and evaluate it on the ESCO-linked benchmark.

Pure functions (no Prefect) for `skillpulse train` and `skillpulse evaluate`:

- ``evaluate_esco_linking(shared_dir, ...)`` ranks the ESCO skills for every sentence
  of the TECH and HOUSE *validation* annotations (Decorte et al. 2022) and reports
  RP@1, RP@5, RP@10 and MRR for verbatim matching, untrained TF-IDF retrieval and the
  trained model.
- ``evaluate_skillspan_spans(shared_dir, ...)`` runs the extraction pipeline (the
  spaCy matcher, ``doc.spans["skills"]``) on the SkillSpan TECH and HOUSE *dev*
  sentences and reports span precision, recall and F1 against their gold SKILL and
  KNOWLEDGE spans, exact and partial (token overlap).
- ``train_linker(shared_dir, output, ...)`` fits the re-ranker on ESCO itself
  (synthetic sentences with held-out labels) and SkillSpan *train* sentences linked by
  exact label matching, with a popularity prior from the unlabelled rekrute ads, and
  saves it with skops plus a model card.

The validation annotations are never used for training; benchmark sentences that also
occur in SkillSpan train are dropped from the training data.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractors import linker as lk
from extractors.errors import SettingsError, SourceError
from extractors.persistence import file_sha256

ESCO_DIR = Path("data/taxonomies/esco-v1.1.1")
BENCH_DIR = Path("data/benchmarks/esco-linking")
SKILLSPAN_DIR = Path("data/benchmarks/skillspan")
REKRUTE = Path("data/jobads/rekrute-2021/rekrut_31_07_21_translated.json")
# the annotated linking dev set (benchmarks/data/linking-dev/README.md): ships with the repository
LINKING_DEV = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "linking-dev" / "annotations.csv"
SUBSETS = ("tech", "house")
SKIP_LABELS = frozenset({"LABEL NOT PRESENT", "UNDERSPECIFIED"})
KS = (1, 5, 10)
MRR_DEPTH = 100
METHODS = ("verbatim", "tfidf", "model")

# The shipped configuration (see benchmarks/README.md): residual_weight was chosen on the
# validation splits in session 1; the training data (no in-context sentences) among a few
# candidates on silver pairs from the SkillSpan dev splits in session 2; the features (all of
# ``lk.FEATURES``) and the re-ranker kind ("hgb", default parameters of ``lk.new_reranker``)
# among the session-3 ``LINKER_CANDIDATES`` by the same dev-silver rule.
TRAIN_CONFIG: dict[str, Any] = {
    "seed": lk.SEED,
    "n_synthetic": 6000,
    "p_hold_synthetic": 0.7,
    "p_hold_silver": 0.5,
    "prior_weighted_share": 0.5,
    "C": 1.0,
    "n_per_score": lk.N_PER_SCORE,
    "in_context_repeats": 0,
    "residual_weight": 0.05,
    "reranker": "hgb",
    "features": list(lk.S3_FEATURES),
}


# --------------------------------------------------------------------------- readers


def _need(path: Path) -> Path:
    if not path.exists():
        raise SourceError(f"[S001] {path} not found")
    return path


def _gold_by_sentence(rows: Iterable[dict[str, str]]) -> list[tuple[str, set[str]]]:
    """Annotation rows (sentence, label, ...) → (sentence, gold labels) for sentences with at
    least one label; LABEL NOT PRESENT / UNDERSPECIFIED are skipped, repeated rows count once."""
    gold: dict[str, set[str]] = {}
    for row in rows:
        labels = gold.setdefault(row["sentence"], set())
        label = (row.get("label") or "").strip()
        if label and label not in SKIP_LABELS:
            labels.add(label)
    return [(s, g) for s, g in gold.items() if g]


def read_benchmark(path: Path) -> list[tuple[str, set[str]]]:
    """(sentence, gold ESCO preferred labels) for sentences with at least one label."""
    with _need(path).open(encoding="utf-8", newline="") as handle:
        return _gold_by_sentence(csv.DictReader(handle))


def read_linking_dev(path: str | Path = LINKING_DEV) -> dict[str, list[tuple[str, set[str]]]]:
    """The annotated dev set by subset, as ``read_benchmark`` reads a validation file.
    Columns: id, subset, sentence, span, sub_span, label, note."""
    path = Path(path)
    by_subset: dict[str, list[dict[str, str]]] = {}
    with _need(path).open(encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle), 2):
            subset = (row.get("subset") or "").strip()
            if subset not in SUBSETS or not (row.get("sentence") or "").strip():
                raise SourceError(f"[S013] {path}, line {n}: needs a subset ({', '.join(SUBSETS)}) and a sentence")
            by_subset.setdefault(subset, []).append(row)
    return {subset: _gold_by_sentence(rows) for subset, rows in by_subset.items()}


def read_conll(path: Path) -> list[tuple[str, list[str]]]:
    """SkillSpan CoNLL (token, skill tag, knowledge tag) → (sentence, skill/knowledge spans)."""
    out: list[tuple[str, list[str]]] = []
    tokens: list[list[str]] = []

    def flush() -> None:
        if not tokens:
            return
        words = [t[0] for t in tokens]
        spans: list[str] = []
        for col in (1, 2):
            current: list[str] = []
            for t in tokens:
                tag = t[col] if len(t) > col else "O"
                if tag.startswith("B") or (tag.startswith("I") and not current):
                    if current:
                        spans.append(" ".join(current))
                    current = [t[0]]
                elif tag.startswith("I"):
                    current.append(t[0])
                else:
                    if current:
                        spans.append(" ".join(current))
                    current = []
            if current:
                spans.append(" ".join(current))
        out.append((" ".join(words), spans))
        tokens.clear()

    for line in _need(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            flush()
        else:
            tokens.append(line.split("\t"))
    flush()
    return out


def read_rekrute_lines(path: Path) -> list[str]:
    """The English requirement lines (skills_text) of the rekrute ads."""
    data = json.loads(_need(path).read_text(encoding="utf-8"))
    return [line for ad in data.values() for line in ad.get("skills_text") or [] if line]


sha256 = file_sha256


# --------------------------------------------------------------------------- metrics


def rp_at_k(gold: set[str], ranked: Sequence[str], k: int) -> float:
    """R-precision at k: |gold ∩ top-k| / min(k, |gold|)."""
    return len(gold & set(ranked[:k])) / min(k, len(gold))


def reciprocal_rank(gold: set[str], ranked: Sequence[str]) -> float:
    for i, label in enumerate(ranked, 1):
        if label in gold:
            return 1.0 / i
    return 0.0


def score_rankings(gold: Sequence[set[str]], rankings: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean RP@1/5/10 and MRR (in %), over sentences."""
    out = {f"RP@{k}": 100 * float(np.mean([rp_at_k(g, r, k) for g, r in zip(gold, rankings, strict=True)]))
           for k in KS}
    out["MRR"] = 100 * float(np.mean([reciprocal_rank(g, r) for g, r in zip(gold, rankings, strict=True)]))
    out["sentences"] = len(gold)
    return {k: round(v, 2) for k, v in out.items()}


# --------------------------------------------------------------------------- evaluation


def rank_labels(method: str, index: lk.ConceptIndex, sentences: Sequence[str],
                model: dict[str, Any] | None = None, depth: int = MRR_DEPTH) -> list[list[str]]:
    """Ranked preferred labels per sentence for one method."""
    if method == "verbatim":
        return [[index.entries[c].label for c, _ in lk.verbatim_rank(index, s)][:depth] for s in sentences]
    linker = lk.Linker(model if method == "model" else None, index)
    return [[label for _, label, _ in ranked] for ranked in linker.rank(sentences, top_k=depth)]


def evaluate_esco_linking(shared_dir: str | Path, model_path: str | Path | None = None,
                          methods: Iterable[str] = METHODS, subsets: Iterable[str] = SUBSETS,
                          embedding_weights: Sequence[float] | None = None,
                          embedding_variant: str | None = None,
                          embedding_variants: Sequence[str] | None = None) -> dict[str, Any]:
    """RP@1/5/10 and MRR of each method on the TECH and HOUSE validation splits.

    Returns ``{"subsets": {subset: {method: metrics}}, "speed": {method: sentences/s},
    "model": path, "taxonomy": ...}``. `model_path` None means the default model.
    Method ``embeddings`` (what ``skillpulse link`` ships) re-scores the model's candidates
    with sentence embeddings (``extractors.embeddings``, its default variant and weight);
    with several `embedding_weights` or `embedding_variants` each setting is reported as
    ``embeddings@W`` (one variant) or ``embeddings:VARIANT@W``.
    """
    from flows.link import load_model

    shared = Path(shared_dir)
    methods = list(methods)
    esco = shared / ESCO_DIR
    t0 = time.perf_counter()
    model = load_model(model_path) if {"model", "embeddings"} & set(methods) else None
    prior = dict(zip(model["prior_ids"], model["prior_counts"], strict=True)) if model else None
    index = lk.ConceptIndex(lk.load_entries(f"esco:{esco}"), prior=prior)
    build_s = time.perf_counter() - t0
    result: dict[str, Any] = {"subsets": {}, "speed": {}, "index_build_s": round(build_s, 1),
                              "model": str(model_path or "default"), "taxonomy": f"esco:{esco}"}
    timing: dict[str, list[float]] = {m: [0.0, 0.0] for m in methods}
    rerankers: dict[str, Any] = {}
    if "embeddings" in methods:
        for variant in embedding_variants or [embedding_variant]:
            reranker = _embedding_reranker(model, index, variant)
            rerankers[variant or reranker.variant] = reranker
        first = next(iter(rerankers.values()))
        result["embeddings"] = {"variant": first.variant, "concept_build": first.build_info,
                                "variants": {v: r.build_info for v, r in rerankers.items()},
                                "weights": list(embedding_weights or [first.weight])}
    for subset in subsets:
        data = read_benchmark(shared / BENCH_DIR / f"{subset}_validation_annotations.csv")
        sentences = [s for s, _ in data]
        gold = [g for _, g in data]
        result["subsets"][subset] = {}
        for method in methods:
            start = time.perf_counter()
            if method == "embeddings":
                for variant, reranker in rerankers.items():
                    start = time.perf_counter()
                    scored = reranker.scored(sentences)
                    if variant == next(iter(rerankers)):
                        timing[method][0] += time.perf_counter() - start
                        timing[method][1] += len(sentences)
                    for name, w in _weight_names(embedding_weights, reranker.weight):
                        if len(rerankers) > 1:
                            name = f"embeddings:{variant}@{w:g}"
                        ranked = [[label for _, label, _ in reranker.top(s, w, MRR_DEPTH)] for s in scored]
                        result["subsets"][subset][name] = score_rankings(gold, ranked)
                continue
            ranked = rank_labels(method, index, sentences, model)
            timing[method][0] += time.perf_counter() - start
            timing[method][1] += len(sentences)
            result["subsets"][subset][method] = score_rankings(gold, ranked)
    result["speed"] = {m: round(n / s, 1) if s else None for m, (s, n) in timing.items()}
    return result


def parse_embedding_setting(spec: str | None) -> tuple[str | None, int | None]:
    """``"VARIANT"`` or ``"VARIANT+N"`` (N concepts nearest by cosine added to the linker's
    candidates) → (variant, n_embed); None parts mean the re-ranker's defaults."""
    if not spec:
        return None, None
    variant, plus, n = spec.partition("+")
    if plus and not n.isdigit():
        raise SettingsError(f"[S012] embedding setting {spec!r}: write VARIANT or VARIANT+N (N a whole number)")
    return variant or None, int(n) if plus else None


def _embedding_reranker(model: dict[str, Any] | None, index: lk.ConceptIndex, variant: str | None = None,
                        encoder: Any | None = None) -> Any:
    """The embedding re-ranker over `model`'s linker; `variant` may be ``VARIANT+N`` (see above)."""
    from extractors import embeddings as em

    name, n_embed = parse_embedding_setting(variant)
    return em.EmbeddingReranker(lk.Linker(model, index), variant=name or em.DEFAULT_VARIANT, encoder=encoder,
                                n_embed=em.N_EMBED if n_embed is None else n_embed)


def _weight_names(weights: Sequence[float] | None, default: float) -> list[tuple[str, float]]:
    if not weights:
        return [("embeddings", default)]
    return [(f"embeddings@{w:g}", float(w)) for w in weights]


def dev_silver(shared_dir: str | Path, index: lk.ConceptIndex, subsets: Iterable[str] = SUBSETS
               ) -> dict[str, list[tuple[str, set[str]]]]:
    """Silver linking data from the SkillSpan *dev* splits, for choosing settings off validation.

    A sentence counts when a skill/knowledge span equals one concept's label (exactly or
    after lemmatising, ``lk.silver_from_spans``); its gold = those concepts' preferred labels.
    Sentences that also occur in the validation annotations are dropped. Every label stays
    in the index, so this data favours label matching over paraphrase.
    """
    shared = Path(shared_dir)
    banned = benchmark_sentences(shared)
    out: dict[str, list[tuple[str, set[str]]]] = {}
    for subset in subsets:
        rows = [(s, spans) for s, spans in read_conll(shared / SKILLSPAN_DIR / f"skillspan_{subset}_dev.conll")
                if " ".join(s.split()) not in banned]
        data = lk.silver_from_spans(index, rows, np.random.default_rng(lk.SEED), p_hold=0.0)
        gold: dict[str, set[str]] = {}
        for sentence, pos in zip(data.sentences, data.positives, strict=True):
            gold.setdefault(sentence, set()).update(index.entries[c].label for c in pos)
        out[subset] = list(gold.items())
    return out


def dev_silver_sets(shared_dir: str | Path, index: lk.ConceptIndex, subsets: Iterable[str] = SUBSETS
                    ) -> dict[str, tuple[list[str], list[set[str]], list[set[int]] | None]]:
    """The four dev-silver sets used to choose between linker candidates (never validation).

    ``tech`` / ``house``: ``dev_silver`` (the matching label visible in the index);
    ``tech-hidden`` / ``house-hidden``: the same sentences with every label row that matches
    a linked span hidden from the index, as for a paraphrase. Values: (sentences, gold
    preferred labels, hidden label rows or None).
    """
    shared = Path(shared_dir)
    banned = benchmark_sentences(shared)
    out: dict[str, tuple[list[str], list[set[str]], list[set[int]] | None]] = {}
    for subset, rows in dev_silver(shared, index, subsets).items():
        out[subset] = ([s for s, _ in rows], [g for _, g in rows], None)
    for subset in subsets:
        rows2 = [(s, spans) for s, spans in read_conll(shared / SKILLSPAN_DIR / f"skillspan_{subset}_dev.conll")
                 if " ".join(s.split()) not in banned]
        data = lk.silver_from_spans(index, rows2, np.random.default_rng(lk.SEED), p_hold=1.0)
        merged: dict[str, tuple[set[str], set[int]]] = {}
        for sentence, pos, hide in zip(data.sentences, data.positives, data.exclude, strict=True):
            gold, hidden = merged.setdefault(sentence, (set(), set()))
            gold.update(index.entries[c].label for c in pos)
            hidden.update(hide)
        out[f"{subset}-hidden"] = (list(merged), [g for g, _ in merged.values()], [h for _, h in merged.values()])
    return out


def evaluate_linker_dev(shared_dir: str | Path, model: dict[str, Any] | None, index: lk.ConceptIndex,
                        sets: dict[str, tuple[list[str], list[set[str]], list[set[int]] | None]] | None = None
                        ) -> dict[str, Any]:
    """RP@k/MRR of a linker model on the four dev-silver sets and their mean RP@5 (``dev_silver_sets``)."""
    sets = sets if sets is not None else dev_silver_sets(shared_dir, index)
    linker = lk.Linker(model, index)
    result: dict[str, Any] = {"sets": {}}
    for name, (sentences, gold, hide) in sets.items():
        ranked = linker.rank(sentences, top_k=MRR_DEPTH, exclude_labels=[sorted(h) for h in hide] if hide else None)
        result["sets"][name] = score_rankings(gold, [[label for _, label, _ in r] for r in ranked])
    result["mean_RP@5"] = round(float(np.mean([m["RP@5"] for m in result["sets"].values()])), 2)
    return result


# Session 3 candidates (benchmarks/README.md, "How the configuration was chosen"): same training
# data and seed, residual weight 0.05; chosen by mean dev-silver RP@5, a later (more complex)
# candidate only if it beats the one chosen so far by more than CHOOSE_MARGIN.
LINKER_CANDIDATES: dict[str, dict[str, Any]] = {
    "C0": {"features": list(lk.BASE_FEATURES), "reranker": "logistic"},
    "C1": {"features": list(lk.BASE_FEATURES + lk.STRUCTURE_FEATURES), "reranker": "logistic"},
    "C2": {"features": list(lk.S3_FEATURES), "reranker": "logistic"},
    "C3": {"features": list(lk.S3_FEATURES), "reranker": "hgb"},
    # Session 5: C3 plus the sentence-embedding features (lk.EMBEDDING_FEATURES), compared with
    # C3 by the same rule (C4 only if its dev-silver mean beats C3's by more than CHOOSE_MARGIN).
    "C4": {"features": list(lk.FEATURES), "reranker": "hgb"},
}
CHOOSE_MARGIN = 0.5


def choose_candidate(dev_means: dict[str, float], margin: float = CHOOSE_MARGIN) -> str:
    """The pre-declared rule: walk the candidates in order (simplest first) and move to a later
    one only if its dev-silver mean beats the current choice by more than `margin`."""
    names = list(dev_means)
    chosen = names[0]
    for name in names[1:]:
        if dev_means[name] > dev_means[chosen] + margin:
            chosen = name
    return chosen


def compare_linker_candidates(shared_dir: str | Path, out_dir: str | Path,
                              candidates: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train every candidate on one feature matrix (all ``FEATURES``, built once and cached as
    ``features.npz`` in `out_dir`), save each model there, and score it on the dev-silver sets
    (used to choose) and the validation splits (reported, not used to choose)."""
    shared, out = Path(shared_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    candidates = candidates or LINKER_CANDIDATES
    config = dict(TRAIN_CONFIG)
    cache = out / "features.npz"
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as saved:
            x, y = saved["x"], saved["y"]
            names = tuple(str(n) for n in saved["names"])
        if names != lk.FEATURES:
            raise SourceError(f"[S002] {cache} holds other features; delete it")
        about = json.loads((out / "features.about.json").read_text(encoding="utf-8"))
        prior = {k: float(v) for k, v in about.pop("prior").items()}
    else:
        x, y, _, prior, about = training_features(shared, config | {"all_features": True})
        np.savez(cache, x=x, y=y, names=np.asarray(lk.FEATURES))
        (out / "features.about.json").write_text(json.dumps(about | {"prior": prior}) + "\n", encoding="utf-8")
    result: dict[str, Any] = {"features_seconds": round(time.perf_counter() - t0, 1),
                              "features_cpu_seconds": round(time.process_time() - cpu0, 1), "candidates": {}}
    index = lk.ConceptIndex(lk.load_entries(f"esco:{shared / ESCO_DIR}"), prior=prior)
    sets = dev_silver_sets(shared, index)
    for name, extra in candidates.items():
        cfg = {**config, **extra}
        path = out / f"linker-{name}.skops"
        c0 = time.process_time()
        fit_and_save(shared, path, x, y, prior, about, cfg, time.perf_counter(), evaluate=False)
        fit_cpu = round(time.process_time() - c0, 1)
        from flows.link import load_model

        model = load_model(path)
        dev = evaluate_linker_dev(shared, model, index, sets)
        val = {}
        for subset in SUBSETS:
            data = read_benchmark(shared / BENCH_DIR / f"{subset}_validation_annotations.csv")
            val[subset] = score_rankings([g for _, g in data], rank_labels("model", index, [s for s, _ in data], model))
        result["candidates"][name] = {"config": extra, "fit_cpu_seconds": fit_cpu, "dev": dev, "validation": val}
        (out / "candidates.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    result["chosen"] = choose_candidate({n: c["dev"]["mean_RP@5"] for n, c in result["candidates"].items()})
    (out / "candidates.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def dev_paraphrase(shared_dir: str | Path, index: lk.ConceptIndex, subsets: Iterable[str] = SUBSETS
                   ) -> list[tuple[str, set[str], set[int]]]:
    """SkillSpan dev sentences whose span equals an *alternative* label of a concept, with the
    concept's matching labels hidden from the TF-IDF index: (sentence, gold labels, hidden label rows).

    The concept must then be found from its preferred label (or description), as for a paraphrase:
    fair to the ``label`` and ``label_desc`` embedding variants (they never embed alternative
    labels), not to ``label_alts``.
    """
    shared = Path(shared_dir)
    banned = benchmark_sentences(shared)
    chars, words = lk.exact_label_links(index), lk.exact_label_links(index, words=True)
    out = []
    for subset in subsets:
        for sentence, spans in read_conll(shared / SKILLSPAN_DIR / f"skillspan_{subset}_dev.conll"):
            if " ".join(sentence.split()) in banned:
                continue
            gold: set[str] = set()
            hide: set[int] = set()
            for span in spans:
                c = lk.link_span(span, chars, words)
                if c is None:
                    continue
                key_c, key_w = lk.normalise_chars(span), lk.normalise_words(span)
                pref = int(index.pref_row[c])
                rows = {r for r in range(pref, pref + int(index.n_labels[c]))
                        if index.label_chars[r] == key_c or index.label_words[r] == key_w}
                if pref in rows:
                    continue
                gold.add(index.entries[c].label)
                hide |= rows
            if gold:
                out.append((sentence, gold, hide))
    return out


# The embedding settings ``skillpulse link`` may ship, and the rule that picks one, fixed before
# the ONNX encoder's results were seen (benchmarks/README.md, "ONNX int8 re-ranker"): the highest
# mean RP@5 over the dev sets tech, house and paraphrase, ties (equal to 0.01) by mean MRR; the
# winner is the default only if it beats the linker alone by more than CHOOSE_MARGIN. label_alts
# is scored but not eligible: the paraphrase set is built from the alternative labels it embeds.
# Session 5 added the candidate count (EMBEDDING_N_EMBED: 0 = re-score only the linker's
# candidates, 20 = also add the 20 concepts nearest by cosine) after the first ONNX run (N 20
# only; its dev table and validation figures had been seen) showed that the added candidates
# lower the HGB linker's scores even at weight 0; settings are named VARIANT+N@W.
#
# Session 6 changed which dev sets choose, before any result on the new set was seen: the
# silver sets are spans equal to an ESCO label, where lexical retrieval is at its ceiling, so
# they cannot show what semantic matching is worth. The rule is now the same (grid, ties,
# margin) applied to the mean over the two halves of the annotated SkillSpan-dev set
# (``read_linking_dev``: SkillSpan *dev* sentences, none in the validation files, spans linked
# to ESCO by annotator sessions); the silver sets are still scored and reported.
EMBEDDING_VARIANTS = ("label", "label_desc")
EMBEDDING_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
EMBEDDING_REPORTED_ONLY = ("label_alts",)
EMBEDDING_N_EMBED = (0, 20)
EMBEDDING_CHOOSE_SETS = ("tech-annotated", "house-annotated")
SILVER_CHOOSE_SETS = ("tech", "house", "paraphrase")  # the session-5 rule, reported beside it


def choose_embedding_setting(means: dict[str, dict[str, float]], eligible: Sequence[str],
                             margin: float = CHOOSE_MARGIN) -> str:
    """The best eligible setting by mean RP@5 (ties: mean MRR), or "none" (the linker alone)
    unless it beats ``means["none"]`` by more than `margin` RP@5."""
    best = max(eligible, key=lambda k: (round(means[k]["RP@5"], 2), round(means[k]["MRR"], 2)))
    return best if means[best]["RP@5"] > means["none"]["RP@5"] + margin else "none"


def evaluate_embedding_weights_dev(shared_dir: str | Path, weights: Sequence[float] = EMBEDDING_WEIGHTS,
                                   model_path: str | Path | None = None,
                                   variants: Sequence[str] = EMBEDDING_VARIANTS + EMBEDDING_REPORTED_ONLY,
                                   n_embeds: Sequence[int] = EMBEDDING_N_EMBED,
                                   linking_dev: str | Path = LINKING_DEV,
                                   choose_on: Sequence[str] = EMBEDDING_CHOOSE_SETS,
                                   ) -> dict[str, Any]:
    """RP@k/MRR of the linker alone and of each embedding variant × weight on SkillSpan dev
    data (never the validation splits), and the setting the rule chooses.

    Sets: ``tech-annotated`` and ``house-annotated`` (``read_linking_dev``: spans linked to ESCO by
    annotators), ``tech`` and ``house`` (``dev_silver``: spans equal to a label) and ``paraphrase``
    (``dev_paraphrase``: spans equal to an alternative label, hidden from TF-IDF). The rule
    (``choose_embedding_setting``) sees the means over `choose_on`; ``means_silver`` and
    ``chosen_silver`` are the session-5 rule's view (``SILVER_CHOOSE_SETS``). Weight 0 is
    the linker plus the embedding-retrieved candidates (N of `n_embeds`), scored by the linker;
    ``none`` is the linker alone (``skillpulse link --rerank none``). Returns ``{"sets": {set:
    sentences}, "none": {set: metrics}, "variants": {"VARIANT+N": {set: {weight: metrics}}},
    "means": {"none" | "VARIANT+N@W": {"RP@5", "MRR"}}, "eligible": [...], "chosen": "none" |
    "VARIANT+N@W", "choose_on": [...], "means_silver": ..., "chosen_silver": ...}``.
    """
    from extractors import embeddings as em
    from flows.link import load_model

    shared = Path(shared_dir)
    model = load_model(model_path)
    prior = dict(zip(model["prior_ids"], model["prior_counts"], strict=True)) if model else None
    index = lk.ConceptIndex(lk.load_entries(f"esco:{shared / ESCO_DIR}"), prior=prior)
    sets: dict[str, tuple[list[str], list[set[str]], list[set[int]] | None]] = {
        f"{name}-annotated": ([s for s, _ in rows], [g for _, g in rows], None)
        for name, rows in read_linking_dev(linking_dev).items()}
    sets |= {name: ([s for s, _ in rows], [g for _, g in rows], None)
             for name, rows in dev_silver(shared, index).items()}
    para = dev_paraphrase(shared, index)
    sets["paraphrase"] = ([s for s, _, _ in para], [g for _, g, _ in para], [h for _, _, h in para])
    hidden = {name: [sorted(h) for h in hide] if hide else None for name, (_, _, hide) in sets.items()}
    linker = lk.Linker(model, index)
    result: dict[str, Any] = {"sets": {name: len(v[0]) for name, v in sets.items()}, "none": {}, "variants": {}}
    for name, (sentences, gold, _) in sets.items():
        ranked = linker.rank(sentences, top_k=MRR_DEPTH, exclude_labels=hidden[name])
        result["none"][name] = score_rankings(gold, [[label for _, label, _ in r] for r in ranked])
    encoder = em.load_encoder()
    for variant in (f"{v}+{n}" for v in variants for n in n_embeds):
        reranker = _embedding_reranker(model, index, variant, encoder)
        by_set: dict[str, dict[str, dict[str, float]]] = {}
        for name, (sentences, gold, _) in sets.items():
            scored = reranker.scored(sentences, exclude_labels=hidden[name])
            by_set[name] = {
                f"{w:g}": score_rankings(gold, [[label for _, label, _ in reranker.top(s, float(w), MRR_DEPTH)]
                                                for s in scored])
                for w in weights}
        result["variants"][variant] = {"concept_build": reranker.build_info, "sets": by_set}
    return apply_embedding_rule(result, choose_on)


def dev_means(result: dict[str, Any], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean RP@5 and MRR over the dev sets `names`, for "none" and every "VARIANT+N@W" of
    ``evaluate_embedding_weights_dev``'s result."""
    unknown = [n for n in names if n not in result["none"]]
    if unknown:
        raise SourceError(f"[S014] no dev set named {', '.join(unknown)} (have: {', '.join(result['none'])})")

    def mean(rows: Iterable[dict[str, float]]) -> dict[str, float]:
        rows = list(rows)
        return {k: round(float(np.mean([r[k] for r in rows])), 2) for k in ("RP@5", "MRR")}

    means = {"none": mean(result["none"][n] for n in names)}
    for variant, v in result["variants"].items():
        for w in v["sets"][names[0]]:
            means[f"{variant}@{w}"] = mean(v["sets"][n][w] for n in names)
    return means


def apply_embedding_rule(result: dict[str, Any], choose_on: Sequence[str] = EMBEDDING_CHOOSE_SETS
                         ) -> dict[str, Any]:
    """Add the rule's view to a dev result: means over `choose_on`, the eligible settings, the
    choice; and the session-5 rule's (``SILVER_CHOOSE_SETS``) means and choice beside it."""
    result["choose_on"] = list(choose_on)
    result["means"] = means = dev_means(result, choose_on)
    result["eligible"] = [k for k in means if k != "none" and k.split("@")[0].split("+")[0] in EMBEDDING_VARIANTS]
    result["chosen"] = choose_embedding_setting(means, result["eligible"]) if result["eligible"] else "none"
    result["means_silver"] = dev_means(result, SILVER_CHOOSE_SETS)
    result["chosen_silver"] = (choose_embedding_setting(result["means_silver"], result["eligible"])
                               if result["eligible"] else "none")
    return result


# --------------------------------------------------------------------------- extraction spans


def read_conll_spans(path: Path) -> list[tuple[list[str], set[tuple[int, int]]]]:
    """SkillSpan CoNLL → (tokens, gold spans) per sentence.

    Gold spans are token ranges ``(start, end)`` (end exclusive) of the SKILL column
    and of the KNOWLEDGE column, pooled: the extractor does not tell them apart, and a
    range tagged both ways counts once. A stray ``I-`` tag opens a span.
    """
    out: list[tuple[list[str], set[tuple[int, int]]]] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if not rows:
            return
        spans: set[tuple[int, int]] = set()
        for col in (1, 2):
            start = None
            for i, row in enumerate(rows):
                tag = row[col] if len(row) > col else "O"
                if tag.startswith("B") or (tag.startswith("I") and start is None):
                    if start is not None:
                        spans.add((start, i))
                    start = i
                elif not tag.startswith("I") and start is not None:
                    spans.add((start, i))
                    start = None
            if start is not None:
                spans.add((start, len(rows)))
        out.append(([r[0] for r in rows], spans))
        rows.clear()

    for line in _need(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            flush()
        else:
            rows.append(line.split("\t"))
    flush()
    return out


def _prf(tp_pred: int, n_pred: int, tp_gold: int, n_gold: int) -> dict[str, float]:
    p = tp_pred / n_pred if n_pred else 0.0
    r = tp_gold / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"P": round(100 * p, 2), "R": round(100 * r, 2), "F1": round(100 * f, 2)}


def span_scores(gold: Sequence[set[tuple[int, int]]], predicted: Sequence[set[tuple[int, int]]]
                ) -> dict[str, Any]:
    """Micro-averaged span precision, recall and F1 (in %), exact and partial.

    Exact: a predicted span counts when a gold span has the same start and end.
    Partial: a predicted span counts (for precision) when it shares a token with a gold
    span, and a gold span counts (for recall) when it shares a token with a predicted one.
    """
    n_gold = sum(len(g) for g in gold)
    n_pred = sum(len(p) for p in predicted)
    exact = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))

    def overlaps(a: tuple[int, int], others: set[tuple[int, int]]) -> bool:
        return any(a[0] < b[1] and b[0] < a[1] for b in others)

    part_pred = sum(sum(overlaps(s, g) for s in p) for g, p in zip(gold, predicted, strict=True))
    part_gold = sum(sum(overlaps(s, p) for s in g) for g, p in zip(gold, predicted, strict=True))
    return {"gold": n_gold, "predicted": n_pred, "sentences": len(gold),
            "exact": _prf(exact, n_pred, exact, n_gold), "partial": _prf(part_pred, n_pred, part_gold, n_gold)}


def predict_spans(nlp: Any, sentences: Sequence[list[str]], span_key: str = "skills"
                  ) -> list[set[tuple[int, int]]]:
    """Token ranges of the pipeline's skill spans, on the given tokens (no re-tokenising)."""
    from spacy.tokens import Doc

    docs = (Doc(nlp.vocab, words=tokens) for tokens in sentences)
    return [{(s.start, s.end) for s in doc.spans.get(span_key, [])} for doc in nlp.pipe(docs)]


def evaluate_skillspan_spans(shared_dir: str | Path, taxonomies: Iterable[str] | None = None,
                             subsets: Iterable[str] = SUBSETS) -> dict[str, Any]:
    """Span P/R/F1 of the extraction pipeline on the SkillSpan TECH and HOUSE dev splits.

    `taxonomies`: taxonomy specs (default: ``builtin`` and the shared ESCO export).
    Returns ``{"taxonomies": {spec: {"build_s", "subsets": {subset: scores}, "sentences_per_s"}}}``.
    """
    from extractors.nlp import build_nlp

    shared = Path(shared_dir)
    specs = list(taxonomies) if taxonomies is not None else ["builtin", f"esco:{shared / ESCO_DIR}"]
    data = {s: read_conll_spans(shared / SKILLSPAN_DIR / f"skillspan_{s}_dev.conll") for s in subsets}
    result: dict[str, Any] = {"taxonomies": {}, "split": "dev"}
    for spec in specs:
        t0 = time.perf_counter()
        nlp = build_nlp("en", spec)
        entry: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 1), "subsets": {}}
        seconds, count = 0.0, 0
        for subset, rows in data.items():
            t1 = time.perf_counter()
            predicted = predict_spans(nlp, [tokens for tokens, _ in rows])
            seconds += time.perf_counter() - t1
            count += len(rows)
            entry["subsets"][subset] = span_scores([g for _, g in rows], predicted)
        entry["sentences_per_s"] = round(count / seconds, 1) if seconds else None
        result["taxonomies"][spec] = entry
    return result


def span_rows(result: dict[str, Any]) -> list[list[str]]:
    """Table rows (taxonomy, subset, gold, predicted, exact P/R/F1, partial P/R/F1) of a span result."""
    rows = []
    for spec, entry in result["taxonomies"].items():
        name = "esco" if spec.startswith("esco:") else spec
        for subset, m in entry["subsets"].items():
            rows.append([name, subset.upper(), str(m["gold"]), str(m["predicted"]),
                         *(f"{m[kind][k]:.1f}" for kind in ("exact", "partial") for k in ("P", "R", "F1"))])
    return rows


# --------------------------------------------------------------------------- training


def benchmark_sentences(shared: Path) -> set[str]:
    out: set[str] = set()
    for subset in SUBSETS:
        path = shared / BENCH_DIR / f"{subset}_validation_annotations.csv"
        if path.exists():
            out.update(" ".join(s.split()) for s, _ in read_benchmark(path))
            with path.open(encoding="utf-8", newline="") as handle:
                out.update(" ".join(r["sentence"].split()) for r in csv.DictReader(handle))
    return out


def training_data(index: lk.ConceptIndex, shared: Path, config: dict[str, Any]
                  ) -> tuple[lk.TrainingSet, dict[str, float], dict[str, Any]]:
    """The training sentences, the popularity prior and a description of the data."""
    rng = np.random.default_rng(int(config["seed"]))
    files: dict[str, str] = {}
    esco_csv = lk.esco_skills_csv(shared / ESCO_DIR)
    files[str(esco_csv.relative_to(shared))] = sha256(esco_csv)
    rekrute = shared / REKRUTE
    prior = lk.silver_prior(index, read_rekrute_lines(rekrute))
    files[str(REKRUTE)] = sha256(rekrute)
    banned = benchmark_sentences(shared)
    examples: list[tuple[str, list[str]]] = []
    dropped = 0
    for subset in SUBSETS:
        path = shared / SKILLSPAN_DIR / f"skillspan_{subset}_train.conll"
        files[str(path.relative_to(shared))] = sha256(path)
        for sentence, spans in read_conll(path):
            if " ".join(sentence.split()) in banned:
                dropped += 1
                continue
            examples.append((sentence, spans))
    silver = lk.silver_from_spans(index, examples, rng, p_hold=float(config["p_hold_silver"]))
    context = [s for s, spans in examples if not spans and 6 <= len(s.split()) <= 30]
    n_syn = int(config["n_synthetic"])
    n_weighted = int(n_syn * float(config["prior_weighted_share"]))
    weights = np.zeros(len(index))
    for cid, count in prior.items():
        weights[index.position[cid]] = count
    parts = [lk.synthetic_esco(index, n_syn - n_weighted, rng, context, p_hold=float(config["p_hold_synthetic"]))]
    if n_weighted and weights.sum() > 0:
        parts.append(lk.synthetic_esco(index, n_weighted, rng, context, weights=weights,
                                       p_hold=float(config["p_hold_synthetic"])))
    n_ctx = int(config.get("in_context_repeats", 0))
    if n_ctx:
        w = weights if float(config["prior_weighted_share"]) > 0 and weights.sum() > 0 else None
        if w is not None:
            w = w + float(config.get("prior_smoothing", 1.0)) * w.sum() / len(w)
        parts.append(lk.synthetic_in_context(index, examples, rng, weights=w,
                                             p_hold=float(config["p_hold_synthetic"]), repeats=n_ctx))
    parts.append(silver)
    data = lk.TrainingSet([], [], [], [])
    for part in parts:
        data.sentences += part.sentences
        data.positives += part.positives
        data.exclude += part.exclude
        data.source += part.source
    about = {
        "files_sha256": files,
        "sentences": {src: data.source.count(src) for src in sorted(set(data.source))},
        "skillspan_train_sentences_dropped_as_in_benchmark": dropped,
        "prior_concepts": len(prior),
    }
    return data, prior, about


def train_linker(shared_dir: str | Path, output: str | Path, config: dict[str, Any] | None = None,
                 evaluate: bool = True) -> dict[str, Any]:
    """Fit the re-ranker, save it (skops) to `output` and its card next to it; return the card."""
    shared = Path(shared_dir)
    config = {**TRAIN_CONFIG, **(config or {})}
    t0 = time.perf_counter()
    x, y, _, prior, about = training_features(shared, config)
    return fit_and_save(shared, output, x, y, prior, about, config, t0, evaluate)


def training_features(shared: Path, config: dict[str, Any]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float], dict[str, Any]]:
    """Feature rows, targets, each row's data source, the prior and the data description."""
    index = lk.ConceptIndex(lk.load_entries(f"esco:{shared / ESCO_DIR}"))
    data, prior, about = training_data(index, shared, config)
    index.set_prior(prior)
    if set(config.get("features") or lk.FEATURES) & set(lk.EMBEDDING_FEATURES) or config.get("all_features"):
        index.attach_embeddings()  # else the embedding columns stay zero (a model without them)
    x, y, groups = lk.featurise(index, data, n_per_score=int(config["n_per_score"]))
    return x, y, np.asarray(data.source)[groups], prior, about


def fit_and_save(shared: Path, output: str | Path, x: np.ndarray, y: np.ndarray, prior: dict[str, float],
                 about: dict[str, Any], config: dict[str, Any], t0: float, evaluate: bool = True
                 ) -> dict[str, Any]:
    """Fit the re-ranker on training features, save it and its card (see ``train_linker``)."""
    from extractors.persistence import save_model
    from flows.link import card_path

    names = tuple(config.get("features") or lk.FEATURES)
    cols = [lk.FEATURES.index(n) for n in names]
    reranker = lk.fit_reranker(x[:, cols], y, c=float(config["C"]), kind=str(config.get("reranker", "logistic")),
                               **dict(config.get("hgb_params") or {}))
    model = lk.model_dict(reranker, prior, config, feature_names=names)
    output = Path(output)
    save_model(model, output)
    card: dict[str, Any] = {
        "model": output.name,
        "format": lk.MODEL_FORMAT,
        "format_version": lk.MODEL_FORMAT_VERSION,
        "description": f"Re-ranker ({_reranker_name(reranker)}) over TF-IDF retrieval candidates of "
                       "taxonomy concepts, learning a correction to the retrieval score; the index is "
                       "rebuilt from the taxonomy.",
        "config": config,
        "training_data": about | {"pairs": int(len(y)), "positives": int(y.sum())},
        "features": list(names),
        **_reranker_summary(reranker, names),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "versions": _versions(),
        "sha256": sha256(output),
        "bytes": output.stat().st_size,
    }
    if evaluate:
        card["validation_metrics"] = _portable(evaluate_esco_linking(shared, output, methods=("model",)))
        card["validation_note"] = ("TECH/HOUSE validation splits; used to choose between a few "
                                   "configurations, never for training.")
    card_path(output).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def _portable(result: dict[str, Any]) -> dict[str, Any]:
    """Metrics for a model card: no machine-specific paths (model by file name, taxonomy in the shared folder)."""
    out = dict(result)
    if out.get("model") not in (None, "default", "none"):
        out["model"] = Path(str(out["model"])).name
    out["taxonomy"] = f"esco:<shared>/{ESCO_DIR.as_posix()}"
    return out


def _reranker_name(reranker: Any) -> str:
    steps = reranker.steps if hasattr(reranker, "steps") else [(None, reranker)]
    return " + ".join(type(step).__name__ for _, step in steps)


def _reranker_summary(reranker: Any, names: Sequence[str] = lk.FEATURES) -> dict[str, Any]:
    """What the card says about the fitted re-ranker: coefficients, or the boosting size."""
    if hasattr(reranker, "steps"):
        return {"coefficients": dict(zip(names, np.round(reranker[-1].coef_[0], 4).tolist(), strict=True))}
    return {"boosting": {"n_iter": int(reranker.n_iter_),
                         "n_leaves": int(sum(p[0].get_n_leaf_nodes() for p in reranker._predictors)),
                         **{k: v for k, v in reranker.get_params().items()
                            if k in ("learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization")}}}


def record_metrics(model_path: str | Path, result: dict[str, Any]) -> None:
    """Add evaluation results to the model card of `model_path` (if it has one)."""
    from flows.link import card_path

    path = card_path(model_path)
    if not path.is_file():
        return
    card = json.loads(path.read_text(encoding="utf-8"))
    card["validation_metrics"] = _portable(result)
    card["validation_note"] = ("TECH/HOUSE validation splits; used to choose between a few "
                               "configurations, never for training.")
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import scipy
    import simplemma
    import sklearn
    import skops

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "skops": skops.__version__,
            "simplemma": getattr(simplemma, "__version__", "?")}
