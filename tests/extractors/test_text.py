from __future__ import annotations

import pytest

from extractors.text import (
    EMAIL_PLACEHOLDER,
    PHONE_PLACEHOLDER,
    clean_text,
    detect_language,
    fingerprint,
    html_to_text,
    looks_like_html,
    normalise_whitespace,
    scrub_personal_data,
)


def test_text_html_to_text_keeps_blocks_drops_scripts() -> None:
    html = (
        "<div><p>Вимоги:&nbsp;<b>SQL</b> &amp; Excel</p><script>alert('x')</script>"
        "<ul><li>1С</li><li>BAS</li></ul>Далі<br>кінець</div>"
    )
    assert html_to_text(html) == "Вимоги: SQL & Excel\n1С\nBAS\nДалі\nкінець"


def test_text_clean_text_leaves_plain_text_with_angle_brackets() -> None:
    assert not looks_like_html("salary < 2000 and > 1000")
    assert clean_text("  salary < 2000\r\n\r\n and > 1000 ") == "salary < 2000\nand > 1000"


def test_text_normalise_whitespace_drops_control_characters() -> None:
    assert normalise_whitespace("Excel\u0000\u200b,\tWord\u00a0 ") == "Excel, Word"


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("Звоните: +375 29 123-45-67, Анна", "BY"),
        ("Звоните: 8 (029) 123-45-67, Анна", "BY"),
        ("Телефонуйте: +380 67 123 45 67, Анна", "UA"),
        ("Телефонуйте: 067 123 45 67, Анна", "UA"),
        ("დარეკეთ: +995 599 12 34 56, ანა", "GE"),
        ("Sunați: +373 69 123 456, Ana", "MD"),
        ("Sunați: 069 123 456, Ana", "MD"),
    ],
)
def test_text_scrub_phone_numbers_per_country(text: str, country: str) -> None:
    scrubbed, n = scrub_personal_data(text, country)
    assert n == 1
    assert PHONE_PLACEHOLDER in scrubbed
    assert not any(ch.isdigit() for ch in scrubbed), scrubbed
    assert scrubbed.endswith("Анна") or scrubbed.endswith("ანა") or scrubbed.endswith("Ana")


def test_text_scrub_emails_and_keeps_versions_and_years() -> None:
    text = "CV to hr.team+jobs@firma.md. Python 3.12, since 2015, salary 2500-3000 USD."
    scrubbed, n = scrub_personal_data(text, "MD")
    assert n == 1
    assert scrubbed == f"CV to {EMAIL_PLACEHOLDER}. Python 3.12, since 2015, salary 2500-3000 USD."


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("We are looking for a data analyst with strong SQL skills and experience with dashboards.", "en"),
        ("Мы ищем аналитика данных с уверенным знанием SQL и опытом построения отчётов.", "ru"),
        ("Шукаємо аналітика даних із впевненим знанням SQL та досвідом побудови звітів.", "uk"),
        ("Căutăm un analist de date cu cunoștințe solide de SQL și experiență în rapoarte.", "ro"),
        ("ვეძებთ მონაცემთა ანალიტიკოსს SQL-ის ცოდნით და ანგარიშების მომზადების გამოცდილებით.", "ka"),
        ("Шукаем аналітыка дадзеных з упэўненым веданнем SQL і досведам падрыхтоўкі справаздач.", "be"),
    ],
)
def test_text_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_text_detect_language_on_empty_text() -> None:
    assert detect_language(" 123 ") == "und"


def test_text_fingerprint_ignores_case_and_punctuation_only() -> None:
    assert fingerprint("Excel, Word!") == fingerprint("  excel word")
    assert fingerprint("Excel Word") != fingerprint("Excel Word SQL")


def _plain_py3langid(text: str, prefix: int | None = None) -> str:
    """detect_language as it was: py3langid's own classify, letters counted one by one."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from extractors.text import DETECTABLE_LANGUAGES, LANGUAGE_PREFIX_CHARS

    ident = _plain_py3langid.__dict__.get("ident")
    if ident is None:
        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        ident.set_languages(list(DETECTABLE_LANGUAGES))
        _plain_py3langid.__dict__["ident"] = ident
    sample = text[: prefix or LANGUAGE_PREFIX_CHARS]
    letters = [ch for ch in sample if ch.isalpha()]
    if len(letters) < 3:
        return "und"
    if sum(1 for ch in letters if "\u10a0" <= ch <= "\u10ff") / len(letters) > 0.3:
        return "ka"
    return str(ident.classify(sample)[0])


def test_text_detect_language_equals_plain_py3langid_and_its_cache_stays_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The memoised DFA walk gives py3langid's own scores, bit for bit, whatever the cache holds."""
    import numpy as np

    from extractors import text
    from flows.sources import load_sources, read_records

    texts = [clean_text(str(raw.record.get("description") or "")) for source in load_sources(None)
             for raw in read_records(source) if isinstance(raw.record, dict)]
    texts += ["", "ab", "ႠႡႢ abc", "Ⴧ Ⴭ ႻႻ x", "  many   spaces  ", "x" * 500, "ЁЛКА ДЛЯ ВСЕХ", " leading", "end ",
              "Excel  Word", "mixed ქართული and русский текст", "\x00\x01 binary \udfff?", "日本語のテキスト"]
    assert len(texts) > 50
    monkeypatch.setattr(text, "_WALK_CACHE_MAX", 500)  # cleared many times over
    ident = text._identifier()
    for t in texts + texts:  # the second time from the cache
        assert detect_language(t) == _plain_py3langid(t), t[:80]
        plain = _plain_py3langid.__dict__["ident"]
        sample = t[: text.LANGUAGE_PREFIX_CHARS]
        assert np.array_equal(ident._decide(sample), plain._decide(sample))
        assert len(ident._cache) <= 500
    assert {detect_language(t) for t in texts} >= {"en", "ru", "uk", "ro", "ka"}


def test_text_detect_language_on_a_prefix_gives_the_languages_of_400_characters(shared_dir) -> None:  # type: ignore[no-untyped-def]
    """Detecting on the first LANGUAGE_PREFIX_CHARS characters (300) changes no language found on the first 400:
    the bundled sample and the 1,536 real rekrute ads (French titles, English requirement lines)."""
    import json

    from flows.sources import load_sources, read_records

    texts = [f"{raw.record.get('title') or ''}\n{clean_text(str(raw.record.get('description') or ''))}"
             for source in load_sources(None) for raw in read_records(source) if isinstance(raw.record, dict)]
    rekrute = shared_dir / "data" / "jobads" / "rekrute-2021" / "rekrut_31_07_21_translated.json"
    ads = json.loads(rekrute.read_text(encoding="utf-8")).values()
    texts += [f"{ad['title']}\n" + "\n".join(ad.get("skills_text") or []) for ad in ads]
    assert len(texts) > 1_700 and sum(len(t) > 400 for t in texts) > 1_000
    found = [detect_language(t) for t in texts]
    assert found == [_plain_py3langid(t, 400) for t in texts]
    assert found.count("en") > 1_400 and {"ru", "uk", "ro", "ka", "be"} <= set(found)
