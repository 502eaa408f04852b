"""Lemmas for every part of skillpulse, from simplemma's dictionaries stored as MARISA tries.

simplemma loads each language's dictionary as a Python ``dict`` of bytes: about 320 MiB
for en/ru/uk/ro/ka in *every* process that lemmatises (the command's process for the
occupation rules, each ingest worker, the extract forkserver), and a worker forked from
the forkserver copies the pages of every entry it looks up (reading an entry writes its
reference count). The same dictionaries as MARISA tries (``marisa-trie``, the backend of
simplemma's own ``TrieDictionaryFactory``) take about 25 MiB for those languages, are
built once per machine and simplemma version into the cache folder, and are opened with
``mmap``: every process shares the same page-cache pages, and nothing is ever copied.

The lemmas are simplemma's (same strategies, same dictionaries; only the storage
differs; tests/extractors/test_lemmas.py compares them word by word). A lookup costs
about 1 µs instead of 0.3 µs; callers cache lemmas per distinct word.

The cache folder is ``$SKILLPULSE_CACHE_DIR/lemmas/simplemma-<version>`` or, without that
variable, the user cache folder (``platformdirs``). When it cannot be written, tries are
built in memory (the same lemmas; about 1.5 s for Russian, once per process).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from marisa_trie import HUGE_CACHE, BytesTrie
from simplemma import Lemmatizer
from simplemma.__metadata__ import __version__ as SIMPLEMMA_VERSION
from simplemma.strategies import DefaultStrategy
from simplemma.strategies.dictionaries.trie_dictionary_factory import TrieDictionaryFactory, TrieWrapDict

logger = logging.getLogger(__name__)
CACHE_ENV = "SKILLPULSE_CACHE_DIR"
# distinct (token, languages) pairs whose lemma the shared lemmatiser keeps (simplemma's own LRU);
# small, because every caller keeps its own cache of the words it has seen
LEMMA_CACHE = 8_192


def cache_dir() -> Path:
    """Where the tries are kept: $SKILLPULSE_CACHE_DIR/lemmas/…, else the user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        base = Path(env)
    else:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("skillpulse"))
    return base / "lemmas" / f"simplemma-{SIMPLEMMA_VERSION}"


class MappedTrieFactory(TrieDictionaryFactory):
    """simplemma's trie dictionaries, opened with ``mmap`` and written atomically.

    Several processes may start at once (two ingest workers, the extract forkserver):
    each trie file is written to a temporary name and renamed, so a reader never opens
    half a file.
    """

    def _get_dictionary_uncached(self, lang: str) -> Mapping[str, str]:
        path = self._cache_dir / f"{lang}.dic"
        if path.is_file():
            try:
                trie = BytesTrie(cache_size=HUGE_CACHE)
                trie.mmap(str(path))
                return TrieWrapDict(trie)
            except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
                logger.warning("damaged lemma trie %s: building it again", path)
        trie = self._build_trie(lang)
        try:
            self._write_trie_to_disk(lang, trie)
        except OSError as exc:
            logger.warning("cannot cache lemma trie for %s in %s (%s): kept in memory", lang, self._cache_dir, exc)
            return TrieWrapDict(trie)
        mapped = BytesTrie(cache_size=HUGE_CACHE)
        mapped.mmap(str(path))
        return TrieWrapDict(mapped)

    def _write_trie_to_disk(self, lang: str, trie: BytesTrie) -> None:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{lang}.", suffix=".tmp", dir=self._cache_dir)
        os.close(fd)
        try:
            trie.save(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._cache_dir / f"{lang}.dic")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


@lru_cache(maxsize=1)
def lemmatizer() -> Lemmatizer:
    """The process's lemmatiser: simplemma's default (non-greedy) strategy over the mapped tries."""
    factory = MappedTrieFactory(disk_cache_dir=str(cache_dir()))
    strategy = DefaultStrategy(greedy=False, dictionary_factory=factory)
    return Lemmatizer(cache_max_size=LEMMA_CACHE, lemmatization_strategy=strategy)


def lemmatize(token: str, langs: str | tuple[str, ...]) -> str:
    """``simplemma.lemmatize(token, lang=langs)``, from the shared tries.

    >>> lemmatize("databases", "en")
    'database'
    """
    return lemmatizer().lemmatize(token, langs)
