"""The digital-competence taxonomy: model, loaders and validation (no Prefect, no spaCy)."""

from taxonomy.load import load_taxonomy
from taxonomy.model import Competence, Concept, Label, Taxonomy

__all__ = ["Competence", "Concept", "Label", "Taxonomy", "load_taxonomy"]
