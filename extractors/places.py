"""Places: country names and codes to ISO 3166-1, cities to ISO 3166-2 regions.

ISO codes and English names come from pycountry; local spellings (Минск, Київ,
თბილისი, Chișinău) from the gazetteer in extractors/data/, which a data engineer can
extend without touching code.
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
    ('минск', 'chisinau')
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
    region_code = _region_code(region, code)
    if city_name:
        matches = _cities().get(_key(city_name), [])
        if code:
            matches = [m for m in matches if m[1] == code]
        if matches:
            canonical, m_country, m_region = matches[0]
            return Place(code or m_country, region_code or m_region, canonical)
    return Place(code, region_code, city_name)


def _region_code(region: str | None, country: str | None) -> str | None:
    if not region or not region.strip():
        return None
    code = region.strip().upper()
    sub = pycountry.subdivisions.get(code=code)
    if sub is not None and (country is None or code.startswith(country + "-")):
        return code
    return None
