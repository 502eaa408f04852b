"""The shared lemma tries give simplemma's own lemmas, are cached once and survive a bad cache."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pytest
import simplemma
from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

from extractors import lemmas
from extractors.classifier import sample_ad_texts
from extractors.spacy_components import _LEMMA_LANGS


@lru_cache(maxsize=1)
def _words_by_language() -> dict[str, list[str]]:
    """Lower-cased words of the bundled sample ads, and a seeded draw from each dictionary
    (with made-up inflections, so the rules and affix strategies run too)."""
    out: dict[str, set[str]] = {}
    for text, lang in sample_ad_texts():
        out.setdefault(lang, set()).update(w.lower() for w in text.split() if w.isalpha())
    rng = random.Random(7)
    factory = DefaultDictionaryFactory()
    for lang in ("en", "ru", "uk", "ro", "ka"):
        drawn = rng.sample(sorted(factory.get_dictionary(lang)), 1500)
        out.setdefault(lang, set()).update(w.lower() for w in drawn)
        out[lang].update(w.lower() + "ами" for w in drawn[:200])
        out[lang].update(w.lower()[:-1] for w in drawn[:200] if len(w) > 4)
    return {lang: sorted(words) for lang, words in out.items()}


@pytest.mark.parametrize("lang", ["en", "ru", "uk", "ro", "ka", "be"])
def test_same_lemmas_as_simplemma_dictionaries(lang: str) -> None:
    words = _words_by_language()
    langs = _LEMMA_LANGS[lang]
    sample = sorted({w for code in langs for w in words.get(code, [])} | set(words.get(lang, [])))
    assert len(sample) > 1000
    ours = [lemmas.lemmatize(w, langs) for w in sample]
    theirs = [simplemma.lemmatize(w, lang=langs) for w in sample]
    assert ours == theirs
    assert sum(a != w for a, w in zip(ours, sample, strict=True)) > 100  # most words are not their own lemma


def test_tries_are_written_once_and_mapped(tmp_path: Path) -> None:
    factory = lemmas.MappedTrieFactory(disk_cache_dir=str(tmp_path))
    first = factory.get_dictionary("en")
    path = tmp_path / "en.dic"
    assert path.is_file() and path.stat().st_size > 100_000
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed
    stamp = path.stat().st_mtime_ns
    again = lemmas.MappedTrieFactory(disk_cache_dir=str(tmp_path)).get_dictionary("en")
    assert path.stat().st_mtime_ns == stamp  # opened, not rebuilt
    assert again.get("databases") == first.get("databases") == "database"
    assert len(again) == len(first) > 100_000


def test_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "en.dic").write_bytes(b"not a trie")
    mapping = lemmas.MappedTrieFactory(disk_cache_dir=str(tmp_path)).get_dictionary("en")
    assert mapping.get("databases") == "database"
    assert (tmp_path / "en.dic").stat().st_size > 100_000


def test_unwritable_cache_keeps_the_trie_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    mapping = lemmas.MappedTrieFactory(disk_cache_dir=str(blocked / "sub")).get_dictionary("en")
    assert mapping.get("databases") == "database"


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lemmas.CACHE_ENV, str(tmp_path))
    assert lemmas.cache_dir().parent == tmp_path / "lemmas"
    assert lemmas.cache_dir().name.startswith("simplemma-")
