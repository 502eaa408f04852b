"""Text cleaning: HTML to text, whitespace, personal data, language, fingerprints.

All functions are pure and work on one string at a time.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import numpy as np
import phonenumbers
from selectolax.lexbor import LexborHTMLParser

EMAIL_PLACEHOLDER = "[EMAIL_REMOVED]"
PHONE_PLACEHOLDER = "[PHONE_REMOVED]"
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "ru", "uk", "ro", "ka", "be")
# Languages the detector may answer besides ours, so that a French or Polish ad is
# not forced into one of ours.
DETECTABLE_LANGUAGES: tuple[str, ...] = SUPPORTED_LANGUAGES + ("fr", "de", "pl", "es", "it", "tr", "az", "hy", "kk")
PHONE_REGIONS: tuple[str, ...] = ("BY", "UA", "GE", "MD")
# Language detection reads the text's first characters only: its cost is linear in them. 300 gave the same
# languages as 400 on the 1,536 real rekrute ads, the bundled sample and 4,000 generated ads (250 did not).
LANGUAGE_PREFIX_CHARS = 300

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?\s*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_BLOCK_TAGS = "p,li,br,div,h1,h2,h3,h4,h5,h6,tr,ul,ol,section,article,header,footer,table,blockquote,pre,hr"
# Control and invisible format characters (zero-width, bidi marks, BOM, soft hyphen),
# lone surrogates; \t and \n are kept for the white-space rules below.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}(?![\w-])")
# A loose phone-like run: optional + or (, then digits with spaces, dots, dashes and
# brackets. Possessive, so that long runs of digits cost linear time.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])[+(\d][\d\s().\-]{6,}+")
_MAX_PHONE_CHARS = 32
_WORD = re.compile(r"\w+", re.UNICODE)


def looks_like_html(text: str) -> bool:
    """Tell whether `text` carries HTML tags or entities.

    >>> looks_like_html("<p>Excel</p>"), looks_like_html("C++ < Java")
    (True, False)
    """
    return bool(_TAG.search(text))


def html_to_text(html: str) -> str:
    """Turn an HTML fragment into plain text with one line per block element.

    Scripts and styles are dropped, entities decoded.

    >>> html_to_text("<p>Знание&nbsp;<b>Excel</b></p><ul><li>SQL</li><li>1С</li></ul>")
    'Знание Excel\\nSQL\\n1С'
    """
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "noscript", "template", "iframe", "object"])
    for node in tree.css(_BLOCK_TAGS):
        node.insert_after("\n")
    root = tree.body if tree.body is not None else tree.root
    return normalise_whitespace(root.text(separator="") if root is not None else "")


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep single line breaks, drop control characters.

    >>> normalise_whitespace("  Excel,\\t Word \\n\\n\\n SQL ")
    'Excel, Word\\nSQL'
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    text = text.replace("\u00a0", " ")
    text = _SPACES.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def clean_text(raw: str) -> str:
    """HTML or plain text in, normalised plain text out."""
    return html_to_text(raw) if looks_like_html(raw) else normalise_whitespace(raw)


def scrub_personal_data(text: str, region: str | None = None) -> tuple[str, int]:
    """Replace e-mail addresses and phone numbers with placeholders.

    Phone-like runs of digits are found with a loose pattern and kept as phone numbers
    only when Google's libphonenumber says they are valid numbers, in international
    form or in the national format of Belarus, Ukraine, Georgia or Moldova (the
    posting's country first). Versions, years and salaries stay.

    Returns:
        The scrubbed text and the number of replacements.

    >>> scrub_personal_data("CV: hr@firma.md, tel. +373 69 123 456, 2500-3000 MDL")
    ('CV: [EMAIL_REMOVED], tel. [PHONE_REMOVED], 2500-3000 MDL', 2)
    """
    text, n_email = _EMAIL.subn(EMAIL_PLACEHOLDER, text)
    regions = (region,) + PHONE_REGIONS if region in PHONE_REGIONS else PHONE_REGIONS
    n_phone = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal n_phone
        run = match.group(0)
        candidate = run.rstrip(" ().-\t\n")
        after = match.string[match.end() : match.end() + 1]
        if (
            len(candidate) <= _MAX_PHONE_CHARS
            and not (after.isalnum() and candidate == run)
            and _is_phone_number(candidate, regions)
        ):
            n_phone += 1
            return PHONE_PLACEHOLDER + run[len(candidate) :]
        return run

    text = _PHONE_CANDIDATE.sub(replace, text)
    return text, n_email + n_phone


def _is_phone_number(candidate: str, regions: tuple[str, ...]) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < 7 or digits > 15:
        return False
    if not candidate.startswith("+"):
        # National formats start with the trunk prefix (0, or 8 in Belarus), except
        # Georgian mobiles (9 digits from 5): this keeps salaries and years out.
        first = candidate.lstrip("( ")[:1]
        if not (first in ("0", "8") or (first == "5" and digits == 9)):
            return False
    for reg in regions:
        try:
            number = phonenumbers.parse(candidate, reg)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
        if candidate.lstrip().startswith("+"):
            return False
    return False


_WALK_CACHE_MAX = 50_000  # (DFA state, word) entries, ~300 bytes each; cleared when full: memory stays bounded


def _walk(ident, text: bytes, cache: dict[tuple[int, bytes], tuple[int, tuple[int, ...]]]):  # type: ignore[no-untyped-def]
    """py3langid's DFA walk over `text`, memoised per (state, space-ended word): the same features in the same order.

    py3langid counts byte n-gram features by walking a DFA one byte at a time in
    Python, which is most of language detection's cost. The walk from a given state
    over given bytes always ends in the same state with the same outputs, and ads
    repeat words, so each (state, word) is walked once and then looked up.
    """
    from collections import Counter

    nextmove, rowbase, output = ident.tk_nextmove, ident._rowbase, ident.tk_output
    state, features = 0, []
    parts = text.split(b" ")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        chunk = part + b" " if i < last else part
        hit = cache.get((state, chunk))
        if hit is None:
            start, found = state, []
            for letter in chunk:
                state = nextmove[rowbase[state] + letter]
                f = output[state]
                if f >= 0:
                    found.append(f)
            if len(cache) >= _WALK_CACHE_MAX:
                cache.clear()
            cache[(start, chunk)] = (state, tuple(found))
            features.extend(found)
        else:
            state = hit[0]
            features.extend(hit[1])
    return Counter(features) if features else None


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    """py3langid's model, loaded once, restricted to DETECTABLE_LANGUAGES, with a memoised DFA walk."""
    from py3langid.langid import MODEL_FILE, RAW_FLOOR, LanguageIdentifier

    class Identifier(LanguageIdentifier):
        __slots__ = ("_cache",)

        def _raw_score(self, text):  # type: ignore[no-untyped-def]  # py3langid 0.4's _raw_score, memoised walk
            visits = _walk(self, text, self._cache)
            if visits:
                return self._sparse_score(visits, self.nb_ptc)
            return np.full(len(self.nb_classes), 0.0 if self._norm_probs else RAW_FLOOR, dtype=np.float32)

    ident = Identifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident._cache = {}
    ident.set_languages(list(DETECTABLE_LANGUAGES))
    return ident


# The letters of the Georgian block (U+10A0-U+10FF), as str.isalpha sees them.
_GEORGIAN = re.compile("[" + "".join(chr(c) for c in range(0x10A0, 0x1100) if chr(c).isalpha()) + "]")


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code of the text's language (offline, py3langid), from its first 300 characters.

    Georgian script is decided by script alone; very short or empty text gives "und".

    >>> detect_language("Знання SQL та досвід роботи з Excel обов'язкові")
    'uk'
    """
    sample = text[:LANGUAGE_PREFIX_CHARS]
    letters = sum(map(str.isalpha, sample))
    if letters < 3:
        return "und"
    georgian = len(_GEORGIAN.findall(sample))
    if georgian / letters > 0.3:
        return "ka"
    lang, _ = _identifier().classify(sample)
    return str(lang)


def fingerprint(text: str) -> str:
    """A hash of the text's words, lower-cased: equal for exact duplicates.

    >>> fingerprint("Excel,  Word!") == fingerprint("excel word")
    True
    """
    words = _WORD.findall(text.casefold())
    return hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()


def shingles(text: str, size: int = 3) -> set[str]:
    """Word `size`-grams of the lower-cased text (single words for short texts)."""
    words = _WORD.findall(text.casefold())
    if len(words) < size:
        return set(words)
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}
