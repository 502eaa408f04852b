"""Places: country names and codes to ISO 3166-1, cities and region names to ISO 3166-2 regions.

ISO codes and English names come from pycountry; local spellings come from CSV files in
extractors/data/, which a data engineer can extend without touching code:

- countries.csv — country names in our languages (Україна, საქართველო, Republica Moldova);
- gazetteer.csv — cities (Минск, Київ, თბილისი, Chișinău) with their country and region;
- regions.csv — regions (oblasts, raions, municipalities, Georgian mkhare) of BY, UA, GE
  and MD in local spellings (Львівська обл., Брестская область, raionul Cahul, აჭარა).

Region names are matched on their words once the generic word is set aside: "обл.",
"область", "oblast", "region", "вобласць", "მხარე" mean an oblast/region; "raionul",
"район", "р-н", "district" a raion; "mun.", "municipiul", "г.", "city" a city, which
adds nothing. So "Львівська обл." finds the row written "Львівська область", and
"raionul Cahul" the one written "Cahul District"; "Kyiv Oblast" (UA-32) and "Kyiv"
(the city, UA-30) stay apart.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pycountry

DATA_DIR = Path(__file__).parent / "data"
_PREFIX = re.compile(r"^(г\.|м\.|mun\.|or\.|city of|місто|город)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Place:
    country: str | None
    region: str | None
    city: str | None


def _key(name: str) -> str:
    """Fold a place name for lookup: case, accents (ș/ş), surrounding noise.

    >>> _key(" г. Минск "), _key("Chişinău")
    ('минск', 'chisinău')
    """
    name = _PREFIX.sub("", name.strip())
    name = unicodedata.normalize("NFKD", name.casefold())
    name = "".join(ch for ch in name if not unicodedata.combining(ch) or ch in "\u0306\u0308")
    name = unicodedata.normalize("NFC", name)
    return " ".join(name.replace("ё", "е").split())


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    table: dict[str, str] = {}
    for country in pycountry.countries:
        for name in (country.name, getattr(country, "common_name", None), getattr(country, "official_name", None)):
            if name:
                table[_key(name)] = country.alpha_2
        table[_key(country.alpha_2)] = country.alpha_2
        table[_key(country.alpha_3)] = country.alpha_2
    with (DATA_DIR / "countries.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for variant in row["variants"].split("|"):
                table[_key(variant)] = row["country"]
    return table


_REGION_WORDS = {
    # an oblast / region / voblasts / mkhare
    **dict.fromkeys(["обл", "область", "области", "oblast", "oblast'", "obl", "region", "регион", "регіон", "voblasc",
                     "voblast", "voblasts", "вобласць", "вобл", "მხარე", "რეგიონი", "regiunea"], "<obl>"),
    # a raion / district
    **dict.fromkeys(["raion", "raionul", "r-nul", "район", "р-н", "раён", "district", "districtul", "rayon"],
                    "<raion>"),
    # city or autonomy words: they add nothing to the name
    **dict.fromkeys(["mun", "municipiul", "municipality", "city", "г", "м", "город", "місто", "горад", "мун",
                     "autonomous", "republic", "of", "автономная", "автономна", "республика", "республіка", "ар",
                     "ავტონომიური", "რესპუბლიკა", "uta", "unitatea", "teritoriala", "autonoma", "ато"], ""),
}


def _region_key(name: str) -> str:
    """Fold a region name: its own words, then the kind of region when the name says it.

    >>> _region_key("Львівська обл."), _region_key("raionul Cahul"), _region_key("mun. Chișinău")
    ('львівська <obl>', 'cahul <raion>', 'chisinău')
    """
    words, kind = [], ""
    for word in _key(name).replace(",", " ").split():
        marker = _REGION_WORDS.get(word.rstrip("."))
        if marker is None:
            words.append(word)
        elif marker:
            kind = marker
    return " ".join(words) + (f" {kind}" if kind and words else "")


REGION_COUNTRIES = ("BY", "UA", "GE", "MD")


@lru_cache(maxsize=1)
def _regions() -> dict[str, list[str]]:
    """Folded region name → ISO 3166-2 codes (from regions.csv and pycountry's names for our countries)."""
    table: dict[str, list[str]] = {}

    def add(name: str, code: str) -> None:
        codes = table.setdefault(_region_key(name), [])
        if code not in codes:
            codes.append(code)

    with (DATA_DIR / "regions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for variant in (row["name"], *row["variants"].split("|")):
                if variant.strip():
                    add(variant, row["region"])
    for country in REGION_COUNTRIES:
        for sub in pycountry.subdivisions.get(country_code=country) or ():
            add(sub.name, sub.code)
    return table


def region_code(name: str | None, country: str | None = None) -> str | None:
    """ISO 3166-2 code of a region given as a code or a name in a local spelling; None if unknown.

    >>> region_code("Львівська обл."), region_code("raionul Cahul"), region_code("UA-46", "MD")
    ('UA-46', 'MD-CA', None)
    """
    if not name or not name.strip():
        return None
    code = name.strip().upper()
    if re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", code):
        sub = pycountry.subdivisions.get(code=code)
        return code if sub is not None and (country is None or code.startswith(country + "-")) else None
    key = _region_key(name)
    base = key.rsplit(" <", 1)[0]
    tried = [key] + ([base] if base != key else [f"{key} <obl>", f"{key} <raion>"])
    for candidate in tried:
        codes = [c for c in _regions().get(candidate, []) if country is None or c.startswith(country + "-")]
        if codes:
            return codes[0]
    return None


@lru_cache(maxsize=1)
def _cities() -> dict[str, list[tuple[str, str, str]]]:
    table: dict[str, list[tuple[str, str, str]]] = {}
    with (DATA_DIR / "gazetteer.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            entry = (row["city"], row["country"], row["region"])
            for variant in {row["city"], *row["variants"].split("|")}:
                table.setdefault(_key(variant), []).append(entry)
    return table


def country_code(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country code or name in any of our languages.

    >>> country_code("Україна"), country_code("md"), country_code("Atlantis")
    ('UA', 'MD', None)
    """
    if not value or not value.strip():
        return None
    return _countries().get(_key(value))


def resolve_place(city: str | None, region: str | None, country: str | None) -> Place:
    """Normalise a posting's place fields.

    The country comes from the country field, else from the city; the region is an
    ISO 3166-2 code (given directly or found through the city); the city gets its
    canonical spelling when the gazetteer knows it and is kept as written otherwise.

    >>> resolve_place("Мінск", None, "Беларусь")
    Place(country='BY', region='BY-HM', city='Minsk')
    """
    code = country_code(country)
    city_name = " ".join(city.split()) if city and city.strip() else None
    region = region_code(region, code)
    if code is None and region:
        code = region.split("-")[0]
    if city_name:
        for candidate in _city_candidates(city_name):
            matches = _cities().get(_key(candidate), [])
            if code:
                matches = [m for m in matches if m[1] == code]
            if region:
                matches = sorted(matches, key=lambda m: m[2] != region)  # the city in the given region first
            if matches:
                canonical, m_country, m_region = matches[0]
                return Place(code or m_country, region or m_region, canonical)
        if region is None and "," in city_name:  # "Стрий, Львівська обл.": the region is in the city field
            for part in city_name.split(",")[1:]:
                found = region_code(part, code)
                if found:
                    return Place(code or found.split("-")[0], found, _city_candidates(city_name)[-1])
    return Place(code, region, city_name)


def _city_candidates(city: str) -> list[str]:
    """The city as written, then its first part when it reads "City, Region" or "City (Region)"."""
    head = re.split(r"[,(]", city, maxsplit=1)[0].strip()
    return [city] if not head or head == city else [city, head]
