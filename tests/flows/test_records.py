from __future__ import annotations

from datetime import date

import pytest

from flows.records import Posting, Rejection, get_path, map_fields, parse_date, stable_id, to_posting

GOOD = {
    "id": "42", "title": " Бухгалтер ", "description": "<p>Знання 1С та Excel обов'язкове. Пишіть на hr@firma.ua</p>",
    "employer": "  ТОВ  «Агро-Світ» ", "city": "Київ", "region": "", "country": "Україна",
    "posted_at": "2026-08-14", "url": "https://jobs.example.org/42",
}


def test_records_to_posting_normalises_every_field() -> None:
    posting = to_posting(GOOD, "board")
    assert isinstance(posting, Posting)
    assert posting.text == "Знання 1С та Excel обов'язкове. Пишіть на [EMAIL_REMOVED]"
    assert posting.pii_removed == 1
    assert (posting.country, posting.region, posting.city) == ("UA", "UA-30", "Kyiv")
    assert posting.employer == "ТОВ «Агро-Світ»"
    assert posting.title == "Бухгалтер"
    assert posting.language == "uk"
    assert posting.posted_date == date(2026, 8, 14) and posting.month == "2026-08"
    assert posting.posting_id == stable_id("board", "42", "") == to_posting(GOOD, "board").posting_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"description": ""}, "field 'description' is empty"),
        ({"description": None, "title": None}, "field 'description' is empty"),
        ({"description": 12345}, "field 'description' must be text, got int"),
        ({"title": ["a", "b"]}, "field 'title' must be text, got list"),
        ({"posted_at": "31/02/2026"}, "field 'posted_at' is not a valid date: '31/02/2026'"),
        ({"posted_at": "вчера"}, "field 'posted_at' is not a valid date: 'вчера'"),
        ({"posted_at": None}, "field 'posted_at' is missing"),
        ({"description": "<p> </p>"}, "field 'description' is empty"),
        ({"description": "<p>short</p>"}, "has 5 characters of text after cleaning"),
        ({"city": {"name": "Kyiv"}}, "field 'city' must be text, got dict"),
    ],
)
def test_records_rejections_name_the_field(change: dict, reason: str) -> None:
    result = to_posting(GOOD | change, "board")
    assert isinstance(result, Rejection)
    assert reason in result.reason


def test_records_rejects_non_objects() -> None:
    assert to_posting(["not", "an", "object"], "board") == Rejection("record must be an object, got list")


def test_records_language_field_wins_over_detection() -> None:
    posting = to_posting(GOOD | {"language": "RU"}, "board")
    assert isinstance(posting, Posting) and posting.language == "ru"


def test_records_unknown_country_is_kept_unplaced() -> None:
    posting = to_posting(GOOD | {"country": "Atlantis", "city": "Atlantis City"}, "board")
    assert isinstance(posting, Posting)
    assert (posting.country, posting.region, posting.city) == (None, None, "Atlantis City")


def test_records_mapping_reads_nested_paths() -> None:
    record = {"job": {"name": "Dev", "body": {"html": "<p>Python and SQL every day, Docker.</p>"}},
              "published": "2026-09-03T10:15:00+03:00"}
    fields = map_fields(record, {"title": "job.name", "description": "job.body.html", "posted_at": "published"},
                        {"country": "MD"})
    assert fields["title"] == "Dev" and fields["country"] == "MD"
    assert get_path(record, "job.missing.deeper") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-14", date(2026, 8, 14)),
        ("2026-09-03T10:15:00+03:00", date(2026, 9, 3)),
        ("2026-09-03T23:15:00Z", date(2026, 9, 3)),
        ("14.08.2026", date(2026, 8, 14)),
        ("31/07/2021", date(2021, 7, 31)),
        ("2026-13-45", None),
        ("yesterday", None),
    ],
)
def test_records_parse_date(value: str, expected: date | None) -> None:
    assert parse_date(value) == expected


def test_records_description_list_of_lines_is_joined() -> None:
    lines = ["Requirements:", "Excellent command of Excel and SQL;", None, "Experience with Power BI."]
    posting = to_posting(GOOD | {"description": lines}, "board")
    assert isinstance(posting, Posting)
    assert posting.text == "Requirements:\nExcellent command of Excel and SQL;\nExperience with Power BI."
    empty = Rejection("field 'description' is empty: an ad needs a text")
    assert to_posting(GOOD | {"description": []}, "board") == empty
    bad = to_posting(GOOD | {"description": ["ok", {"html": "x"}]}, "board")
    assert bad == Rejection("field 'description' must be text or a list of texts, got a list holding dict")
    assert isinstance(to_posting(GOOD | {"employer": ["a", "b"]}, "board"), Rejection)  # only the description
