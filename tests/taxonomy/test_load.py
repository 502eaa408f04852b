from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from extractors.errors import TaxonomyError
from taxonomy.load import BUILTIN_DIR, load_taxonomy


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_load_toy_taxonomy_has_concepts_and_competences(toy_taxonomy) -> None:
    assert toy_taxonomy.name == "toy"
    assert set(toy_taxonomy.concepts) >= {"python", "sql", "ms_excel", "r_language"}
    python = toy_taxonomy.concepts["python"]
    assert python.competences == ("digcomp:3.4", "ecf:B.1")
    assert python.proficiency == "specialist"
    assert "Питон" in python.labels_in("ru")
    r_labels = {lab.text: lab.ambiguous for lab in toy_taxonomy.concepts["r_language"].labels}
    assert r_labels["R"] is True and r_labels["R programming"] is False
    assert toy_taxonomy.area_of("digcomp:3.4").label == "Digital content creation"


def test_load_version_is_stable_and_changes_with_content(toy_taxonomy_dir: Path, tmp_path: Path) -> None:
    first = load_taxonomy(str(toy_taxonomy_dir))
    copy = _copy(toy_taxonomy_dir, tmp_path / "toy")
    assert load_taxonomy(str(copy)).content_hash == first.content_hash
    concepts = copy / "concepts" / "toy.csv"
    concepts.write_text(concepts.read_text(encoding="utf-8").replace("Python 3", "Python3"), encoding="utf-8")
    changed = load_taxonomy(str(copy))
    assert changed.content_hash != first.content_hash
    assert changed.version.startswith("toy@") and len(changed.version) == len("toy@") + 12


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "sql,SQL,digcomp:1.3|ecf:B.1",
            "python,SQL,digcomp:1.3|ecf:B.1",
            r"concepts/toy.csv.*\(python\): duplicate concept id",
        ),
        (
            "email,e-mail,digcomp:2.1",
            "email,e-mail,digcomp:9.9",
            r"concepts/toy.csv line 6 \(email\): unknown competence 'digcomp:9.9'",
        ),
        ("email,e-mail,digcomp:2.1", "email,e-mail,digcomp:2", r"line 6 \(email\): 'digcomp:2' is an area"),
        ("email,e-mail,digcomp:2.1", "email,,digcomp:2.1", r"line 6 \(email\): empty label_en"),
        (
            "sql,SQL,digcomp:1.3|ecf:B.1,advanced",
            "sql,SQL,digcomp:1.3|ecf:B.1,guru",
            r"line 3 \(sql\): proficiency must be one of",
        ),
        ("structured query language", "Python 3", r"label 'Python 3' is also a label of 'python'"),
        ("email,e-mail,digcomp:2.1", "Bad Id,e-mail,digcomp:2.1", r"line 6 \(Bad Id\): invalid concept id 'Bad Id'"),
    ],
)
def test_load_validation_errors_name_file_line_and_entry(
    toy_taxonomy_dir: Path, tmp_path: Path, old: str, new: str, expected: str
) -> None:
    copy = _copy(toy_taxonomy_dir, tmp_path / "toy")
    concepts = copy / "concepts" / "toy.csv"
    text = concepts.read_text(encoding="utf-8")
    assert old in text
    concepts.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TaxonomyError, match=expected):
        load_taxonomy(str(copy))


def test_load_missing_column_and_missing_path(toy_taxonomy_dir: Path, tmp_path: Path) -> None:
    copy = _copy(toy_taxonomy_dir, tmp_path / "toy")
    comp = copy / "competences.csv"
    comp.write_text(comp.read_text(encoding="utf-8").replace("framework,kind", "fw,kind", 1), encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"competences.csv line 1: missing column\(s\) framework"):
        load_taxonomy(str(copy))
    with pytest.raises(TaxonomyError, match=r"\[T001\] Taxonomy '.*nowhere' not found"):
        load_taxonomy(str(tmp_path / "nowhere"))


def test_load_competence_with_unknown_area(toy_taxonomy_dir: Path, tmp_path: Path) -> None:
    copy = _copy(toy_taxonomy_dir, tmp_path / "toy")
    comp = copy / "competences.csv"
    comp.write_text(
        comp.read_text(encoding="utf-8").replace(
            "digcomp:3.4,digcomp,competence,digcomp:3", "digcomp:3.4,digcomp,competence,digcomp:7"
        ),
        encoding="utf-8",
    )
    with pytest.raises(TaxonomyError, match=r"\(digcomp:3.4\): area 'digcomp:7' is not an area"):
        load_taxonomy(str(copy))


def test_load_concepts_csv_merges_over_builtin(tmp_path: Path) -> None:
    extra = tmp_path / "coalition.csv"
    extra.write_text(
        "id,label_en,competences,labels_ru\n"
        "prozorro_bidding,Prozorro bidding,digcomp:2.3,участие в тендерах Prozorro\n",
        encoding="utf-8",
    )
    merged = load_taxonomy(str(extra))
    builtin = load_taxonomy("builtin")
    assert "prozorro_bidding" in merged.concepts
    assert len(merged.concepts) == len(builtin.concepts) + 1
    assert merged.version.startswith("builtin+coalition@")


def test_load_builtin_has_digcomp_and_vocabulary() -> None:
    tax = load_taxonomy("builtin")
    digcomp = [c for c in tax.competences.values() if c.framework == "digcomp"]
    assert sum(c.kind == "area" for c in digcomp) == 5
    assert sorted(c.code for c in digcomp if c.kind == "competence")[:3] == ["1.1", "1.2", "1.3"]
    assert sum(c.kind == "competence" for c in digcomp) == 21
    assert len(tax.concepts) >= 150
    assert all(c.competences for c in tax.concepts.values())
    assert (BUILTIN_DIR / "competences.csv").is_file()
