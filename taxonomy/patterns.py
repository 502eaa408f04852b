"""Turn a taxonomy into the label entries the spaCy skill matcher is built from."""

from __future__ import annotations

from taxonomy.model import Taxonomy


def matcher_labels(taxonomy: Taxonomy) -> list[dict[str, object]]:
    """One entry per (concept, label): what the matcher searches for.

    >>> from taxonomy import load_taxonomy
    >>> [e for e in matcher_labels(load_taxonomy()) if e["label"] == "Python"][0]["concept"]
    'python'
    """
    entries: list[dict[str, object]] = []
    for concept in sorted(taxonomy.concepts.values(), key=lambda c: c.id):
        for label in concept.labels:
            entries.append(
                {
                    "concept": concept.id,
                    "label": label.text,
                    "ambiguous": label.ambiguous,
                    "context": list(concept.context),
                }
            )
    return entries
