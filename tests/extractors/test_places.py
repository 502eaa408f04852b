from __future__ import annotations

import pytest

from extractors.places import Place, country_code, region_code, resolve_place


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


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("Львівська обл.", "UA-46"), ("Львовская область", "UA-46"), ("Lviv Oblast", "UA-46"),
        ("Lvivska oblast", "UA-46"), ("Львівщина", "UA-46"), ("UA-46", "UA-46"),
        ("Київська область", "UA-32"), ("Kyiv Oblast", "UA-32"), ("Київ", "UA-30"), ("м. Київ", "UA-30"),
        ("Одесская обл", "UA-51"), ("Автономна Республіка Крим", "UA-43"),
        ("Брестская обл.", "BY-BR"), ("Брэсцкая вобласць", "BY-BR"), ("Минская область", "BY-MI"),
        ("Minsk Region", "BY-MI"), ("Минск", "BY-HM"), ("Віцебская вобласць", "BY-VI"),
        ("raionul Cahul", "MD-CA"), ("Кагульский район", "MD-CA"), ("Cahul District", "MD-CA"),
        ("mun. Chișinău", "MD-CU"), ("municipiul Chisinau", "MD-CU"), ("mun. Bălți", "MD-BA"),
        ("UTA Găgăuzia", "MD-GA"), ("raionul Hâncești", "MD-HI"),
        ("Adjara", "GE-AJ"), ("აჭარა", "GE-AJ"), ("აჭარის ავტონომიური რესპუბლიკა", "GE-AJ"),
        ("იმერეთი", "GE-IM"), ("იმერეთის მხარე", "GE-IM"), ("Kakheti", "GE-KA"), ("ქვემო ქართლი", "GE-KK"),
        ("Nowhere Oblast", None), ("", None),
    ],
)
def test_places_region_names_in_local_spellings(region: str, expected: str | None) -> None:
    assert region_code(region) == expected


def test_places_every_region_of_our_countries_is_in_regions_csv() -> None:
    import csv

    import pycountry

    from extractors.places import DATA_DIR, REGION_COUNTRIES

    with (DATA_DIR / "regions.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    codes = {row["region"] for row in rows}
    expected = {s.code for c in REGION_COUNTRIES for s in pycountry.subdivisions.get(country_code=c)}
    assert codes == expected
    for row in rows:  # every row is looked up by its own name and variants
        for name in (row["name"], *row["variants"].split("|")):
            assert region_code(name, row["country"]) == row["region"], name


def test_places_region_name_gives_the_country_and_respects_it() -> None:
    assert resolve_place(None, "Львівська обл.", None) == Place("UA", "UA-46", None)
    assert resolve_place("Дрогобич", "Львівська область", "Україна") == Place("UA", "UA-46", "Drohobych")
    assert resolve_place(None, "Брестская обл.", "MD") == Place("MD", None, None)  # a region of another country
    assert resolve_place("Стрий, Львівська обл.", None, None) == Place("UA", "UA-46", "Стрий")


@pytest.mark.parametrize(
    ("city", "expected"),
    [
        ("Кропивницький", Place("UA", "UA-35", "Kropyvnytskyi")), ("Херсон", Place("UA", "UA-65", "Kherson")),
        ("Кривой Рог", Place("UA", "UA-12", "Kryvyi Rih")), ("Маріуполь", Place("UA", "UA-14", "Mariupol")),
        ("Бровари", Place("UA", "UA-32", "Brovary")), ("Луганськ", Place("UA", "UA-09", "Luhansk")),
        ("Салігорск", Place("BY", "BY-MI", "Soligorsk")), ("Полоцк", Place("BY", "BY-VI", "Polotsk")),
        ("Мозырь", Place("BY", "BY-HO", "Mozyr")), ("Ліда", Place("BY", "BY-HR", "Lida")),
        ("ფოთი", Place("GE", "GE-SZ", "Poti")), ("ახალციხე", Place("GE", "GE-SJ", "Akhaltsikhe")),
        ("Озургети", Place("GE", "GE-GU", "Ozurgeti")), ("Kobuleti", Place("GE", "GE-AJ", "Kobuleti")),
        ("Bender", Place("MD", "MD-BD", "Bender")), ("Хынчешты", Place("MD", "MD-HI", "Hîncești")),
        ("Ceadir-Lunga", Place("MD", "MD-GA", "Ceadîr-Lunga")), ("Edinet", Place("MD", "MD-ED", "Edineț")),
        ("Львів (Галицький р-н)", Place("UA", "UA-46", "Lviv")),
    ],
)
def test_places_more_cities(city: str, expected: Place) -> None:
    assert resolve_place(city, None, None) == expected


def test_places_every_region_has_a_city_in_the_gazetteer() -> None:
    """Every oblast, voblasts, mkhare and raion of BY, UA, GE and MD has at least its centre."""
    import pycountry

    from extractors.places import REGION_COUNTRIES, _cities

    known = {region for entries in _cities().values() for _, _, region in entries}
    regions = {s.code for c in REGION_COUNTRIES for s in pycountry.subdivisions.get(country_code=c)}
    assert not regions - known, sorted(regions - known)
