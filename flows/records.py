"""Raw source records to postings: field mapping, cleaning, dates, places, ids.

Pure functions, no Prefect. A record is either a `Posting` or a `Rejection` with a
reason that names the field; nothing is dropped silently. Every posting field must be
text (or a number, for the non-text fields), except that `description` may be a list
of strings, which is joined with newlines (JOINED_FIELDS).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from extractors.places import resolve_place
from extractors.text import clean_text, detect_language, fingerprint, scrub_personal_data

FIELDS = ("id", "title", "description", "employer", "city", "region", "country", "posted_at", "url", "language")
_DMY = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")
_LANG = re.compile(r"^[a-z]{2,3}$")
MIN_TEXT_CHARS = 20
# No real ad is longer; bigger values are broken exports or attacks, and parsing them costs.
MAX_FIELD_CHARS = 10_000
MAX_CHARS = {"description": 200_000}
_UNDECODED = re.compile("[\ud800-\udfff]")  # bytes that were not UTF-8 (surrogateescape)


@dataclass(frozen=True)
class Posting:
    posting_id: str
    source: str
    source_id: str | None
    url: str | None
    title: str | None
    employer: str | None
    text: str
    language: str
    country: str | None
    region: str | None
    city: str | None
    posted_date: date
    content_hash: str
    pii_removed: int

    @property
    def month(self) -> str:
        return self.posted_date.strftime("%Y-%m")


@dataclass(frozen=True)
class Rejection:
    reason: str


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path from nested mappings and lists.

    >>> get_path({"a": {"b": [{"c": 1}]}}, "a.b.0.c")
    1
    """
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def map_fields(record: Mapping[str, Any], mapping: Mapping[str, str] | None = None,
               defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Project a source record onto the posting fields, using `mapping` where given."""
    mapping = mapping or {}
    out = {name: get_path(record, mapping.get(name, name)) for name in FIELDS}
    for name, value in (defaults or {}).items():
        if out.get(name) in (None, ""):
            out[name] = value
    return out


JOINED_FIELDS = ("description",)  # a list of strings here is joined, one item per line


def _text(fields: dict[str, Any], name: str) -> str | None | Rejection:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, list) and name in JOINED_FIELDS:
        # Boards often give the text as a list of lines (requirements, bullet points):
        # the lines are joined with newlines, which clean_text keeps as line breaks.
        # Only lists of strings (or nulls, dropped); a list holding anything else is
        # rejected like any other non-text value. Lists in other fields (a title, a
        # city) stay rejected: there is no one right way to join them.
        bad = [type(item).__name__ for item in value if item is not None and not isinstance(item, str)]
        if bad:
            return Rejection(f"field '{name}' must be text or a list of texts, got a list holding {bad[0]}")
        value = "\n".join(item for item in value if item is not None)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return Rejection(f"field '{name}' must be text, got {type(value).__name__}")
    if name in ("title", "description", "employer") and not isinstance(value, str):
        return Rejection(f"field '{name}' must be text, got {type(value).__name__}")
    try:
        text = str(value).strip()
    except ValueError:  # an integer of thousands of digits
        return Rejection(f"field '{name}' holds a number too large to be an id or a text")
    limit = MAX_CHARS.get(name, MAX_FIELD_CHARS)
    if len(text) > limit:
        return Rejection(f"field '{name}' has {len(text):,} characters (at most {limit:,})")
    if _UNDECODED.search(text):
        return Rejection(f"field '{name}' is not valid UTF-8 (undecodable bytes or unpaired surrogates)")
    return text or None


def parse_date(value: str) -> date | None:
    """Parse an ISO date or date-time, or dd.mm.yyyy / dd/mm/yyyy; None if invalid.

    Years outside 1990-2100 are invalid: no job ad was posted then.

    >>> parse_date("2026-09-03T10:15:00+03:00"), parse_date("14.08.2026"), parse_date("31/02/2026")
    (datetime.date(2026, 9, 3), datetime.date(2026, 8, 14), None)
    """
    parsed = _parse_date(value.strip())
    return parsed if parsed is not None and 1990 <= parsed.year <= 2100 else None


def _parse_date(value: str) -> date | None:
    try:
        if len(value) == 10 and value[4] == "-":
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    match = _DMY.match(value)
    if match:
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            return None
    return None


def stable_id(source: str, source_id: str | None, content_hash: str) -> str:
    """A posting id that stays the same across runs: from the source's own id if any."""
    key = f"{source}\x1f{source_id}" if source_id else f"{source}\x1f#{content_hash}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def to_posting(record: Any, source: str, mapping: Mapping[str, str] | None = None,
               defaults: Mapping[str, Any] | None = None) -> Posting | Rejection:
    """Turn one raw record into a posting, or say why it cannot be one."""
    if not isinstance(record, Mapping):
        return Rejection(f"record must be an object, got {type(record).__name__}")
    fields = map_fields(record, mapping, defaults)
    values: dict[str, str | None] = {}
    for name in FIELDS:
        value = _text(fields, name)
        if isinstance(value, Rejection):
            return value
        values[name] = value
    raw_text = values["description"]
    if not raw_text:
        return Rejection("field 'description' is empty: an ad needs a text")
    text = clean_text(raw_text)
    if not text:
        return Rejection("field 'description' is empty once HTML and white space are removed")
    if len(text) < MIN_TEXT_CHARS:
        return Rejection(f"field 'description' has {len(text)} characters of text after cleaning "
                         f"(minimum {MIN_TEXT_CHARS})")
    if not values["posted_at"]:
        return Rejection("field 'posted_at' is missing")
    posted = parse_date(values["posted_at"])
    if posted is None:
        return Rejection(f"field 'posted_at' is not a valid date: {values['posted_at']!r}")
    place = resolve_place(values["city"], values["region"], values["country"])
    text, n_pii = scrub_personal_data(text, place.country)
    title = clean_text(values["title"]) if values["title"] else None
    lang = (values["language"] or "").lower()
    if not _LANG.match(lang):
        lang = detect_language(f"{title or ''}\n{text}")
    content_hash = fingerprint(f"{title or ''}\n{text}")
    return Posting(
        posting_id=stable_id(source, values["id"], content_hash),
        source=source,
        source_id=values["id"],
        url=values["url"],
        title=title,
        employer=" ".join(values["employer"].split()) if values["employer"] else None,
        text=text,
        language=lang,
        country=place.country,
        region=place.region,
        city=place.city,
        posted_date=posted,
        content_hash=content_hash,
        pii_removed=n_pii,
    )


Normalised = tuple[Posting | Rejection, bytes | None]


def normalise_batch(records: list[Any], source: str, mapping: Mapping[str, str] | None = None,
                    defaults: Mapping[str, Any] | None = None) -> list[Normalised | None]:
    """`to_posting` of each record, with the posting's dedupe sketch (ingest's unit of work).

    The unit of work of an ingest worker process: it needs no Prefect, no spaCy and no
    lemmatiser, only this module and flows.dedupe, so a worker starts in about a second.
    A posting's sketch is `flows.dedupe.sketch(title, text)` as NUM_PERM little-endian
    uint32 bytes (None for a rejection). None in `records` (a record that could not be
    read) gives None.
    """
    from flows.dedupe import sketch

    out: list[Normalised | None] = []
    for record in records:
        if record is None:
            out.append(None)
            continue
        result = to_posting(record, source, mapping, defaults)
        signature = sketch(result.title, result.text).astype("<u4").tobytes() if isinstance(result, Posting) else None
        out.append((result, signature))
    return out
