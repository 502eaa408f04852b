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
