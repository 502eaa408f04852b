from __future__ import annotations

import pytest

from extractors.places import Place, country_code, resolve_place


@pytest.mark.parametrize(
    ("city", "country", "expected"),
    [
        ("Минск", None, Place("BY", "BY-HM", "Minsk")),
        ("Мінск", "Беларусь", Place("BY", "BY-HM", "Minsk")),
        ("Minsk", "BY", Place("BY", "BY-HM", "Minsk")),
        ("Київ", None, Place("UA", "UA-30", "Kyiv")),
        ("Киев", "Украина", Place("UA", "UA-30", "Kyiv")),
        ("Kyiv", "Ukraine", Place("UA", "UA-30", "Kyiv")),
        ("თბილისი", None, Place("GE", "GE-TB", "Tbilisi")),
        ("Tbilisi", "Georgia", Place("GE", "GE-TB", "Tbilisi")),
        ("Chișinău", "Republica Moldova", Place("MD", "MD-CU", "Chișinău")),
        ("Chişinău", "MD", Place("MD", "MD-CU", "Chișinău")),
        ("Кишинёв", None, Place("MD", "MD-CU", "Chișinău")),
        (" г. Минск ", None, Place("BY", "BY-HM", "Minsk")),
        ("Batumi", None, Place("GE", "GE-AJ", "Batumi")),
        ("Someville", "UA", Place("UA", None, "Someville")),
    ],
)
def test_places_resolve_local_spellings(city: str, country: str | None, expected: Place) -> None:
    assert resolve_place(city, None, country) == expected


def test_places_country_codes_and_unknowns() -> None:
    assert country_code("Україна") == "UA"
    assert country_code("moldova") == "MD"
    assert country_code("GEO") == "GE"
    assert country_code("Atlantis") is None
    assert country_code("") is None


def test_places_explicit_region_code_is_kept_when_valid() -> None:
    assert resolve_place(None, "UA-46", "UA") == Place("UA", "UA-46", None)
    assert resolve_place(None, "XX-99", "UA") == Place("UA", None, None)
