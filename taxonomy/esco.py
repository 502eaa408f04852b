"""Import the ESCO skills pillar (the official CSV export) as a skillpulse taxonomy.

``load_taxonomy("esco:DIR")`` calls :func:`load_esco`; ``skillpulse taxonomy import-esco``
calls :func:`import_esco`, which also writes the result as a taxonomy folder in the
documented format (docs/taxonomy-format.md). How ESCO is mapped onto DigComp 2.2, e-CF
and ESCO's own skill groups is explained in docs/esco-import.md.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from extractors.errors import OutputError, TaxonomyError
from taxonomy.load import BUILTIN_DIR, CONCEPT_ID, Problem, _finish, _labels, read_competences
from taxonomy.model import LANGUAGES, PROFICIENCY_LEVELS, Competence, Concept, Label, Taxonomy

log = logging.getLogger(__name__)

COLLECTIONS: tuple[str, ...] = ("all", "digital")
FRAMEWORK = "esco"
SKILLS = "skills_en.csv"
HIERARCHY = "skillsHierarchy_en.csv"
BROADER = "broaderRelationsSkillPillar.csv"
DIGITAL = "digitalSkillsCollection_en.csv"
DIGCOMP = "digCompSkillsCollection_en.csv"
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    SKILLS: ("conceptUri", "preferredLabel", "altLabels", "status", "reuseLevel"),
    HIERARCHY: ("Level 0 URI", "Level 0 preferred term", "Level 0 code",
                "Level 1 URI", "Level 1 preferred term", "Level 1 code",
                "Level 2 URI", "Level 3 URI", "Description"),
    BROADER: ("conceptUri", "broaderType", "broaderUri"),
    DIGITAL: ("conceptUri",),
    DIGCOMP: ("conceptUri", "preferredLabel"),
}
LEVELS = 4
EXPORT_MARKER = "skillpulse.taxonomy.esco"
_SKILL = "http://data.europa.eu/esco/skill/"
_ISCED = "http://data.europa.eu/esco/isced-f/"

# The DigComp 2.2 competences as ESCO skills (digCompSkillsCollection, ESCO v1.1).
# Hard-coded because the titles differ in form ("solve technical problems" vs
# "Solving technical problems", "computer programming" vs "Programming",
# "use online conventions of netiquette" vs "Netiquette"); every entry was checked
# against the ESCO description, which is the DigComp descriptor in imperative form.
# tests/taxonomy/test_esco.py re-checks the table against the export's descriptions.
DIGCOMP_SKILLS: dict[str, str] = {
    # browse, search and filter data, information and digital content
    _SKILL + "e439742d-558d-4f52-885e-afdc740b48cf": "digcomp:1.1",
    _SKILL + "1d6c7de4-350e-4868-a47b-333b4b0d9650": "digcomp:1.2",  # evaluate data, information and digital content
    _SKILL + "4d97e3c3-f335-47cc-a4ee-0d779fd42222": "digcomp:1.3",  # manage data, information and digital content
    _SKILL + "a12057b4-6d11-4a12-ab8e-15a028ef0a6d": "digcomp:2.1",  # interact through digital technologies
    _SKILL + "40001d93-8937-4859-89d5-2dca53290ff4": "digcomp:2.2",  # share through digital technologies
    # engage in citizenship through digital technologies
    _SKILL + "16a00c69-9c74-4c37-96d7-6301d285e5ce": "digcomp:2.3",
    _SKILL + "2b34a99f-9813-4c91-9509-b6b9b8c3132e": "digcomp:2.4",  # collaborate through digital technologies
    _SKILL + "97c1895a-a890-47da-abfc-79dc272add2e": "digcomp:2.5",  # use online conventions of netiquette
    _SKILL + "bc0b0b5d-f6be-405a-b224-b6902a4dbe97": "digcomp:2.6",  # manage digital identity
    _SKILL + "5fd5c985-eaaa-47aa-8314-62359c54505a": "digcomp:3.1",  # develop digital content
    _SKILL + "5af49836-2269-46d9-87b9-0d3140c6c22e": "digcomp:3.2",  # integrate and re-elaborate digital content
    _SKILL + "a91732ce-988e-4105-9570-f425c6ffdc82": "digcomp:3.3",  # copyright and licenses related to digital content
    _SKILL + "21d2f96d-35f7-4e3f-9745-c533d2dd6e97": "digcomp:3.4",  # computer programming
    _SKILL + "df329d70-87b0-466b-a214-3431f36e2a5e": "digcomp:4.1",  # protect ICT devices
    _SKILL + "33a82b83-c838-4889-ae62-fae1317481eb": "digcomp:4.2",  # protect personal data and privacy
    # protect health and well-being while using digital technologies
    _SKILL + "d1ed5b3a-cab5-4c5d-baf8-0214998b58fb": "digcomp:4.3",
    # protect the environment from the impact of the digital technologies
    _SKILL + "c4ba12d1-4698-42fa-8abb-789462ea2586": "digcomp:4.4",
    _SKILL + "14832d87-2f2f-4895-b290-e4760ebae42a": "digcomp:5.1",  # solve technical problems
    _SKILL + "42fcf80d-7b45-40f3-bd2f-5411c4c0dfa0": "digcomp:5.2",  # identify technological needs
    _SKILL + "1a4cc54f-1e53-442b-a6d2-1682dc8ef8f9": "digcomp:5.3",  # creatively use digital technologies
    _SKILL + "238343b1-7b51-42b3-a9ed-cf24d3a236e7": "digcomp:5.4",  # identify digital competence gaps
}
# The five other entries of the DigComp collection stand for a whole DigComp area.
# A concept must map to competences, not areas, so these (and skills that descend
# only from them) get no DigComp competence; they are listed for the documentation.
DIGCOMP_AREA_SKILLS: dict[str, str] = {
    _SKILL + "629685b8-5f9e-4522-8cff-b3e2c4ec625a": "digcomp:1",  # digital data processing
    _SKILL + "574257ea-7b64-4100-b7b6-e27c233fe143": "digcomp:2",  # digital communication and collaboration
    _SKILL + "f5369f2f-e52b-43d8-8d31-79a6c11188d8": "digcomp:3",  # digital content creation
    _SKILL + "426ceaba-6867-481c-bb6b-aee3933da7d2": "digcomp:4",  # ICT safety
    _SKILL + "7e5147d1-60b1-4a68-804b-1f5cb0396b91": "digcomp:5",  # problem-solving with digital tools
}

# ESCO reuse level -> proficiency: a proxy for how specialised a skill is.
# Transversal skills (and the few without a reuse level) get none.
PROFICIENCY_BY_REUSE: dict[str, str] = {
    "cross-sector": "intermediate",
    "sector-specific": "advanced",
    "occupation-specific": "specialist",
}

# The ESCO groups whose skills may get an e-CF competence: ICT knowledge (ISCED-F 06)
# and "working with computers" (S5).
ECF_SCOPE: frozenset[str] = frozenset({"esco:K06", "esco:S5"})


@dataclass(frozen=True)
class EcfRule:
    """Give `competence` to an in-scope digital skill that is, or is directly below, one
    of the `anchors` (ESCO skill or skill-group URIs), or whose preferred label matches
    `pattern`. Only direct parents count: deeper ESCO chains wander across topics."""

    competence: str
    anchors: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    note: str = ""

    def applies(self, label: str, near: set[str]) -> bool:
        return bool(self.anchors & near) or bool(self.pattern and self.pattern.search(label))


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)


# Applied, in this order, to skills of the digital skills (or DigComp) collection that
# fall under ECF_SCOPE; a skill gets every competence whose rule applies. The e-CF
# choices follow the built-in concepts (databases and languages B.1, networks B.6/C.5,
# penetration testing B.3/E.8, methodologies E.2, analytics D.7).
ECF_RULES: tuple[EcfRule, ...] = (
    EcfRule("ecf:B.1", frozenset({
        _SKILL + "21d2f96d-35f7-4e3f-9745-c533d2dd6e97",  # computer programming
        _SKILL + "69bbd53f-fbb0-4476-b4b2-ef7844464e28",  # web programming
        _SKILL + "24c200e5-be20-4370-a137-ab53797f3a17",  # software frameworks
        _SKILL + "925463a7-d51f-4d5b-9f79-4d28cf30acde",  # integrated development environment software
        _SKILL + "9cf681c7-89ec-470c-b651-7fe03786f586",  # query languages
        _SKILL + "ab1e97ed-2319-4293-a8b7-072d2648822f",  # database management systems
        _SKILL + "d6e4373a-ef2c-4b64-9dc6-4140846f6609",  # S5.1 programming computer systems
        _SKILL + "a8c3186b-c791-4d57-8f4f-4d12c7a5c6a7",  # S5.1.0 programming computer systems
    }), _words("programming", "software development", "develop(?:ing)? (?:software|code|applications?)",
               "coding", "scripting", "source code", "compilers?", "software libraries",
               "(?:design|develop|maintain|manage) database", "database (?:design|development|schema)",
               "define database"),
        note="programming languages, frameworks, IDEs, databases, software development"),
    EcfRule("ecf:B.3", frozenset({
        _SKILL + "de586dcf-d7e5-4340-bf5b-d59026f1b436",  # penetration testing tool
    }), _words(r"software (?:\w+ )?test(?:s|ing)?", r"ict (?:\w+ )?test(?:s|ing)?", "test automation",
               "debug(?:ging)?", "penetration testing"),
        note="software testing and debugging"),
    EcfRule("ecf:B.4", frozenset({
        _SKILL + "9d2e926f-53d9-41f5-98f3-19dfaa687f3f",  # tools for software configuration management
    }), _words("software deployment", "deploy software", "continuous integration", "devops"),
        note="solution deployment and configuration management"),
    EcfRule("ecf:B.6", pattern=_words("networks?", "network(?:ing)?", "ict servers?", "proxy servers", "cloud",
                                      "ict systems? integration",
                                      "integrate system components", "ict infrastructure", "operating systems?",
                                      "virtuali[sz]ation"),
            note="networks, servers, cloud and systems integration"),
    EcfRule("ecf:C.5", pattern=_words(r"administ\w*", "ict servers?", "proxy servers", "network(?:ing)?", "backups?",
                                      "maintain ict (?:system|server)s?", "ict system administration"),
            note="systems and network administration"),
    EcfRule("ecf:D.7", frozenset({
        _SKILL + "9d0d89be-bffa-4393-b6f6-8d05bea49051",  # data extraction, transformation and loading tools
    }), _words("data mining", "data analytics", "data analysis", "data science", "machine learning",
               "big data", "business intelligence", r"data warehous\w*", "statistical analysis"),
        note="data analysis and data science"),
    EcfRule("ecf:E.8", frozenset({
        _SKILL + "de586dcf-d7e5-4340-bf5b-d59026f1b436",  # penetration testing tool
    }), _words("ict security", "cyber ?security", "cyber attacks?", "information security", "firewalls?",
               "encryption", "intrusion", "malware", "anti-virus", "security threats", "security risks"),
        note="information security"),
    EcfRule("ecf:E.2", frozenset({
        _SKILL + "bec4359e-cb92-468f-a997-8fb28e32fba9",  # ICT project management methodologies
    }), _words("ict project management", "agile", "scrum"), note="ICT project management"),
    EcfRule("ecf:A.10", pattern=_words("user experience", "usability", "user interface design",
                                       "user-centred design", "interaction design"),
            note="user experience"),
    EcfRule("ecf:A.5", pattern=_words("ict architecture", "software architecture", "enterprise architecture",
                                      "architecture frameworks?", "ict system architecture"),
            note="architecture design"),
    EcfRule("ecf:A.6", pattern=_words("modell?ing language", "object-oriented modell?ing", "wireframes?",
                                      "software (?:design|specifications?)", "ict system design",
                                      "design (?:ict systems?|application interfaces?)"),
            note="application design"),
    EcfRule("ecf:D.11", pattern=_words("ict user needs", "user research", "ict requirements", "business requirements"),
            note="needs identification"),
    EcfRule("ecf:C.1", pattern=_words("ict support", "help ?desk", "ict troubleshooting", "ict user support",
                                      "resolve ict problems"), note="user support"),
)


@dataclass
class EscoStats:
    """What an import did; logged by import_esco and written to the export's taxonomy.yaml."""

    collection: str = "all"
    skills_in_file: int = 0
    skipped_not_released: int = 0
    collection_uris_not_in_skills: int = 0
    skipped_unclassified: int = 0
    concepts: int = 0
    esco_competences: int = 0
    concepts_in_several_groups: int = 0
    concepts_in_catch_all: int = 0
    with_digcomp: int = 0
    with_ecf: int = 0
    ecf_by_competence: dict[str, int] = field(default_factory=dict)
    labels_en: int = 0
    labels_fr: int = 0
    shared_labels_kept_on_preferred: int = 0
    shared_labels_dropped_from_others: int = 0
    shared_labels_dropped_everywhere: int = 0
    shared_label_occurrences_dropped: int = 0
    shared_preferred_labels: int = 0


@dataclass(frozen=True)
class EscoImport:
    taxonomy: Taxonomy
    stats: EscoStats


@dataclass
class _Skill:
    uri: str
    label: str
    alt_en: list[str]
    reuse: str
    line: int
    fr: list[str] = field(default_factory=list)  # preferred French label first


def load_esco(folder: Path, collection: str = "all") -> Taxonomy:
    """Load the ESCO CSV export in `folder` (or `folder/en`) as a validated Taxonomy.

    `collection` is ``all`` (every released skill) or ``digital`` (the digital skills
    collection plus the DigComp collection).

    Raises:
        TaxonomyError: a missing folder or file, a file without a required column, an
            unknown collection, or a result that fails validation.
    """
    return build_esco(folder, collection).taxonomy


def import_esco(esco_dir: Path, out_dir: Path, collection: str = "all") -> Taxonomy:
    """Load ESCO from `esco_dir` and write it to `out_dir` as a taxonomy folder.

    Backs ``skillpulse taxonomy import-esco DIR --collection digital|all --out FOLDER``.
    """
    result = build_esco(Path(esco_dir), collection)
    export_taxonomy(result.taxonomy, Path(out_dir), meta={"esco_import": asdict(result.stats)})
    stats = result.stats
    log.info("ESCO import %s: %d concepts (%d with DigComp, %d with e-CF), %d shared labels dropped",
             result.taxonomy.version, stats.concepts, stats.with_digcomp, stats.with_ecf,
             stats.shared_label_occurrences_dropped)
    return result.taxonomy


def build_esco(folder: Path, collection: str = "all") -> EscoImport:
    """Like load_esco, but also return the import statistics."""
    if collection not in COLLECTIONS:
        raise TaxonomyError(f"[T012] ESCO collection {collection!r}: use one of {', '.join(COLLECTIONS)}")
    folder = _resolve(Path(folder))
    stats = EscoStats(collection=collection)

    builtin, problems = read_competences(BUILTIN_DIR / "competences.csv", "taxonomy/data/builtin/competences.csv")
    groups = _read_hierarchy(folder)
    skill_parents, group_parents = _read_broader(folder)
    skills = _read_skills(folder, stats)
    _read_french(folder, skills, groups)

    wanted = set(skills)
    if collection == "digital":
        listed = _collection_uris(folder / DIGITAL) | _collection_uris(folder / DIGCOMP)
        stats.collection_uris_not_in_skills = len(listed - wanted)
        wanted &= listed
    digital = _collection_uris(folder / DIGITAL) | _collection_uris(folder / DIGCOMP)

    competences: dict[str, Competence] = dict(builtin)
    competences.update(groups.competences())
    mapped: dict[str, list[str]] = {}
    for uri in sorted(wanted):
        lineage = _ancestors(_nearest_groups(uri, skill_parents, group_parents), group_parents)
        comps = groups.level1_of(lineage)
        if not comps:
            comps = groups.catch_all_of(lineage, competences)
            stats.concepts_in_catch_all += bool(comps)
        if not comps:
            stats.skipped_unclassified += 1
            continue
        stats.concepts_in_several_groups += len(comps) > 1
        near = {uri, *skill_parents.get(uri, ()), *group_parents.get(uri, ())}
        digcomp = sorted({DIGCOMP_SKILLS[u] for u in near if u in DIGCOMP_SKILLS})
        ecf: list[str] = []
        if uri in digital and ECF_SCOPE & set(comps):
            ecf = sorted({r.competence for r in ECF_RULES if r.applies(skills[uri].label, near)})
        stats.with_digcomp += bool(digcomp)
        stats.with_ecf += bool(ecf)
        for comp in ecf:
            stats.ecf_by_competence[comp] = stats.ecf_by_competence.get(comp, 0) + 1
        mapped[uri] = digcomp + ecf + sorted(comps)

    concepts, id_problems = _concepts({u: skills[u] for u in mapped}, mapped, stats)
    stats.concepts = len(concepts)
    stats.esco_competences = sum(1 for c in competences.values() if c.framework == FRAMEWORK)
    stats.ecf_by_competence = dict(sorted(stats.ecf_by_competence.items()))
    stats.labels_en = sum(len(c.labels_in("en")) for c in concepts.values())
    stats.labels_fr = sum(len(c.labels_in("fr")) for c in concepts.values())
    name = _name(folder) + ("-digital" if collection == "digital" else "")
    taxonomy = _finish(name, competences, concepts, problems + id_problems, (str(folder),))
    return EscoImport(taxonomy, stats)


# --- reading the export -------------------------------------------------------------


def _resolve(folder: Path) -> Path:
    if not folder.is_dir():
        raise TaxonomyError(f"[T010] ESCO folder {folder} not found")
    if not (folder / SKILLS).is_file() and (folder / "en" / SKILLS).is_file():
        folder = folder / "en"
    for name in REQUIRED_COLUMNS:
        if not (folder / name).is_file():
            raise TaxonomyError(
                f"[T010] ESCO folder {folder}: missing {name} "
                f"(expected the official ESCO CSV export: {', '.join(REQUIRED_COLUMNS)})")
    return folder


def _read(path: Path, required: Iterable[str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of an ESCO CSV file with their line numbers; checks the header first."""
    required = tuple(required if required is not None else REQUIRED_COLUMNS.get(path.name, ()))
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise TaxonomyError(f"[T011] ESCO file {path}: missing column(s) {', '.join(missing)}")
            line = reader.line_num
            for row in reader:
                yield line + 1, row
                line = reader.line_num
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"[T011] ESCO file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaxonomyError(f"[T010] ESCO file {path}: cannot read ({exc.strerror})") from None
    except csv.Error as exc:
        raise TaxonomyError(f"[T011] ESCO file {path}: not valid CSV ({exc})") from None


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


_LIST_SPLIT = re.compile(r"\n| \| ")


def _label_list(cell: str | None) -> list[str]:
    """ESCO label lists: newline-separated in skills_*.csv, ' | ' in the collections.

    '|' separates labels in our own files and a leading '~' marks an ambiguous label,
    so neither survives in a label text.
    """
    out = []
    for part in _LIST_SPLIT.split(cell or ""):
        text = _clean(part.replace("|", "/")).lstrip("~ ")
        if text:
            out.append(text)
    return out


@dataclass
class _Groups:
    """The ESCO skill-pillar groups of skillsHierarchy_*.csv, by level."""

    level: dict[str, int] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    area_of: dict[str, str] = field(default_factory=dict)  # level-1 uri -> level-0 uri

    def competence_id(self, uri: str) -> str:
        return f"{FRAMEWORK}:{self.code[uri]}"

    def competences(self) -> dict[str, Competence]:
        out: dict[str, Competence] = {}
        ordered = sorted((u for u, lv in self.level.items() if lv <= 1),
                         key=lambda u: (self.level[u], self.code[u]))
        for uri in ordered:
            is_area = self.level[uri] == 0
            cid = self.competence_id(uri)
            out[cid] = Competence(
                id=cid, framework=FRAMEWORK, kind="area" if is_area else "competence",
                code=self.code[uri], labels=dict(self.labels[uri]),
                area=None if is_area else self.competence_id(self.area_of[uri]),
                description=self.description.get(uri, ""),
            )
        return out

    def level1_of(self, lineage: set[str]) -> list[str]:
        return sorted(self.competence_id(u) for u in lineage if self.level.get(u) == 1)

    def catch_all_of(self, lineage: set[str], competences: dict[str, Competence]) -> list[str]:
        """`esco:<L0>.other` for skills whose ancestors reach a level-0 group only."""
        out = []
        for uri in lineage:
            if self.level.get(uri) != 0:
                continue
            area = competences[self.competence_id(uri)]
            cid = f"{area.id}.other"
            if cid not in competences:
                competences[cid] = Competence(
                    id=cid, framework=FRAMEWORK, kind="competence", code=f"{area.code}.other",
                    labels={lang: f"{text} (other)" for lang, text in area.labels.items()},
                    area=area.id, description="ESCO skills filed directly under this group.")
            out.append(cid)
        return sorted(out)


def _read_hierarchy(folder: Path) -> _Groups:
    groups = _Groups()
    path = folder / HIERARCHY
    for _, row in _read(path):
        deepest = max((i for i in range(LEVELS) if _clean(row.get(f"Level {i} URI"))), default=-1)
        for i in range(min(deepest + 1, 2)):
            uri = _clean(row[f"Level {i} URI"])
            groups.level.setdefault(uri, i)
            if uri not in groups.code:
                groups.code[uri] = _group_code(uri, _clean(row.get(f"Level {i} code")), row, i)
                groups.labels[uri] = {"en": _clean(row[f"Level {i} preferred term"])}
            if i == 1:
                groups.area_of.setdefault(uri, _clean(row["Level 0 URI"]))
            if i == deepest and _clean(row.get("Description")):
                groups.description.setdefault(uri, _clean(row["Description"]))
        for i in range(2, deepest + 1):
            groups.level.setdefault(_clean(row[f"Level {i} URI"]), i)
    for uri in groups.level:
        if groups.level[uri] <= 1 and not groups.labels[uri]["en"]:
            raise TaxonomyError(f"[T011] ESCO file {path}: group {uri} has no preferred term")
    codes: dict[str, str] = {}
    for uri, lv in groups.level.items():
        if lv <= 1:
            other = codes.setdefault(groups.code[uri], uri)
            if other != uri:
                raise TaxonomyError(f"[T011] ESCO file {path}: code {groups.code[uri]!r} names {other} and {uri}")
    return groups


def _group_code(uri: str, code: str, row: dict[str, str], level: int) -> str:
    """The group's code; ESCO leaves it empty for the knowledge (ISCED-F) groups."""
    if code:
        return code
    isced = re.fullmatch(re.escape(_ISCED) + r"(\d+)", uri)
    if isced and level == 1:
        return _clean(row.get("Level 0 code")) + isced.group(1)
    tail = re.sub(r"[^a-z0-9]", "", uri.rsplit("/", 1)[-1].lower())[:8]
    return f"{_clean(row.get('Level 0 code')) or 'X'}-{tail}"


def _read_broader(folder: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The broader skills and the broader groups of every skill or group."""
    skill_parents: dict[str, list[str]] = defaultdict(list)
    group_parents: dict[str, list[str]] = defaultdict(list)
    for _, row in _read(folder / BROADER):
        child, parent = _clean(row["conceptUri"]), _clean(row["broaderUri"])
        if child and parent:
            is_group = _clean(row["broaderType"]) == "SkillGroup"
            (group_parents if is_group else skill_parents)[child].append(parent)
    return skill_parents, group_parents


def _nearest_groups(uri: str, skill_parents: dict[str, list[str]],
                    group_parents: dict[str, list[str]]) -> set[str]:
    """The skill's own groups; a skill filed under skills only takes the groups of its
    nearest broader skills (breadth first), not of every skill above it."""
    frontier, seen = {uri}, {uri}
    while frontier:
        groups = {g for s in frontier for g in group_parents.get(s, ())}
        if groups:
            return groups
        frontier = {p for s in frontier for p in skill_parents.get(s, ())} - seen
        seen |= frontier
    return set()


def _ancestors(groups: set[str], group_parents: dict[str, list[str]]) -> set[str]:
    """`groups` and every group above them (cycles are tolerated)."""
    seen = set(groups)
    stack = list(groups)
    while stack:
        for parent in group_parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _read_skills(folder: Path, stats: EscoStats) -> dict[str, _Skill]:
    skills: dict[str, _Skill] = {}
    for line, row in _read(folder / SKILLS):
        stats.skills_in_file += 1
        if _clean(row["status"]) not in ("released", ""):
            stats.skipped_not_released += 1
            continue
        uri = _clean(row["conceptUri"])
        label = _label_list(row["preferredLabel"])
        if not uri or not label:
            raise TaxonomyError(f"[T011] ESCO file {folder / SKILLS} line {line}: empty conceptUri or preferredLabel")
        skills[uri] = _Skill(uri=uri, label=label[0], alt_en=_label_list(row["altLabels"]),
                             reuse=_clean(row["reuseLevel"]), line=line)
    return skills


def _collection_uris(path: Path) -> set[str]:
    return {_clean(row["conceptUri"]) for _, row in _read(path, ("conceptUri",))}


def _french_dirs(folder: Path) -> list[Path]:
    dirs = [folder, folder.parent / "fr"]
    return [d for d in dirs if d.is_dir()]


def _read_french(folder: Path, skills: dict[str, _Skill], groups: _Groups) -> None:
    """French labels from *_fr.csv files next to the English ones or in ../fr/."""
    if "fr" not in LANGUAGES:
        return
    for directory in _french_dirs(folder):
        for path in sorted(directory.glob("*_fr.csv")):
            if path.name == "skillsHierarchy_fr.csv":
                columns = ("Level 0 URI", "Level 0 preferred term", "Level 1 URI", "Level 1 preferred term")
                for _, row in _read(path, columns):
                    for i in range(2):
                        uri, term = _clean(row[f"Level {i} URI"]), _clean(row[f"Level {i} preferred term"])
                        if uri in groups.labels and term:
                            groups.labels[uri].setdefault("fr", term)
            elif path.name == "skills_fr.csv" or path.name.endswith("Collection_fr.csv"):
                for _, row in _read(path, ("conceptUri", "preferredLabel")):
                    skill = skills.get(_clean(row["conceptUri"]))
                    if skill is None:
                        continue
                    for text in _label_list(row["preferredLabel"]) + _label_list(row.get("altLabels")):
                        if text.casefold() not in {t.casefold() for t in skill.fr}:
                            skill.fr.append(text)


def _name(folder: Path) -> str:
    for part in (folder.name, folder.parent.name):
        version = re.search(r"v?(\d+(?:\.\d+)+)", part)
        if version:
            return f"esco-v{version.group(1)}"
    return "esco"


# --- concepts and labels --------------------------------------------------------------


def _concepts(skills: dict[str, _Skill], mapped: dict[str, list[str]],
              stats: EscoStats) -> tuple[dict[str, Concept], list[Problem]]:
    """Build concepts, giving each label text to one concept only (see docs/esco-import.md).

    Rank of a label on a concept: 0 = its English preferred label, 1 = its French
    preferred label, 2 = an alternative label. A text claimed by several concepts stays
    on the single concept with the best rank; when several tie, it is dropped from all
    of them (a shared English preferred label stays on the first concept by URI and
    becomes an ambiguous label, '~', on the others).
    """
    claims: dict[str, dict[str, int]] = defaultdict(dict)
    for uri, skill in skills.items():
        texts = [(skill.label, 0)] + [(t, 1 if i == 0 else 2) for i, t in enumerate(skill.fr)]
        texts += [(t, 2) for t in skill.alt_en]
        for text, rank in texts:
            owners = claims[text.casefold()]
            owners[uri] = min(rank, owners.get(uri, rank))
    drop: dict[str, set[str]] = defaultdict(set)  # uri -> casefolded texts it loses
    renamed: dict[str, str] = {}
    for key, owners in claims.items():
        if len(owners) < 2:
            continue
        best = min(owners.values())
        winners = sorted(u for u, r in owners.items() if r == best)
        keep = winners[0] if len(winners) == 1 or best == 0 else None
        if best == 0 and len(winners) > 1:
            stats.shared_preferred_labels += 1
            for uri in winners[1:]:
                renamed[uri] = key
        elif keep is not None:
            stats.shared_labels_kept_on_preferred += 1
            stats.shared_labels_dropped_from_others += len(owners) - 1
        else:
            stats.shared_labels_dropped_everywhere += 1
        for uri in owners:
            if uri != keep and not (uri in renamed and renamed[uri] == key):
                drop[uri].add(key)
                stats.shared_label_occurrences_dropped += 1

    concepts: dict[str, Concept] = {}
    problems: list[Problem] = []
    for uri in sorted(skills):
        skill = skills[uri]
        if not CONCEPT_ID.match(uri):
            problems.append(Problem("T003", SKILLS, skill.line, uri, "ESCO concept URI is not a valid concept "
                                    "id (lower-case letters, digits and _.+-:/)"))
            continue
        lost = drop.get(uri, set())
        label, extra_en = skill.label, [t for t in skill.alt_en if t.casefold() not in lost]
        if uri in renamed:  # ESCO gives this preferred label to another skill too
            label = f"{skill.label} [{uri.rsplit('/', 1)[-1][:8]}]"
            extra_en = ["~" + skill.label] + extra_en
        row = {"label_en": label, "labels_en": "|".join(extra_en),
               "labels_fr": "|".join(t for t in skill.fr if t.casefold() not in lost)}
        proficiency = PROFICIENCY_BY_REUSE.get(skill.reuse)
        assert proficiency is None or proficiency in PROFICIENCY_LEVELS
        concepts[uri] = Concept(
            id=uri, label=label, competences=tuple(mapped[uri]), labels=tuple(_labels(row)),
            proficiency=proficiency, esco_uri=uri, source=f"{SKILLS} line {skill.line}",
        )
    return concepts, problems


# --- export -------------------------------------------------------------------------


def export_taxonomy(taxonomy: Taxonomy, out_dir: Path, meta: dict[str, object] | None = None) -> None:
    """Write `taxonomy` as a taxonomy folder (taxonomy.yaml, competences.csv, concepts/).

    ``load_folder(out_dir)`` gives back a taxonomy with the same content_hash. An existing
    `out_dir` is only overwritten when it is empty or an earlier export.

    Raises:
        OutputError: `out_dir` holds other files, or cannot be written.
    """
    out_dir = Path(out_dir)
    meta_file = out_dir / "taxonomy.yaml"
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"[O002] Taxonomy output {out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not _is_export(meta_file):
            raise OutputError(f"[O002] Taxonomy output folder {out_dir} is not empty and not an "
                              "earlier skillpulse taxonomy export; choose a new or empty folder")
    try:
        if (out_dir / "concepts").is_dir():
            shutil.rmtree(out_dir / "concepts")
        (out_dir / "concepts").mkdir(parents=True, exist_ok=True)
        info: dict[str, object] = {"name": taxonomy.name, "generated_by": EXPORT_MARKER,
                                   "version": taxonomy.version}
        info.update(meta or {})
        meta_file.write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True), encoding="utf-8")
        _write_competences(taxonomy, out_dir / "competences.csv")
        _write_concepts(taxonomy, out_dir / "concepts" / "concepts.csv")
    except OSError as exc:
        raise OutputError(f"[O001] Taxonomy output {out_dir} is not writable: {exc.strerror or exc}") from None


def _is_export(meta_file: Path) -> bool:
    try:
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(meta, dict) and meta.get("generated_by") == EXPORT_MARKER


def _write_competences(taxonomy: Taxonomy, path: Path) -> None:
    columns = ["id", "framework", "kind", "area", "code", *(f"label_{lang}" for lang in LANGUAGES), "description_en"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for comp in taxonomy.competences.values():
            writer.writerow([comp.id, comp.framework, comp.kind, comp.area or "", comp.code,
                             *(comp.labels.get(lang, "") for lang in LANGUAGES), comp.description])


def _write_concepts(taxonomy: Taxonomy, path: Path) -> None:
    columns = ["id", "label_en", "competences", "proficiency", "esco_uri",
               *(f"labels_{lang}" for lang in LANGUAGES), "context"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for concept in sorted(taxonomy.concepts.values(), key=lambda c: c.id):
            first = Label(concept.label, "en")
            rest = concept.labels[1:] if concept.labels[:1] == (first,) else concept.labels
            cells = {lang: "|".join(("~" if lab.ambiguous else "") + lab.text for lab in rest if lab.lang == lang)
                     for lang in LANGUAGES}
            writer.writerow([concept.id, concept.label, "|".join(concept.competences), concept.proficiency or "",
                             concept.esco_uri or "", *(cells[lang] for lang in LANGUAGES), "|".join(concept.context)])
