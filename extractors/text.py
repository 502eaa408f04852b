"""Text cleaning: HTML to text, whitespace, personal data, language, fingerprints.

All functions are pure and work on one string at a time.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import phonenumbers
from selectolax.lexbor import LexborHTMLParser

EMAIL_PLACEHOLDER = "[EMAIL_REMOVED]"
PHONE_PLACEHOLDER = "[PHONE_REMOVED]"
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "ru", "uk", "ro", "ka", "be")
# Languages the detector may answer besides ours, so that a French or Polish ad is
# not forced into one of ours.
DETECTABLE_LANGUAGES: tuple[str, ...] = SUPPORTED_LANGUAGES + ("fr", "de", "pl", "es", "it", "tr", "az", "hy", "kk")
PHONE_REGIONS: tuple[str, ...] = ("BY", "UA", "GE", "MD")

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?\s*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_BLOCK_TAGS = "p,li,br,div,h1,h2,h3,h4,h5,h6,tr,ul,ol,section,article,header,footer,table,blockquote,pre,hr"
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}(?![\w-])")
_DIGITS = re.compile(r"\d")
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
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C" or ch == "\t")
    text = text.replace("\u00a0", " ")
    text = _SPACES.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def clean_text(raw: str) -> str:
    """HTML or plain text in, normalised plain text out."""
    return html_to_text(raw) if looks_like_html(raw) else normalise_whitespace(raw)


def scrub_personal_data(text: str, region: str | None = None) -> tuple[str, int]:
    """Replace e-mail addresses and phone numbers with placeholders.

    Phone numbers are found with Google's libphonenumber in international form and in
    the national formats of Belarus, Ukraine, Georgia and Moldova.

    Returns:
        The scrubbed text and the number of replacements.

    >>> scrub_personal_data("CV: hr@firma.md, tel. +373 69 123 456")
    ('CV: [EMAIL_REMOVED], tel. [PHONE_REMOVED]', 2)
    """
    text, n_email = _EMAIL.subn(EMAIL_PLACEHOLDER, text)
    if len(_DIGITS.findall(text)) < 7:
        return text, n_email
    regions = (region,) + PHONE_REGIONS if region in PHONE_REGIONS else PHONE_REGIONS
    spans: list[tuple[int, int]] = []
    for reg in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, reg, leniency=phonenumbers.Leniency.VALID):
            spans.append((match.start, match.end))
    if not spans:
        return text, n_email
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(PHONE_PLACEHOLDER)
        last = end
    out.append(text[last:])
    return "".join(out), n_email + len(merged)


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(DETECTABLE_LANGUAGES))
    return ident


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code of the text's language (offline, py3langid).

    Georgian script is decided by script alone; very short or empty text gives "und".

    >>> detect_language("Знання SQL та досвід роботи з Excel обов'язкові")
    'uk'
    """
    sample = text[:2000]
    letters = [ch for ch in sample if ch.isalpha()]
    if len(letters) < 3:
        return "und"
    georgian = sum(1 for ch in letters if "\u10a0" <= ch <= "\u10ff")
    if georgian / len(letters) > 0.3:
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
