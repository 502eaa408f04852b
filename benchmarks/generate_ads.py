"""Generate N realistic job ads for benchmarks from the bundled sample's distributions.

Each generated ad takes its language, title, employer, place, length (± 3 lines), HTML
form and structure from one sample ad (the model ad): half of its lines are the model's own
lines, in order, the others lines of sample ads of the same language and kind of work (ISCO
group of the title), all of them varied so that the vocabulary grows with N as in real
text (Heaps' law) instead
of repeating the sample's few thousand words:

- lines are recombined at the phrase level (the head of one line, the tail of another);
- about a third of the other words (P_WORD) are replaced, mostly by a pseudo-word in the ad's
  script (made of the language's syllables and word endings) drawn from an unbounded
  Zipf-like lexicon (rank r with probability ∝ r^-ZIPF beyond ZIPF_SCALE), else by a word of
  the language's sample vocabulary, keeping the word's casing and punctuation; calibrated so
  that English ads have as many distinct words per 20k and 100k words as the real ads of
  ../shared/data (rekrute requirement lines, SkillSpan sentences): ≈3.6k and ≈10k;
- numbers (salaries, years, experience, phone-like runs) get new digits;
- employers get new names (the legal form stays); bullets, line ends and casing vary;
- about 3 % of the ads repeat an earlier ad, exactly or with one line changed, as boards do.

Words of skill labels (the builtin taxonomy's labels, in every language) are never
replaced, so that skills are mentioned about as often as in the sample. Deterministic for
a given seed; streams its output (1M ads take a few minutes and little memory).

    python benchmarks/generate_ads.py 100000 ads-100k.jsonl [--seed 7]
    python benchmarks/generate_ads.py 20000 ads-20k.jsonl --stats   # vocabulary and tokenizer speed vs real text
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import deque
from datetime import date, timedelta
from pathlib import Path

from extractors.occupations import classify_occupation
from extractors.text import looks_like_html
from flows.records import Posting, to_posting
from flows.sources import load_sources, read_records

ZIPF = 1.4  # exponent of the pseudo-word lexicon's tail: distinct words grow about as N^(1 / ZIPF)
ZIPF_SCALE = 300.0  # ranks below about this many are about as frequent as each other (the lexicon's head)
P_WORD = 0.35  # share of replaceable words replaced
P_PSEUDO = 0.8  # of those, the share replaced by a pseudo-word (else a word of the sample vocabulary)
P_SPLICE = 0.35  # share of lines made of the head of one sample line and the tail of another
P_REPEAT = 0.03  # share of ads that repeat an earlier one (half exact, half with one line changed)
P_OWN = 0.5  # share of an ad's lines that are (varied) lines of its model ad, in its order; else borrowed
MIN_POOL_LINES = 60  # fewer lines of a language and kind of work than this: borrow from the whole language
HTML_SHARE = 0.25  # about a quarter of the sample's bodies are HTML
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"^([^\w]*)([^\W\d_]{3,})([^\w]*)$")
_DIGITS = re.compile(r"\d")
_VOWELS = set("aeiouyăâîаеёиоуыэюяіїєўაეიოუ")
_LEGAL = {"ооо", "оао", "зао", "ао", "пао", "уп", "чуп", "тов", "пп", "фоп", "srl", "s.r.l.", "sa", "s.a.", "ip", "llc",
          "ltd", "inc", "gmbh", "შპს", "სს", "ип", "ооо«", "тов«"}
_GROUPS = {"1": "office", "2": "office", "3": "office", "4": "clerical"}  # ISCO major groups; the rest: "other"
BULLETS = ("- ", "• ", "* ", "— ", "– ", "")


def sample_ads() -> list[dict]:
    ads = []
    for source in load_sources(None):
        for raw in read_records(source):
            posting = to_posting(raw.record, source.name) if raw.record is not None else None
            if isinstance(posting, Posting):
                occupation = classify_occupation(posting.title, posting.text, posting.language).code or "0"
                ads.append(dict(raw.record) | {"_lang": posting.language, "_lines": posting.text.split("\n"),
                                               "_html": looks_like_html(str(raw.record.get("description", ""))),
                                               "_group": _GROUPS.get(occupation[:1], "other")})
    return ads


def skill_words() -> set[str]:
    """Lower-cased words (and 5-letter stems) of every skill label of the builtin taxonomy: never replaced."""
    from taxonomy.load import load_taxonomy

    words: set[str] = set()
    for concept in load_taxonomy("builtin").concepts.values():
        for label in concept.labels:
            for word in re.findall(r"\w+", label.text.casefold()):
                words.add(word)
                if len(word) >= 5:
                    words.add(word[:5])
    return words


class Lexicon:
    """One language's material: its sample lines (as tokens), its vocabulary and its syllables."""

    def __init__(self, lines: list[str], protected: set[str]) -> None:
        self.lines = [line.split(" ") for line in lines if line.strip()]
        self.vocab = [w for line in self.lines for w in line if _WORD.match(w) and not self._protected(w, protected)]
        self.protected = protected
        syllables: set[str] = set()
        for word in self.vocab:
            core = _WORD.match(word).group(2).lower()  # type: ignore[union-attr]
            syllables.update(s for s in re.findall(r"[^\W\d_]*?[" + "".join(_VOWELS) + r"]+", core) if s)
        self.syllables = sorted(syllables) or ["ka", "lo", "mi"]
        endings = [_WORD.match(w).group(2).lower()[-2:] for w in self.vocab]  # type: ignore[union-attr]
        self.endings = sorted(set(endings)) or [""]
        self._kinds: dict[str, int] = {}

    @staticmethod
    def _protected(word: str, protected: set[str]) -> bool:
        core = word.strip("().,;:!?«»\"'").casefold()
        return core in protected or core[:5] in protected

    def kind(self, token: str) -> int:
        """0: keep as is; 1: a replaceable word; 2: a number to vary."""
        kind = self._kinds.get(token)
        if kind is None:
            if _DIGITS.search(token):
                kind = 2 if not self._protected(token, self.protected) else 0
            elif _WORD.match(token) and not self._protected(token, self.protected):
                kind = 1
            else:
                kind = 0
            if len(self._kinds) < 500_000:
                self._kinds[token] = kind
        return kind

    def pseudo(self, rank: int) -> str:
        """The pseudo-word of `rank` in this language: 2-4 of its syllables and one of its word endings."""
        h = (rank * 2654435761 + 97) % 4294967296
        syl, n = self.syllables, len(self.syllables)
        parts = [syl[h % n], syl[(h // n) % n]]
        if rank > 50:
            parts.append(syl[(h // (n * n) + rank) % n])
        if rank > 5000:
            parts.append(syl[(rank * 40503) % n])
        return "".join(parts) + self.endings[(h >> 7) % len(self.endings)]


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ads = sample_ads()
        protected = skill_words()
        by_lang: dict[str, list[str]] = {}
        by_group: dict[tuple[str, str], list[str]] = {}
        for ad in self.ads:
            lines = [line for line in ad["_lines"] if line]
            by_lang.setdefault(ad["_lang"], []).extend(lines)
            by_group.setdefault((ad["_lang"], ad["_group"]), []).extend(lines)
        self.lex = {lang: Lexicon(lines, protected) for lang, lines in by_lang.items()}
        # Lines borrowed from other ads come from ads of the same language and kind of work (so that a
        # grape picker's ad does not ask for Linux), or of the language when there are too few of them.
        self.pools = {key: [line.split(" ") for line in lines] if len(lines) >= MIN_POOL_LINES
                      else self.lex[key[0]].lines for key, lines in by_group.items()}
        self.recent: deque[dict] = deque(maxlen=2_000)

    def rank(self) -> int:
        """A pseudo-word's rank: a Pareto II (Lomax) draw, so that p(r) falls as r^-ZIPF beyond ZIPF_SCALE."""
        return int(ZIPF_SCALE * (self.rng.random() ** (-1.0 / (ZIPF - 1.0)) - 1.0))

    def word(self, lex: Lexicon, token: str) -> str:
        m = _WORD.match(token)
        assert m is not None
        rng = self.rng
        if rng.random() < P_PSEUDO:
            new = lex.pseudo(self.rank())
        else:
            new = _WORD.match(rng.choice(lex.vocab)).group(2).lower()  # type: ignore[union-attr]
        return m.group(1) + _cased(new, m.group(2)) + m.group(3)

    def number(self, token: str) -> str:
        rng = self.rng
        out, first = [], True
        for ch in token:
            if ch.isdigit():
                out.append(str(rng.randrange(1 if first else 0, 10)))
                first = False
            else:
                out.append(ch)
                first = first or not ch.isdigit() and ch not in ".,"
        return "".join(out)

    def line(self, lex: Lexicon, tokens: list[str] | None = None, pool: list[list[str]] | None = None) -> str:
        """A varied line: `tokens` (a line of the model ad) or a line of `pool` (default: the language's)."""
        rng = self.rng
        pool = pool or lex.lines
        tokens = tokens or rng.choice(pool)
        if rng.random() < P_SPLICE and len(tokens) > 3:
            other = rng.choice(pool)
            if len(other) > 3:
                tokens = tokens[: rng.randrange(2, len(tokens))] + other[rng.randrange(1, len(other) - 1):]
        out = []
        kinds, kind_of, random_ = lex._kinds, lex.kind, rng.random
        for token in tokens:
            kind = kinds.get(token)
            if kind is None:
                kind = kind_of(token)
            if kind == 1 and random_() < P_WORD:
                token = self.word(lex, token)
            elif kind == 2 and random_() < 0.8:
                token = self.number(token)
            out.append(token)
        text = " ".join(out)
        r = rng.random()
        if r < 0.25 and text[:2] in ("- ", "• ", "* ", "— ", "– "):
            text = rng.choice(BULLETS) + text[2:]
        elif r < 0.30:
            text = text[:1].lower() + text[1:]
        elif r < 0.32:
            text = text.upper()
        if rng.random() < 0.2 and text and text[-1] in ".;,":
            text = text[:-1] + rng.choice((".", ";", "", ",", "!"))
        return text

    def employer(self, lex: Lexicon, name: str | None) -> str | None:
        if not name or self.rng.random() < 0.1:
            return name
        words = name.split()
        legal = [w for w in words if w.casefold().strip("«»\"'.,") in _LEGAL]
        rng = self.rng
        made = _cased(lex.pseudo(self.rank() + rng.randrange(3)), "X")
        if rng.random() < 0.3:
            made += " " + _cased(lex.pseudo(rng.randrange(1, 2_000)), "X")
        quoted = "«" in name
        made = f"«{made}»" if quoted else made
        return " ".join([*legal, made]) if legal and name.split()[0] in legal else " ".join([made, *legal])

    def ad(self, i: int) -> dict:
        rng = self.rng
        if self.recent and rng.random() < P_REPEAT:
            record = dict(rng.choice(self.recent))
            if rng.random() < 0.5:  # near duplicate: one line changed
                parts = record["description"].split("\n")
                parts[rng.randrange(len(parts))] = self.line(self.lex[record.pop("_lang")])
                record["description"] = "\n".join(parts)
            record.pop("_lang", None)
            record["id"] = f"gen-{i:07d}"
            return record
        base = rng.choice(self.ads)
        lang = base["_lang"]
        lex = self.lex[lang]
        pool = self.pools[(lang, base["_group"])]
        own = [line.split(" ") for line in base["_lines"] if line]
        n = max(3, len(own) + rng.randint(-3, 3))
        picks = sorted(rng.sample(range(len(own)), n) if n <= len(own) else
                       [*range(len(own)), *(rng.randrange(len(own)) for _ in range(n - len(own)))])
        body = [self.line(lex, own[k] if rng.random() < P_OWN else None, pool) for k in picks]
        if base["_html"] if rng.random() < 0.9 else rng.random() < HTML_SHARE:
            style = rng.random()
            if style < 0.5:
                description = "".join(f"<p>{line}</p>" for line in body)
            elif style < 0.8:
                description = f"<p>{body[0]}</p><ul>" + "".join(f"<li>{line}</li>" for line in body[1:]) + "</ul>"
            else:
                description = "<br>".join(body)
        else:
            description = "\n".join(body)
        record = {k: v for k, v in base.items() if not k.startswith("_")}
        title = record.get("title")
        if isinstance(title, str) and title.count(" ") >= 2:
            record["title"] = " ".join(
                self.word(lex, t) if lex.kind(t) == 1 and rng.random() < P_WORD / 2 else t for t in title.split(" "))
        record |= {"id": f"gen-{i:07d}", "description": description,
                   "employer": self.employer(lex, record.get("employer")),
                   "posted_at": (date(2026, 1, 1) + timedelta(days=rng.randrange(365))).isoformat()}
        if "<" not in description:
            self.recent.append(record | {"_lang": lang})
        return record


def generate(n: int, out: Path, seed: int = 7) -> int:
    """Write `n` ads to `out` (JSON Lines); the number of words of their bodies."""
    gen = Generator(seed)
    words = 0
    with out.open("w", encoding="utf-8") as fh:
        batch: list[str] = []
        for i in range(n):
            record = gen.ad(i)
            body = record["description"]
            words += len((_TAG.sub(" ", body) if "<" in body else body).split())
            batch.append(json.dumps(record, ensure_ascii=False))
            if len(batch) >= 1_000:
                fh.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            fh.write("\n".join(batch) + "\n")
    return words


# --- statistics: generated text against the sample and real ads (--stats) -------------------------------

REAL = Path(__file__).resolve().parents[2] / "shared" / "data"
STATS_WORDS = 100_000  # vocabulary is counted over the first this many words of each text
STATS_ADS = 3_000  # ads of a generated file whose skills are extracted


def _generated(path: Path, limit: int) -> list[tuple[str, str]]:
    """(language, text) of the first `limit` ads of a generated file, normalised as ingest does."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            posting = to_posting(json.loads(line), "gen")
            if isinstance(posting, Posting):
                out.append((posting.language, posting.text))
            if len(out) >= limit:
                break
    return out


def _real_texts() -> dict[str, list[tuple[str, str]]]:
    """Real English ad text: rekrute requirement lines (one ad each) and SkillSpan sentences (10 to an ad)."""
    real: dict[str, list[tuple[str, str]]] = {}
    rekrute = REAL / "jobads" / "rekrute-2021" / "rekrut_31_07_21_translated.json"
    if rekrute.exists():
        ads = json.loads(rekrute.read_text(encoding="utf-8")).values()
        real["rekrute (real, en)"] = [("en", "\n".join(ad.get("skills_text") or [])) for ad in ads
                                      if ad.get("skills_text")]
    sentences: list[str] = []
    for conll in sorted((REAL / "benchmarks" / "skillspan").glob("*.conll")):
        words: list[str] = []
        for row in conll.read_text(encoding="utf-8").splitlines():
            if row.strip():
                words.append(row.split("\t")[0])
            elif words:
                sentences.append(" ".join(words))
                words = []
    if sentences:
        real["SkillSpan (real, en)"] = [("en", "\n".join(sentences[i : i + 10])) for i in range(0, len(sentences), 10)]
    return real


def text_stats(texts: list[tuple[str, str]]) -> dict[str, float]:
    """Tokens; distinct tokens among the first 20k and 100k; the bare tokenizer's tokens per CPU-second over all.

    Each call builds fresh blank tokenizers, so that no text profits from another's cache.
    """
    import time

    import spacy

    from extractors.nlp import spacy_lang

    by_lang: dict[str, list[str]] = {}
    for lang, text in texts:
        by_lang.setdefault(spacy_lang(lang), []).append(text)
    nlps = {lang: spacy.blank(lang) for lang in by_lang}
    tokens, cpu = 0, 0.0
    for lang, group in by_lang.items():
        nlps[lang].tokenizer("warm up")
        t0 = time.process_time()
        docs = list(nlps[lang].tokenizer.pipe(group, batch_size=256))
        cpu += time.process_time() - t0
        tokens += sum(len(doc) for doc in docs)
    seen: set[str] = set()
    distinct: dict[int, float] = {}
    counted = 0
    for lang, text in texts:  # in the ads' order, all languages together
        for token in nlps[spacy_lang(lang)].tokenizer(text):
            seen.add(token.text)
            counted += 1
            if counted in (20_000, STATS_WORDS):
                distinct[counted] = len(seen)
        if counted >= STATS_WORDS:
            break
    return {"ads": len(texts), "tokens": tokens, "distinct_20k": distinct.get(20_000, float("nan")),
            "distinct_100k": distinct.get(STATS_WORDS, float("nan")), "tokens_per_s": tokens / cpu if cpu else 0.0}


def skill_stats(texts: list[tuple[str, str]]) -> dict[str, float]:
    """Skill mentions the extractor finds: per ad, and the share of ads with at least one."""
    from extractors.nlp import mention_frame

    frame = mention_frame([(str(i), text, lang) for i, (lang, text) in enumerate(texts)], "builtin", 256,
                          ["posting_id", "concept_id"])
    per_ad = frame.groupby("posting_id").size()
    return {"mentions_per_ad": len(frame) / max(1, len(texts)), "with_skill": len(per_ad) / max(1, len(texts))}


def print_stats(files: list[Path]) -> None:
    """A Markdown table: the sample, each generated file (all, and English only) and real English ads."""
    sample = [(ad["_lang"], "\n".join(ad["_lines"])) for ad in sample_ads()]
    rows: list[tuple[str, list[tuple[str, str]]]] = [("bundled sample", sample),
                                                     ("bundled sample, en", [t for t in sample if t[0] == "en"])]
    for path in files:
        texts = _generated(path, 20_000)
        rows += [(path.name, texts), (f"{path.name}, en", [t for t in texts if t[0] == "en"])]
    rows += list(_real_texts().items())
    print("| text | ads | tokens | distinct in first 20k tokens | in first 100k | bare tokenizer tokens/CPU-s "
          "| skill mentions per ad | ads with a skill |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, texts in rows:
        st = text_stats(texts)
        sk = skill_stats(texts[:STATS_ADS])
        print(f"| {name} | {st['ads']:,} | {st['tokens']:,} | {st['distinct_20k']:,.0f} | {st['distinct_100k']:,.0f} | "
              f"{st['tokens_per_s']:,.0f} | {sk['mentions_per_ad']:.2f} | {sk['with_skill']:.0%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of ads")
    parser.add_argument("out", type=Path, help="JSON Lines file to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stats", action="store_true",
                        help="then compare the ads with the sample and real text: vocabulary growth, bare tokenizer "
                             "words/s, skill mentions per ad (needs spaCy; about a minute)")
    parser.add_argument("--compare", type=Path, nargs="*", default=[], metavar="JSONL",
                        help="with --stats: other generated files to compare too")
    args = parser.parse_args()
    if args.n < 0:
        parser.error("n must be 0 or more")
    words = generate(args.n, args.out, args.seed)
    print(f"wrote {args.n} ads, {words} words, to {args.out}")
    if args.stats:
        print_stats([args.out, *args.compare])


if __name__ == "__main__":
    main()
