"""Competence-level evaluation of the extractor on the labelled competence sentences.

The labelled set (``benchmarks/data/competence-sentences/sentences.csv``; columns
``id, lang, split, kind, sentence, competences``, competences ``;``-separated, ``kind`` one of
``explicit``, ``implicit``, ``none``, ``split`` one of ``dev``, ``test``) is never trained on.

For each sentence the prediction is a set of competence ids:

- ``matcher``: the competences of the concepts the skill matcher finds;
- ``classifier``: the competences the competence classifier scores at or above the threshold;
- ``combined``: their union (what the mentions dataset holds).

Scores are micro-averaged over (sentence, competence) pairs: precision = TP / (TP + FP),
recall = TP / (TP + FN), F1 their harmonic mean; per language, per kind and overall.
The threshold is chosen among a few candidates on the ``dev`` split by combined micro-F1
(``choose_threshold``) and reported on ``test``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from extractors.errors import SourceError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "competence-sentences" / "sentences.csv"
METHODS = ("matcher", "classifier", "combined")


def read_labelled(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of the labelled file (optionally one split), with ``gold`` as a set of competence ids."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"[S001] {path} not found")
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if split and row["split"].strip() != split:
                continue
            gold = {c.strip() for c in (row.get("competences") or "").split(";") if c.strip()}
            rows.append({"id": row["id"], "lang": row["lang"].strip(), "split": row["split"].strip(),
                         "kind": row["kind"].strip(), "sentence": row["sentence"], "gold": gold})
    return rows


def micro(gold: Sequence[set[str]], predicted: Sequence[set[str]]) -> dict[str, float | int]:
    """Micro precision, recall and F1 (in %) over (sentence, competence) pairs."""
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    fp = sum(len(p - g) for g, p in zip(gold, predicted, strict=True))
    fn = sum(len(g - p) for g, p in zip(gold, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"sentences": len(gold), "tp": tp, "fp": fp, "fn": fn,
            "P": round(100 * precision, 1), "R": round(100 * recall, 1), "F1": round(100 * f1, 1)}


def score_table(rows: Sequence[dict[str, Any]], predictions: dict[str, Sequence[set[str]]]) -> dict[str, Any]:
    """{method: {"overall": m, "by_lang": {lang: m}, "by_kind": {kind: m}}} for predictions per method."""
    out: dict[str, Any] = {}
    for method, predicted in predictions.items():
        gold = [r["gold"] for r in rows]
        entry: dict[str, Any] = {"overall": micro(gold, predicted), "by_lang": {}, "by_kind": {}}
        for field, key in (("lang", "by_lang"), ("kind", "by_kind")):
            for value in sorted({r[field] for r in rows}):
                idx = [i for i, r in enumerate(rows) if r[field] == value]
                entry[key][value] = micro([gold[i] for i in idx], [predicted[i] for i in idx])
        out[method] = entry
    return out


def sentence_evidence(rows: Sequence[dict[str, Any]], taxonomy_spec: str = "builtin",
                      model: str = "") -> tuple[list[set[str]], list[dict[str, float]]]:
    """Per sentence: the matcher's competences and the classifier's best probability per competence."""
    from extractors.classifier import load_classifier, norm_sentences
    from extractors.nlp import get_nlp
    from taxonomy.load import load_taxonomy

    taxonomy = load_taxonomy(taxonomy_spec)
    classifier = load_classifier(model)
    matched: list[set[str]] = [set() for _ in rows]
    probs: list[dict[str, float]] = [{} for _ in rows]
    by_lang: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_lang.setdefault(row["lang"], []).append(i)
    for lang, idx in sorted(by_lang.items()):
        nlp = get_nlp(lang, taxonomy_spec, taxonomy.version)
        with nlp.select_pipes(disable=[p for p in nlp.pipe_names if p == "competence_classifier"]):
            docs = list(nlp.pipe([rows[i]["sentence"] for i in idx], batch_size=256))
        texts, owner = [], []
        for i, doc in zip(idx, docs, strict=True):
            for span in doc.spans.get("skills") or []:
                concept = taxonomy.concepts.get(span.label_)
                if concept is not None:
                    matched[i].update(concept.competences)
            for _, _, text in norm_sentences(doc):
                texts.append(text)
                owner.append(i)
        scores = classifier.predict_proba(texts)
        for k, i in enumerate(owner):
            best = probs[i]
            for j, label in enumerate(classifier.labels):
                p = float(scores[k, j])
                if p > best.get(label, 0.0):
                    best[label] = p
    return matched, probs


def predictions_at(matched: Sequence[set[str]], probs: Sequence[dict[str, float]],
                   threshold: float) -> dict[str, list[set[str]]]:
    clf = [{c for c, p in pr.items() if p >= threshold} for pr in probs]
    return {"matcher": [set(m) for m in matched], "classifier": clf,
            "combined": [m | c for m, c in zip(matched, clf, strict=True)]}


def choose_threshold(rows: Sequence[dict[str, Any]], matched: Sequence[set[str]],
                     probs: Sequence[dict[str, float]], candidates: Iterable[float]) -> tuple[float, dict[str, Any]]:
    """The candidate with the best combined micro-F1 (ties: the higher threshold), and every candidate's scores."""
    gold = [r["gold"] for r in rows]
    scores: dict[str, Any] = {}
    best: tuple[float, float] | None = None
    for t in candidates:
        pred = predictions_at(matched, probs, t)
        scores[f"{t:.2f}"] = {m: micro(gold, pred[m]) for m in ("classifier", "combined")}
        key = (scores[f"{t:.2f}"]["combined"]["F1"], t)
        if best is None or key >= best:
            best = key
    assert best is not None
    return best[1], scores


def evaluate_competences(path: str | Path = DEFAULT_PATH, *, split: str = "test", threshold: float | None = None,
                         candidates: Sequence[float] | None = None, taxonomy_spec: str = "builtin",
                         model: str = "") -> dict[str, Any]:
    """Matcher / classifier / combined micro P/R/F1 on `split`, overall, per language and per kind.

    With `threshold` None the threshold is chosen among `candidates` (default: the
    classifier's THRESHOLD_CANDIDATES) on the dev split, and the dev scores are returned too.
    """
    from extractors.classifier import THRESHOLD_CANDIDATES

    result: dict[str, Any] = {"path": str(path), "split": split}
    if threshold is None:
        dev = read_labelled(path, "dev")
        if not dev:
            raise SourceError(f"[S001] {path} has no dev sentences to choose a threshold on")
        matched, probs = sentence_evidence(dev, taxonomy_spec, model)
        threshold, dev_scores = choose_threshold(dev, matched, probs, candidates or THRESHOLD_CANDIDATES)
        result["dev"] = {"sentences": len(dev), "candidates": dev_scores}
    rows = read_labelled(path, split)
    if not rows:
        raise SourceError(f"[S001] {path} has no {split} sentences")
    matched, probs = sentence_evidence(rows, taxonomy_spec, model)
    result["threshold"] = threshold
    result["sentences"] = len(rows)
    result["methods"] = score_table(rows, predictions_at(matched, probs, threshold))
    return result


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Printable rows: method, group, sentences, P, R, F1, TP, FP, FN."""
    out = []
    for method in METHODS:
        entry = result["methods"][method]
        groups = [("all", entry["overall"])]
        groups += [(f"lang={k}", v) for k, v in entry["by_lang"].items()]
        groups += [(f"kind={k}", v) for k, v in entry["by_kind"].items()]
        for name, m in groups:
            out.append([method, name, str(m["sentences"]), f"{m['P']:.1f}", f"{m['R']:.1f}", f"{m['F1']:.1f}",
                        str(m["tp"]), str(m["fp"]), str(m["fn"])])
    return out
