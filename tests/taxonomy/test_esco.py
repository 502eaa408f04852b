from __future__ import annotations

import csv
import re
import shutil
import time
from pathlib import Path

import pytest

from extractors.errors import OutputError, TaxonomyError
from taxonomy.esco import (
    DIGCOMP_AREA_SKILLS,
    DIGCOMP_SKILLS,
    build_esco,
    export_taxonomy,
    import_esco,
    load_esco,
)
from taxonomy.load import BUILTIN_DIR, load_folder, load_taxonomy, read_competences

MINI = Path(__file__).resolve().parent.parent / "fixtures" / "esco_mini"
SKILL = "http://data.europa.eu/esco/skill/"
PROGRAMMING = SKILL + "21d2f96d-35f7-4e3f-9745-c533d2dd6e97"
PYTHON = SKILL + "ccd0a1d9-afda-43d9-b901-96344886e14d"
SOLVE = SKILL + "14832d87-2f2f-4895-b290-e4760ebae42a"
SUPPLY_CHAIN = SKILL + "f929c89e-c363-4132-a918-e021d57b307c"
MANAGE_SUPPLIES = SKILL + "020b3c27-bae1-4b85-9d6f-eccee0f5ed99"


@pytest.fixture(scope="module")
def mini():  # type: ignore[no-untyped-def]
    return build_esco(MINI)


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(MINI, tmp_path / "esco"))


def test_mini_loads_every_released_skill_with_three_frameworks(mini) -> None:
    tax = mini.taxonomy
    assert tax.name == "esco"
    assert len(tax.concepts) == 25 == mini.stats.concepts
    assert tax.frameworks() == ["digcomp", "ecf", "esco"]
    assert tax.competences["esco:S"].kind == "area"
    k06 = tax.competences["esco:K06"]
    assert k06.kind == "competence" and k06.area == "esco:K"
    assert k06.label == "information and communication technologies (icts)"
    assert tax.competences["esco:S5"].label_in("fr")  # French titles from skillsHierarchy_fr.csv
    assert tax.competences["digcomp:5.1"].label == "Solving technical problems"  # built-in layers kept


def test_mini_skill_labels_and_competences(mini) -> None:
    tax = mini.taxonomy
    python = tax.concepts[PYTHON]
    assert python.label == "Python (computer programming)"
    assert python.esco_uri == PYTHON
    assert python.competences == ("digcomp:3.4", "ecf:B.1", "esco:K06")
    assert python.proficiency == "advanced"  # sector-specific
    assert "Python (programmation informatique)" in python.labels_in("fr")
    programming = tax.concepts[PROGRAMMING]
    assert "computer programming" in programming.labels_in("en")
    assert "programmation informatique" in programming.labels_in("fr")
    assert tax.concepts[SOLVE].competences == ("digcomp:5.1", "esco:S5")


def test_mini_shared_labels_stay_on_the_preferred_owner_or_are_dropped(mini) -> None:
    tax = mini.taxonomy
    assert "supply chain management" in tax.concepts[SUPPLY_CHAIN].labels_in("en")
    assert "supply chain management" not in tax.concepts[MANAGE_SUPPLIES].labels_in("en")
    owners = [c for c in tax.concepts.values() if "tyre repair method" in c.labels_in("en")]
    assert owners == []  # an alternative label of two skills: dropped from both
    assert mini.stats.shared_labels_kept_on_preferred == 1
    assert mini.stats.shared_labels_dropped_everywhere == 2


def test_mini_digital_collection(tmp_path: Path) -> None:
    tax = load_esco(MINI, "digital")
    assert tax.name == "esco-digital"
    assert len(tax.concepts) == 14
    assert PYTHON in tax.concepts and MANAGE_SUPPLIES not in tax.concepts


def test_load_taxonomy_esco_spec_and_validation() -> None:
    tax = load_taxonomy("esco:" + str(MINI))
    assert len(tax.concepts) == 25
    assert tax.content_hash == load_esco(MINI).content_hash


def test_export_round_trip_keeps_content_hash(mini, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tax = import_esco(MINI, out, "all")
    assert tax.content_hash == mini.taxonomy.content_hash
    back = load_folder(out)
    assert back.name == "esco" and back.content_hash == tax.content_hash
    import_esco(MINI, out, "digital")  # an earlier export may be overwritten
    assert len(load_folder(out).concepts) == 14


def test_export_round_trip_of_builtin(tmp_path: Path) -> None:
    builtin = load_folder(BUILTIN_DIR, name="builtin")
    export_taxonomy(builtin, tmp_path / "b")
    assert load_folder(tmp_path / "b").content_hash == builtin.content_hash


def test_export_refuses_a_foreign_folder(mini, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match="not empty"):
        export_taxonomy(mini.taxonomy, tmp_path)


@pytest.mark.parametrize("name", ["skills_en.csv", "skillsHierarchy_en.csv", "broaderRelationsSkillPillar.csv",
                                  "digitalSkillsCollection_en.csv", "digCompSkillsCollection_en.csv"])
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    (folder / name).unlink()
    with pytest.raises(TaxonomyError, match=rf"\[T010\] ESCO folder .*: missing {re.escape(name)}"):
        load_esco(folder)


def test_missing_folder_and_bad_collection(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match=r"\[T010\] ESCO folder .* not found"):
        load_esco(tmp_path / "nope")
    with pytest.raises(TaxonomyError, match=r"\[T012\]"):
        load_esco(MINI, "green")


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "skills_en.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("altLabels", "alternativeLabels", 1), encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"\[T011\] ESCO file .*skills_en.csv: missing column\(s\) altLabels"):
        load_esco(folder)


def test_skill_filed_under_a_level0_group_gets_a_catch_all_competence(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "broaderRelationsSkillPillar.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [r for r in rows if r["conceptUri"] != SOLVE]
    rows.append({"conceptType": "KnowledgeSkillCompetence", "conceptUri": SOLVE, "broaderType": "SkillGroup",
                 "broaderUri": SKILL + "335228d2-297d-4e0e-a6ee-bc6a8dc110d9"})  # level 0: skills
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tax = load_esco(folder)
    assert tax.concepts[SOLVE].competences == ("digcomp:5.1", "esco:S.other")
    assert tax.competences["esco:S.other"].area == "esco:S"


# --- the official export (skipped without ../shared) ----------------------------------


@pytest.fixture(scope="module")
def esco_dir(shared_dir: Path) -> Path:
    folder = shared_dir / "data/taxonomies/esco-v1.1.1/en"
    if not (folder / "skills_en.csv").is_file():
        pytest.skip(f"ESCO export not found at {folder}")
    return folder


def test_real_export_all_and_digital(esco_dir: Path) -> None:
    start = time.perf_counter()
    full = build_esco(esco_dir, "all")
    seconds = time.perf_counter() - start
    print(f"\nESCO all: {len(full.taxonomy.concepts)} concepts in {seconds:.2f} s; {full.stats}")
    assert full.taxonomy.name == "esco-v1.1.1"
    assert len(full.taxonomy.concepts) >= 13_800
    assert full.stats.skipped_unclassified == 0
    digital = build_esco(esco_dir, "digital")
    print(f"ESCO digital: {len(digital.taxonomy.concepts)} concepts; {digital.stats}")
    assert 1_150 <= len(digital.taxonomy.concepts) <= 1_300
    for uri, code in DIGCOMP_SKILLS.items():
        assert code in digital.taxonomy.concepts[uri].competences, uri
    assert digital.stats.with_ecf > 100


def test_digcomp_table_matches_the_export(esco_dir: Path) -> None:
    """Each hard-coded entry's ESCO description is closest to its DigComp descriptor."""
    builtin, _ = read_competences(BUILTIN_DIR / "competences.csv", "competences.csv")
    targets = {c.id: _words(c.description) for c in builtin.values() if c.id.startswith("digcomp:") and c.description}
    with (esco_dir / "digCompSkillsCollection_en.csv").open(encoding="utf-8", newline="") as handle:
        rows = {r["conceptUri"]: r for r in csv.DictReader(handle)}
    assert set(DIGCOMP_SKILLS) | set(DIGCOMP_AREA_SKILLS) == set(rows)
    for uri, code in DIGCOMP_SKILLS.items():
        if code == "digcomp:3.4":  # ESCO's "computer programming" has its own description
            assert builtin[code].label.lower() in rows[uri]["preferredLabel"]
            continue
        words = _words(rows[uri]["description"])
        best = max(targets, key=lambda cid: len(words & targets[cid]) / len(words | targets[cid]))
        assert best == code, (rows[uri]["preferredLabel"], best, code)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{3,}", text.lower())) - {"and", "the", "for", "with", "through", "digital"}
