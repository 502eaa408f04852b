"""The taxonomy model: frameworks, areas, competences and skill concepts.

Everything here is frozen: a loaded taxonomy is a value. Its `version` is a content
hash, so two runs with the same files report the same version and any edit changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property

LANGUAGES: tuple[str, ...] = ("en", "ru", "uk", "ro", "ka", "fr")
PROFICIENCY_LEVELS: tuple[str, ...] = ("basic", "intermediate", "advanced", "specialist")
FRAMEWORKS: dict[str, str] = {
    "digcomp": "DigComp 2.2",
    "ecf": "e-CF 4.0",
    "esco": "ESCO",
}


@dataclass(frozen=True)
class Label:
    """One surface form of a concept.

    `ambiguous` labels (written `~R` in the files) only count in context.
    """

    text: str
    lang: str
    ambiguous: bool = False


@dataclass(frozen=True)
class Competence:
    """An area (``kind == "area"``) or a competence of a framework."""

    id: str
    framework: str
    kind: str
    code: str
    labels: dict[str, str]
    area: str | None = None
    description: str = ""

    @property
    def label(self) -> str:
        return self.labels.get("en") or self.id

    def label_in(self, lang: str) -> str:
        """Return the title in `lang`, falling back to English."""
        return self.labels.get(lang) or self.label


@dataclass(frozen=True)
class Concept:
    """A skill concept: a tool, technology or skill as employers write it."""

    id: str
    label: str
    competences: tuple[str, ...]
    labels: tuple[Label, ...]
    proficiency: str | None = None
    esco_uri: str | None = None
    context: tuple[str, ...] = ()
    source: str = ""

    def labels_in(self, lang: str) -> list[str]:
        return [lab.text for lab in self.labels if lab.lang == lang]


@dataclass(frozen=True)
class Taxonomy:
    """A validated taxonomy. Build it with `taxonomy.load`, not by hand."""

    name: str
    competences: dict[str, Competence]
    concepts: dict[str, Concept]
    sources: tuple[str, ...] = field(default=(), compare=False)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 over a canonical JSON form of areas, competences and concepts."""
        payload = {
            "competences": [asdict(c) for c in sorted(self.competences.values(), key=_id)],
            "concepts": [asdict(c) | {"source": ""} for c in sorted(self.concepts.values(), key=_id)],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    @property
    def version(self) -> str:
        """`name@hash12`: what every output row records as taxonomy_version."""
        return f"{self.name}@{self.content_hash[:12]}"

    @cached_property
    def areas(self) -> dict[str, Competence]:
        return {k: c for k, c in self.competences.items() if c.kind == "area"}

    def area_of(self, competence_id: str) -> Competence:
        comp = self.competences[competence_id]
        if comp.kind == "area":
            return comp
        assert comp.area is not None
        return self.competences[comp.area]

    def concepts_for(self, competence_id: str) -> list[Concept]:
        return [c for c in self.concepts.values() if competence_id in c.competences]

    def frameworks(self) -> list[str]:
        return sorted({c.framework for c in self.competences.values()})


def _id(obj: Competence | Concept) -> str:
    return obj.id
