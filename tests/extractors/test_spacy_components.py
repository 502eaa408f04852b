from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from extractors.mentions import doc_mentions, extract_mentions
from extractors.nlp import build_nlp, load_nlp, spacy_lang
from extractors.spacy_components import SCORE_EXACT, SCORE_IN_CONTEXT, SCORE_INFLECTED, SPAN_KEY


def _found(nlp, text: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    doc = nlp(text)
    return [(span.text, span.label_) for span in doc.spans[SPAN_KEY]]


@pytest.fixture(scope="module")
def pipelines(toy_taxonomy_dir: Path) -> dict[str, spacy.language.Language]:
    return {lang: build_nlp(lang, str(toy_taxonomy_dir)) for lang in ("en", "ru", "uk", "ro", "ka", "be")}


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        (
            "ru",
            "Требования: опыт работы с Excel и знание 1С:Предприятие.",
            [("Excel", "ms_excel"), ("1С:Предприятие", "1c_enterprise")],
        ),
        ("ru", "Уверенная работа с электронной почтой", [("электронной почтой", "email")]),
        ("ru", "Опыт в анализе данных", [("анализе данных", "data_analysis")]),
        ("uk", "Знання SQL та навички роботи з Ексель", [("SQL", "sql"), ("Ексель", "ms_excel")]),
        ("uk", "Листування електронною поштою", [("електронною поштою", "email")]),
        ("ro", "Cunoașterea analizei datelor și SQL", [("analizei datelor", "data_analysis"), ("SQL", "sql")]),
        (
            "en",
            "Strong PYTHON 3 and structured query language skills",
            [("PYTHON 3", "python"), ("structured query language", "sql")],
        ),
        (
            "ka",
            "Python-ის ცოდნა და ელექტრონული ფოსტით მუშაობა",
            [("Python", "python"), ("ელექტრონული ფოსტით", "email")],
        ),
        ("be", "Веданне 1С і Excel", [("1С", "1c_enterprise"), ("Excel", "ms_excel")]),
    ],
)
def test_matcher_finds_labels_and_inflected_forms(
    pipelines, lang: str, text: str, expected: list[tuple[str, str]]
) -> None:
    assert _found(pipelines[lang], text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Knowledge of R and statistics.", [("R", "r_language")]),
        ("You will report to R. Smith.", []),
        ("We use R daily.", []),
        ("Word processing, filing, phone calls.", []),
        ("Documents in Word and Excel.", [("Word", "ms_word"), ("Excel", "ms_excel")]),
        ("Prepare documents in Word.", [("Word", "ms_word")]),
        ("You will word the documents well.", []),
    ],
)
def test_matcher_ambiguous_labels_need_context(pipelines, text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(pipelines["en"], text) == expected


def test_matcher_scores_exact_inflected_and_context(pipelines) -> None:
    doc = pipelines["ru"]("Excel и электронной почтой.")
    assert list(doc.spans[SPAN_KEY].attrs["scores"]) == [SCORE_EXACT, SCORE_INFLECTED]
    doc = pipelines["en"]("R for statistics")
    assert list(doc.spans[SPAN_KEY].attrs["scores"]) == [SCORE_IN_CONTEXT]


def test_matcher_prefers_the_longest_match(pipelines) -> None:
    assert _found(pipelines["en"], "Microsoft Excel") == [("Microsoft Excel", "ms_excel")]


def test_line_sentencizer_splits_lists_and_sentences(pipelines) -> None:
    doc = pipelines["en"]("Requirements:\n- SQL\n- Excel. Python too\n\nNice")
    assert [s.text.strip() for s in doc.sents] == ["Requirements:", "- SQL", "- Excel.", "Python too", "Nice"]


def test_mentions_rows_carry_evidence_and_competences(pipelines, toy_taxonomy) -> None:
    doc = pipelines["en"]("About us.\nWe need SQL daily.")
    rows = doc_mentions(doc, "p1", toy_taxonomy)
    assert [(r["competence_id"], r["area_id"], r["framework"]) for r in rows] == [
        ("digcomp:1.3", "digcomp:1", "digcomp"),
        ("ecf:B.1", "ecf:B", "ecf"),
    ]
    row = rows[0]
    assert row["sentence_index"] == 1
    assert row["sentence"] == "We need SQL daily."
    assert doc.text[row["start_char"] : row["end_char"]] == row["surface"] == "SQL"
    assert row["mention_id"] == rows[1]["mention_id"] == f"p1:{row['start_char']}:{row['end_char']}:sql"


def test_extract_mentions_groups_languages(toy_taxonomy, toy_taxonomy_dir: Path) -> None:
    triples = [("a", "Знання SQL", "uk"), ("b", "Nothing digital here at all", "en"), ("c", "Excel-ში მუშაობა", "ka")]
    rows = list(extract_mentions(triples, toy_taxonomy, str(toy_taxonomy_dir)))
    assert {(r["posting_id"], r["concept_id"]) for r in rows} == {("a", "sql"), ("c", "ms_excel")}


def test_nlp_round_trip_to_disk(pipelines, tmp_path: Path) -> None:
    nlp = pipelines["ru"]
    nlp.to_disk(tmp_path / "nlp")
    loaded = load_nlp(tmp_path / "nlp")
    text = "Опыт работы с Excel, 1С:Предприятие и электронной почтой"
    assert _found(loaded, text) == _found(nlp, text)
    assert len(_found(loaded, text)) == 3


def test_nlp_language_mapping() -> None:
    assert [spacy_lang(x) for x in ("en", "ru", "uk", "ro", "ka", "be")] == ["en", "ru", "uk", "ro", "xx", "xx"]


def test_extract_mentions_with_the_esco_taxonomy() -> None:
    from taxonomy.load import load_taxonomy

    spec = "esco:" + str(Path(__file__).resolve().parent.parent / "fixtures" / "esco_mini")
    taxonomy = load_taxonomy(spec)
    rows = list(extract_mentions([("p1", "You will manage staff and write SQL queries.", "en")], taxonomy, spec))
    # matcher rows name a concept; competence-classifier rows (concept_id "competence:…") do not
    by_concept = {taxonomy.concepts[r["concept_id"]].label: r for r in rows if r["method"] == "matcher"}
    assert {"manage staff", "SQL"} <= set(by_concept)
    sql = by_concept["SQL"]
    assert sql["concept_id"].startswith("http://data.europa.eu/esco/skill/") and sql["esco_uri"] == sql["concept_id"]
    assert {r["framework"] for r in rows if r["concept_id"] == sql["concept_id"]} == {"ecf", "esco"}
