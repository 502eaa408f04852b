"""The built-in vocabulary in every supported language: what counts and what does not."""

from __future__ import annotations

import pytest

from extractors.nlp import get_nlp
from extractors.spacy_components import SPAN_KEY
from taxonomy.load import load_taxonomy

CASES = [
    # (language, sentence, concepts that must be found, concepts that must not)
    (
        "ru",
        "Требования: опыт работы с Excel, знание 1С и уверенный пользователь ПК.",
        {"ms_excel", "1c_enterprise", "pc_literacy"},
        set(),
    ),
    ("ru", "Ведение отчётности в таблицах Excel и работа с электронной почтой.", {"ms_excel", "email"}, set()),
    ("ru", "Знание 1С:Бухгалтерия 8.3, работа в СЭД.", {"1c_accounting", "electronic_document_management"}, set()),
    ("ru", "Опыт работы с Python, Django и PostgreSQL от 2 лет.", {"python", "django", "postgresql"}, set()),
    ("ru", "Доступ к складу и офису, гибкий график, дружная команда.", set(), {"ms_access", "ms_office", "ms_teams"}),
    ("uk", "Знання SQL та Power BI обов'язкове.", {"sql", "power_bi"}, set()),
    ("uk", "Навички роботи з Figma та Adobe Photoshop.", {"figma", "adobe_photoshop"}, set()),
    ("uk", "Досвід роботи з BAS, M.E.Doc і Дія.", {"bas", "medoc", "diia"}, set()),
    ("uk", "Впевнений користувач ПК, знання Word та Excel.", {"pc_literacy", "ms_word", "ms_excel"}, set()),
    ("uk", "Робота на складі, фізична витривалість, слово керівника.", set(), {"ms_word"}),
    ("ro", "Cunoștințe Excel și Word la nivel avansat.", {"ms_excel", "ms_word"}, set()),
    ("ro", "Experiență cu SAP și 1C.", {"sap", "1c_enterprise"}, set()),
    ("ro", "Utilizator PC încrezător, poștă electronică.", {"pc_literacy", "email"}, set()),
    ("ro", "Oferim transport și masă gratuită, acces la parcare.", set(), {"ms_access"}),
    ("en", "Experience with Java, Spring Boot and Kubernetes.", {"java", "kubernetes"}, set()),
    ("en", "Strong R and Python skills for statistical modelling.", {"r_language", "python"}, set()),
    ("en", "Go, Rust or C++ for backend services.", {"go_language", "rust", "cpp"}, set()),
    ("en", "We will go to Java island for the team trip.", set(), {"java", "go_language", "ms_teams"}),
    ("en", "You will excel at customer service.", set(), {"ms_excel"}),
    ("en", "Report to R. Smith, head of office.", set(), {"r_language", "ms_office"}),
    ("ka", "Excel-ში მუშაობის გამოცდილება და Python-ის ცოდნა.", {"ms_excel", "python"}, set()),
    ("ka", "კომპიუტერის ცოდნა, MS Office.", {"pc_literacy", "ms_office"}, set()),
    ("ka", "მძღოლი, B კატეგორია, სამუშაო გრაფიკი 5/2.", set(), {"r_language"}),
    ("be", "Веданне 1С і Excel абавязковае.", {"1c_enterprise", "ms_excel"}, set()),
]


@pytest.fixture(scope="module")
def concepts_in():  # type: ignore[no-untyped-def]
    version = load_taxonomy("builtin").version

    def found(lang: str, text: str) -> set[str]:
        doc = get_nlp(lang, "builtin", version)(text)
        return {span.label_ for span in doc.spans[SPAN_KEY]}

    return found


@pytest.mark.parametrize(("lang", "text", "hits", "misses"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_builtin_matching_hits_and_non_hits(
    concepts_in, lang: str, text: str, hits: set[str], misses: set[str]
) -> None:
    found = concepts_in(lang, text)
    assert hits <= found, f"missing {hits - found} in {found}"
    assert not (misses & found), f"should not find {misses & found}"


def test_builtin_vocabulary_size_and_languages() -> None:
    tax = load_taxonomy("builtin")
    assert len(tax.concepts) >= 600
    for lang in ("ru", "uk", "ro"):
        assert sum(1 for c in tax.concepts.values() if c.labels_in(lang)) >= 300, lang
    assert sum(1 for c in tax.concepts.values() if c.labels_in("ka")) >= 100
    ecf = [c for c in tax.competences.values() if c.framework == "ecf" and c.kind == "competence"]
    assert len(ecf) == 41
    assert sum(1 for c in tax.concepts.values() if c.esco_uri) >= 200
    assert all(c.proficiency for c in tax.concepts.values())
