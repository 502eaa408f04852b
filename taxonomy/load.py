"""Load and validate taxonomies from the built-in files, a folder or a concepts CSV.

The file format is documented in docs/taxonomy-format.md. Every problem names the
file, the line and the entry, e.g.::

    [T004] concepts/office.csv line 12 (ms_word): unknown competence 'digcomp:9.9'
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from extractors.errors import TaxonomyError
from taxonomy.model import LANGUAGES, PROFICIENCY_LEVELS, Competence, Concept, Label, Taxonomy

BUILTIN_DIR = Path(__file__).parent / "data" / "builtin"
COMPETENCE_COLUMNS = ("id", "framework", "kind", "area", "code", "label_en")
CONCEPT_COLUMNS = ("id", "label_en", "competences")
CONCEPT_ID = re.compile(r"^[a-z0-9][a-z0-9_.+\-:/]*$")
MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One validation finding, located in a file."""

    code: str
    path: str
    line: int | None
    entry: str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        what = f" ({self.entry})" if self.entry else ""
        return f"[{self.code}] {where}{what}: {self.message}"


def load_taxonomy(spec: str | Path = "builtin") -> Taxonomy:
    """Load a taxonomy from a spec: ``builtin``, ``esco:DIR``, a folder or a concepts CSV.

    Raises:
        TaxonomyError: the spec names nothing readable, or the taxonomy is invalid.
    """
    spec = str(spec)
    return _load_cached(spec, _stamp(spec))


@lru_cache(maxsize=8)
def _load_cached(spec: str, stamp: tuple[float, ...]) -> Taxonomy:
    if spec == "builtin":
        return load_folder(BUILTIN_DIR, name="builtin")
    if spec.startswith("esco:"):
        from taxonomy.esco import load_esco

        return load_esco(Path(spec[5:]))
    path = Path(spec)
    if not path.exists():
        raise TaxonomyError(
            f"[T001] Taxonomy {spec!r} not found: give 'builtin', 'esco:DIR', a taxonomy folder or a concepts CSV file"
        )
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() == ".csv":
        base = load_folder(BUILTIN_DIR, name="builtin")
        extra, problems = read_concepts(path, path.name)
        return _finish(
            f"builtin+{path.stem}", base.competences, merge_concepts(base.concepts, extra), problems, (str(path),)
        )
    raise TaxonomyError(f"[T001] Taxonomy {spec!r}: expected a folder or a .csv file")


def _stamp(spec: str) -> tuple[float, ...]:
    """Modification times that invalidate the cache when files change."""
    path = BUILTIN_DIR if spec == "builtin" else Path(spec.removeprefix("esco:"))
    if not path.exists():
        return ()
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return tuple(f.stat().st_mtime for f in files if f.is_file())


def load_folder(folder: Path, name: str | None = None) -> Taxonomy:
    """Load a taxonomy folder (competences.csv + concepts/*.csv, optional taxonomy.yaml)."""
    if not folder.is_dir():
        raise TaxonomyError(f"[T001] Taxonomy folder {folder} not found")
    meta = _read_meta(folder)
    name = name or str(meta.get("name") or folder.name)
    problems: list[Problem] = []
    competences: dict[str, Competence] = {}
    concepts: dict[str, Concept] = {}
    if meta.get("extends") == "builtin":
        base = load_folder(BUILTIN_DIR, name="builtin")
        competences, concepts = dict(base.competences), dict(base.concepts)
    comp_file = folder / "competences.csv"
    if comp_file.exists():
        more, found = read_competences(comp_file, _rel(comp_file, folder))
        competences.update(more)
        problems += found
    elif not competences:
        raise TaxonomyError(f"[T001] {comp_file} not found: a taxonomy folder needs one")
    concept_files = sorted((folder / "concepts").glob("*.csv")) if (folder / "concepts").is_dir() else []
    if not concept_files and not concepts:
        raise TaxonomyError(f"[T001] {folder / 'concepts'} has no *.csv concept files")
    seen: dict[str, Concept] = {}
    for path in concept_files:
        rows, found = read_concepts(path, _rel(path, folder))
        problems += found
        for concept in rows:
            if concept.id in seen:
                problems.append(
                    Problem(
                        "T003",
                        concept.source,
                        None,
                        concept.id,
                        f"duplicate concept id, first defined in {seen[concept.id].source}",
                    )
                )
            seen[concept.id] = concept
    concepts = merge_concepts(concepts, list(seen.values()))
    return _finish(name, competences, concepts, problems, (str(folder),))


def _read_meta(folder: Path) -> dict[str, object]:
    meta_file = folder / "taxonomy.yaml"
    if not meta_file.exists():
        return {}
    try:
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"[T002] {meta_file}: not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise TaxonomyError(f"[T002] {meta_file}: expected a mapping with name/extends")
    return meta


def merge_concepts(base: dict[str, Concept], extra: Iterable[Concept]) -> dict[str, Concept]:
    """Return `base` with `extra` concepts added; a concept with the same id replaces it."""
    merged = dict(base)
    for concept in extra:
        merged[concept.id] = concept
    return merged


def _finish(
    name: str,
    competences: dict[str, Competence],
    concepts: dict[str, Concept],
    problems: list[Problem],
    sources: tuple[str, ...],
) -> Taxonomy:
    problems = problems + list(check_references(competences, concepts))
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:MAX_SHOWN])
        more = f"\n  … and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise TaxonomyError(f"Taxonomy {name!r} is invalid ({len(problems)} problems):\n  {shown}{more}")
    return Taxonomy(name=name, competences=competences, concepts=concepts, sources=sources)


def validate_path(spec: str) -> list[Problem]:
    """Return every problem in a taxonomy spec (empty when valid), for `taxonomy validate`."""
    try:
        load_taxonomy(spec)
    except TaxonomyError as exc:
        return [Problem("T000", spec, None, None, str(exc))]
    return []


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.parent))
    except ValueError:
        return str(path)


def _rows(path: Path, shown: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"[T002] {shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaxonomyError(f"[T001] {shown}: cannot read ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise TaxonomyError(f"[T002] {shown} line 1: missing column(s) {', '.join(missing)}")
    for row in reader:
        if None in row:
            raise TaxonomyError(f"[T002] {shown} line {reader.line_num}: more cells than columns")
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def read_competences(path: Path, shown: str) -> tuple[dict[str, Competence], list[Problem]]:
    """Read competences.csv into competences keyed by id, with the problems found."""
    out: dict[str, Competence] = {}
    problems: list[Problem] = []
    for line, row in _rows(path, shown, COMPETENCE_COLUMNS):
        cid = row["id"]
        if not cid:
            problems.append(Problem("T003", shown, line, None, "empty id"))
            continue
        if cid in out:
            problems.append(Problem("T003", shown, line, cid, "duplicate competence id"))
        if row["kind"] not in ("area", "competence"):
            problems.append(
                Problem("T005", shown, line, cid, f"kind must be 'area' or 'competence', not {row['kind']!r}")
            )
        if not row["label_en"]:
            problems.append(Problem("T006", shown, line, cid, "empty label_en"))
        labels = {lang: row.get(f"label_{lang}", "") for lang in LANGUAGES}
        out[cid] = Competence(
            id=cid,
            framework=row["framework"],
            kind=row["kind"],
            code=row["code"],
            labels={k: v for k, v in labels.items() if v},
            area=row["area"] or None,
            description=row.get("description_en", ""),
        )
    for comp in out.values():
        if comp.kind == "competence":
            area = out.get(comp.area or "")
            if area is None or area.kind != "area":
                problems.append(
                    Problem("T004", shown, None, comp.id, f"area {comp.area!r} is not an area in this file")
                )
    return out, problems


def read_concepts(path: Path, shown: str) -> tuple[list[Concept], list[Problem]]:
    """Read one concepts CSV file into concepts, with the problems found."""
    out: list[Concept] = []
    problems: list[Problem] = []
    for line, row in _rows(path, shown, CONCEPT_COLUMNS):
        cid = row["id"]

        def bad(code: str, message: str, line: int = line, cid: str = cid) -> None:
            problems.append(Problem(code, shown, line, cid or None, message))

        if not CONCEPT_ID.match(cid):
            bad("T003", f"invalid concept id {cid!r}: use lower-case letters, digits and _.+-")
            continue
        if not row["label_en"]:
            bad("T006", "empty label_en")
        competences = tuple(_split(row["competences"]))
        if not competences:
            bad("T004", "maps to no competence")
        proficiency = row.get("proficiency") or None
        if proficiency and proficiency not in PROFICIENCY_LEVELS:
            bad("T005", f"proficiency must be one of {', '.join(PROFICIENCY_LEVELS)}, not {proficiency!r}")
        labels = _labels(row)
        if any(not lab.text for lab in labels):
            bad("T006", "empty label in a label list (check for '||' or a lone '~')")
        out.append(
            Concept(
                id=cid,
                label=row["label_en"],
                competences=competences,
                labels=tuple(lab for lab in labels if lab.text),
                proficiency=proficiency,
                esco_uri=row.get("esco_uri") or None,
                context=tuple(_split(row.get("context", ""))),
                source=f"{shown} line {line}",
            )
        )
    return out, problems


def _labels(row: dict[str, str]) -> list[Label]:
    labels = [Label(row["label_en"], "en")]
    for lang in LANGUAGES:
        for text in _split(row.get(f"labels_{lang}", "")):
            ambiguous = text.startswith("~")
            labels.append(Label(text.lstrip("~").strip(), lang, ambiguous))
    unique: dict[tuple[str, bool], Label] = {}
    for lab in labels:
        unique.setdefault((lab.text.casefold(), lab.ambiguous), lab)
    return list(unique.values())


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("|")] if cell.strip() else []


def check_references(competences: dict[str, Competence], concepts: dict[str, Concept]) -> Iterator[Problem]:
    """Yield problems that span files: unknown competences and labels claimed twice."""
    owner: dict[str, Concept] = {}
    for concept in concepts.values():
        where, _, line = concept.source.partition(" line ")
        line_no = int(line) if line.isdigit() else None
        for comp_id in concept.competences:
            comp = competences.get(comp_id)
            if comp is None:
                yield Problem("T004", where, line_no, concept.id, f"unknown competence {comp_id!r}")
            elif comp.kind != "competence":
                yield Problem("T004", where, line_no, concept.id, f"{comp_id!r} is an area; map to a competence")
        for lab in concept.labels:
            if lab.ambiguous:
                continue
            key = lab.text.casefold()
            other = owner.setdefault(key, concept)
            if other.id != concept.id:
                yield Problem(
                    "T007",
                    where,
                    line_no,
                    concept.id,
                    f"label {lab.text!r} is also a label of {other.id!r} ({other.source}); "
                    "a label may name one concept only (or mark it ambiguous with '~')",
                )
