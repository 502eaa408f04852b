"""ISCO-08 occupation groups for job postings, from a curated multilingual keyword rule base.

    >>> classify_occupation("Менеджер по продажам", language="ru").code
    '33'

The rules live in ``extractors/data/occupation_rules.csv`` (columns ``isco,lang,pattern``; lines
starting with ``#`` are comments) and the ISCO-08 groups in ``extractors/data/isco08.csv``.
See docs/occupations.md for the matching procedure, the conventions and the measured accuracy.

Matching, in short:

* the title is lower-cased and split on non-word characters; every token is lemmatised with
  simplemma (dictionaries chosen by the token's script and the posting's language); a title's
  token set holds both the surface forms and the lemmas;
* pattern tokens are normalised the same way (with the rule's language), so a rule matches when
  each of its tokens (surface or lemma) occurs in the title's token set; word order is ignored;
* all rules of all languages are tried (titles are often in another language than the ad,
  e.g. "Java Developer" in a Romanian posting); among matching rules the winner is chosen by
  1. more pattern tokens (more specific),
  2. a non-generic head ("accountant" beats "manager" / "engineer" / "specialist" ...),
  3. head position: in head-initial languages (ru, uk, be, ro) the rule matched earliest in the
     title, in head-final ones (en, ka) the rule matched latest,
  4. a rule written in the posting's language,
  5. file order;
* if the title matches nothing, the first 300 characters of the text are tried (lower score).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from extractors.lemmas import lemmatize

__all__ = ["Occupation", "Rule", "classify_occupation", "clear_caches", "isco_groups", "load_rules"]

DATA = Path(__file__).resolve().parent / "data"
RULES_PATH = DATA / "occupation_rules.csv"
ISCO_PATH = DATA / "isco08.csv"
TEXT_PREFIX = 300

_WORD = re.compile(r"\w+", re.UNICODE)
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "ʹ": "'"})
_HEAD_FINAL = frozenset({"en", "ka"})
_SIMPLEMMA = ("en", "ru", "uk", "ro", "ka")

# Single words that name a job only loosely: a rule made of one of them loses a tie against a
# rule of the same length made of a more telling word ("QA engineer" -> "qa", not "engineer").
GENERIC = frozenset("""
manager director head chief engineer specialist assistant worker operator consultant analyst
officer administrator technician lead senior junior agent
менеджер директор руководитель начальник управляющий инженер специалист помощник ассистент
работник рабочий сотрудник оператор консультант аналитик администратор техник мастер агент
керівник керуючий інженер фахівець спеціаліст помічник асистент працівник робітник співробітник
аналітик адміністратор технік майстер
manager director șef sef inginer specialist asistent lucrător muncitor operator consultant
analist administrator tehnician agent
მენეჯერი დირექტორი ხელმძღვანელი ინჟინერი სპეციალისტი ასისტენტი მუშა ოპერატორი
კონსულტანტი ანალიტიკოსი ადმინისტრატორი აგენტი
менеджар дырэктар кіраўнік начальнік інжынер спецыяліст памочнік аператар кансультант
аналітык адміністратар рабочы
""".split())


@dataclass(frozen=True)
class Occupation:
    """An ISCO-08 group: ``code`` is a 2-digit sub-major code, a 1-digit major code, or None."""

    code: str | None
    label: str
    score: float
    method: str  # "title-rule" | "text-rule" | "none"


@dataclass(frozen=True)
class Rule:
    isco: str
    lang: str
    pattern: str
    tokens: tuple[frozenset[str], ...]  # per pattern token: its accepted forms (surface, lemma)
    generic: bool
    order: int


NO_OCCUPATION = Occupation(None, "", 0.0, "none")


def _script(token: str) -> str:
    for ch in token:
        if ch.isalpha():
            if "\u10a0" <= ch <= "\u10ff" or "\u1c90" <= ch <= "\u1cbf":
                return "ka"
            if "\u0400" <= ch <= "\u04ff":
                return "cyrl"
            return "latn"
    return "other"


@lru_cache(maxsize=64)
def _langs(script: str, language: str) -> tuple[str, ...]:
    """simplemma dictionaries for a token of ``script`` in a posting in ``language``."""
    if script == "ka":
        return ("ka",)
    if script == "cyrl":
        if language in ("ru", "uk"):
            return (language,)
        return ("ru", "uk")  # be (no simplemma dictionary) and Cyrillic words in other ads
    if script == "latn":
        return ("ro", "en") if language == "ro" else ("en",)
    return ()


@lru_cache(maxsize=200_000)
def _lemma(token: str, language: str) -> str:
    langs = _langs(_script(token), language)
    if not langs or len(token) < 3:
        return token
    try:
        return lemmatize(token, langs).lower()
    except ValueError:  # pragma: no cover - unsupported language tuple
        return token


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).translate(_APOSTROPHES).lower().replace("ё", "е")


_TOKEN = re.compile(r"\w+(?:'\w+)*")


def _tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens; apostrophes inside words (Ukrainian кур'єр) are kept."""
    return tuple(t.strip("'") for t in _TOKEN.findall(_normalise(text)))


# Titles and rule patterns repeat, so their tokens are cached; the starts of ad texts do
# not, so they are tokenised afresh (caching them held up to 100,000 texts, ~3 KB each).
_tokens = lru_cache(maxsize=50_000)(_tokenize)


def _token_index(text: str, language: str, cached: bool = True) -> dict[str, int]:
    """Every surface form and lemma of ``text`` mapped to the position of its first occurrence."""
    index: dict[str, int] = {}
    for i, token in enumerate(_tokens(text) if cached else _tokenize(text)):
        index.setdefault(token, i)
        index.setdefault(_lemma(token, language), i)
    return index


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]]:
    """The rules, and an index from every accepted token form to the rules that use it."""
    rules: list[Rule] = []
    with open(path or RULES_PATH, encoding="utf-8", newline="") as handle:
        reader = csv.reader(line for line in handle if not line.startswith("#"))
        header = next(reader)
        if header != ["isco", "lang", "pattern"]:
            raise ValueError(f"unexpected header in occupation rules: {header}")
        for row in reader:
            if not row:
                continue
            isco, lang, pattern = (cell.strip() for cell in row)
            words = _tokens(pattern)
            if not words:
                continue
            forms = tuple(frozenset({w, _lemma(w, lang)}) for w in words)
            rules.append(Rule(isco, lang, pattern, forms, len(words) == 1 and words[0] in GENERIC,
                              len(rules)))
    index: dict[str, list[Rule]] = {}
    for rule in rules:
        for form in rule.tokens[0]:
            index.setdefault(form, []).append(rule)
    return tuple(rules), {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=1)
def isco_groups() -> dict[str, dict[str, str]]:
    """ISCO-08 major and sub-major groups by code: level and label_en/ru/uk/ro."""
    with open(ISCO_PATH, encoding="utf-8", newline="") as handle:
        return {row["code"]: row for row in csv.DictReader(handle)}


def _label(code: str, language: str) -> str:
    row = isco_groups().get(code, {})
    return row.get(f"label_{language}") or row.get("label_en", "")


def _match(text: str, language: str, cached: bool = True) -> Rule | None:
    index = _token_index(text, language, cached)
    if not index:
        return None
    _, by_token = load_rules()
    best: Rule | None = None
    best_key: tuple = ()
    seen: set[int] = set()
    for form in index:
        for rule in by_token.get(form, ()):
            if rule.order in seen:
                continue
            seen.add(rule.order)
            positions = []
            for alternatives in rule.tokens:
                hits = [index[a] for a in alternatives if a in index]
                if not hits:
                    break
                positions.append(min(hits))
            else:
                if rule.lang in _HEAD_FINAL:
                    where = max(positions)
                else:
                    where = -min(positions)
                key = (len(rule.tokens), not rule.generic, where, rule.lang == language, -rule.order)
                if key > best_key:
                    best, best_key = rule, key
    return best


@lru_cache(maxsize=50_000)
def _classify_title(title: str, language: str) -> Rule | None:
    return _match(title, language)


def clear_caches() -> None:
    """Forget the titles, tokens and lemmas seen so far (after an ingest: the memory is of no more use)."""
    for cached in (_classify_title, _tokens, _lemma):
        cached.cache_clear()


def classify_occupation(title: str | None, text: str = "", language: str = "en") -> Occupation:
    """The ISCO-08 group of a posting, from its title, else from the start of its text."""
    language = (language or "en").lower()
    rule = _classify_title(title, language) if title else None
    method = "title-rule"
    if rule is None and text:
        rule = _match(text[:TEXT_PREFIX], language, cached=False)
        method = "text-rule"
    if rule is None:
        return NO_OCCUPATION
    n = len(rule.tokens)
    score = min(0.95, 0.6 + 0.1 * n) if method == "title-rule" else min(0.6, 0.3 + 0.1 * n)
    if rule.generic or len(rule.isco) == 1:
        score -= 0.2
    return Occupation(rule.isco, _label(rule.isco, language), round(score, 2), method)
