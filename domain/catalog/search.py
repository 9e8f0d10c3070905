"""Chinese search over the catalog: jieba word segmentation, a synonym list, field weights.

Two tokenizers, one vocabulary:
- Writing (imports) cuts item names and keywords with jieba on a trimmed general dictionary
  (words of frequency >= MIN_FREQ, ~66,000) plus the synonym list, and stores the terms with
  the published item (`published_summary["terms"]`). The full jieba dictionary would cost ~80 MB per process.
- Reading builds an inverted index from those stored terms, and cuts queries with a jieba
  tokenizer whose dictionary is exactly the index's vocabulary plus the synonyms: only words
  the index holds can score, and loading it costs a few MB, not a general dictionary.
`cut_for_search` also yields the shorter words inside long ones (公积金 → 公积, 积金), each
query word is expanded with its synonym group (生孩子 → 生育, 出生, 新生儿 …), and an item
scores by the rarest, best-placed words it contains: name above keywords above category and
department. A query the vocabulary cannot cut still matches as a substring of a name.
What counts as a match: one character (婚, 证: short words elderly citizens type) finds every
item whose name holds it, then items whose keywords do. A longer query needs a real match: a
word of two or more characters or its synonym, the whole query in a name, one of its character
pairs in a name, or three quarters of its characters (at least two) in a name; sharing one
common character (驾驶证 and 居住证) is not one. Character postings (which items' names and
keywords hold each character) answer these without scanning every name.
The index lives in each process's memory, so results are the same whichever database holds
the data.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import math
import re
import sys
import threading
import unicodedata
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import chain
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from hanziconv import HanziConv

log = logging.getLogger(__name__)


class _LazyFinalseg(ModuleType):
    """Stands in for `jieba.finalseg` (jieba's HMM for words outside the dictionary) until
    something uses it, then loads it. yiwang always cuts with HMM=False, and importing the real
    module loads its probability tables: 3 MB of resident memory in every worker, for nothing."""

    def __getattr__(self, name: str) -> object:
        with _lazy_lock:
            real = sys.modules.get(self.__name__)
            if real is self or real is None:
                sys.modules.pop(self.__name__, None)
                real = importlib.import_module(self.__name__)
                sys.modules["jieba"].finalseg = real  # type: ignore[attr-defined]
        return getattr(real, name)


_lazy_lock = threading.Lock()


def _import_jieba() -> ModuleType:
    """jieba, without setuptools' pkg_resources and without its HMM tables until used.

    jieba reads its data files through pkg_resources whenever that imports, and plain open()
    otherwise (same files, next to its own modules). Importing pkg_resources scans every
    installed distribution and cost 5.4 MB of resident memory in every worker, for nothing
    else imports it: hide it while jieba loads (only if nobody has loaded it already).
    `jieba.finalseg` is a `_LazyFinalseg` unless it was loaded already.
    """
    hidden = "pkg_resources" not in sys.modules
    if hidden:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # makes the import fail
    lazy = "jieba" not in sys.modules and "jieba.finalseg" not in sys.modules
    if lazy:
        sys.modules["jieba.finalseg"] = _LazyFinalseg("jieba.finalseg")
    try:
        import jieba as module
    except BaseException:
        if lazy:
            sys.modules.pop("jieba.finalseg", None)
        raise
    finally:
        if hidden:
            del sys.modules["pkg_resources"]
    return module


if TYPE_CHECKING:
    import jieba
else:
    jieba = _import_jieba()

MIN_FREQ = 30
MAX_QUERY_CHARS = 50
SYNONYMS_FILE = Path(__file__).resolve().parents[2] / "seed" / "catalog" / "synonyms.txt"
FIELD_WEIGHTS = {"name": 10.0, "keywords": 6.0, "category": 3.0, "department": 2.0}
SYNONYM_FACTOR = 0.7
SINGLE_CHAR_FACTOR = 0.3
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_lock = threading.Lock()
jieba.setLogLevel(logging.WARNING)


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), traditional characters to simplified (護照 → 护照: a
    phone set to traditional input, a Hong Kong or Taiwan resident), lower case, punctuation to
    spaces. The catalog's own text goes through the same, so both sides meet."""
    folded = unicodedata.normalize("NFKC", text)
    if not folded.isascii():
        folded = HanziConv.toSimplified(folded)
    return _PUNCT.sub(" ", folded.lower()).strip()


@cache
def load_synonyms(path: Path = SYNONYMS_FILE) -> tuple[tuple[str, ...], ...]:
    if not path.exists():
        return ()
    groups = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [normalize_text(w) for w in line.split("#", 1)[0].split()]
        words = [w for w in words if w]
        if len(words) >= 2:
            groups.append(tuple(words))
    return tuple(groups)


def _synonym_words() -> list[str]:
    return sorted({w for group in load_synonyms() for w in group if len(w) >= 2 and " " not in w})


@cache
def terms_version() -> str:
    """Changes when the writing tokenizer would cut differently: stored terms are then redone."""
    seed = f"{jieba.__version__}|{MIN_FREQ}|hanziconv-simplified|" + "\n".join(_synonym_words())
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


def _tokenizer_from(words: dict[str, int]) -> jieba.Tokenizer:
    lines = "\n".join(f"{w} {f}" for w, f in words.items() if w and " " not in w)
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(io.BytesIO(lines.encode()))
    tokenizer.initialized = True
    return tokenizer


_writer: jieba.Tokenizer | None = None


def _writer_tokenizer() -> jieba.Tokenizer:
    global _writer
    with _lock:
        if _writer is None:
            source = Path(jieba.__file__).parent / "dict.txt"
            words: dict[str, int] = {}
            for line in source.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 2 and int(parts[1]) >= MIN_FREQ:
                    words[parts[0]] = int(parts[1])
            for word in _synonym_words():
                words[word] = max(words.get(word, 0), 1000)
            _writer = _tokenizer_from(words)
        return _writer


def _cut(tokenizer: jieba.Tokenizer, text: str) -> list[str]:
    text = normalize_text(text)
    if not text:
        return []
    return [t for t in tokenizer.cut_for_search(text, HMM=False) if t.strip()]


def doc_terms(fields: dict[str, Iterable[str]]) -> dict[str, list[str]]:
    """Terms of an item's searchable fields, cut by the writing tokenizer (stored at import)."""
    tokenizer = _writer_tokenizer()
    out: dict[str, list[str]] = {}
    for name, texts in fields.items():
        terms: list[str] = []
        for text in texts:
            terms.extend(t for t in _cut(tokenizer, text) if t not in terms)
        out[name] = terms
    return out


@dataclass(frozen=True)
class Doc:
    key: str
    name: str
    terms: dict[str, list[str]]  # field -> stored terms (doc_terms at import)
    # field -> texts cut here by the index's own tokenizer (category and department names, bundles)
    texts: dict[str, list[str]]


class SearchIndex:
    def __init__(self, docs: list[Doc]) -> None:
        vocabulary: dict[str, int] = {}
        for doc in docs:
            for terms in doc.terms.values():
                for term in terms:
                    vocabulary[term] = vocabulary.get(term, 0) + 1
        for word in _synonym_words():
            vocabulary.setdefault(word, 1)
        # Longer words win ties in the route jieba picks; frequencies only rank alternatives.
        self._tok = _tokenizer_from({w: 1000 + n for w, n in vocabulary.items()})
        self._synonyms: dict[str, set[str]] = defaultdict(set)
        for group in load_synonyms():
            for word in group:
                self._synonyms[word].update(w for w in group if w != word)
        cut_cache: dict[str, list[str]] = {}

        def cut(text: str) -> list[str]:
            if text not in cut_cache:
                cut_cache[text] = self.terms(text)
            return cut_cache[text]

        all_docs = docs
        self.keys = [doc.key for doc in all_docs]
        self._names = [normalize_text(doc.name).replace(" ", "") for doc in all_docs]
        best: dict[str, dict[int, float]] = defaultdict(dict)
        for i, doc in enumerate(all_docs):
            fields = list(doc.terms.items())
            fields += [(f, [t for text in texts for t in cut(text)]) for f, texts in doc.texts.items()]
            for field_name, terms in fields:
                weight = FIELD_WEIGHTS.get(field_name, 1.0)
                for term in terms:
                    if best[term].get(i, 0.0) < weight:
                        best[term][i] = weight
        # Compact postings: two arrays per term instead of a dict (5,000 items: a few MB).
        self._postings = {t: (array("I", p.keys()), array("f", p.values())) for t, p in best.items()}
        n = max(1, len(all_docs))
        self._idf = {t: 1.0 + math.log(1 + n / len(p[0])) for t, p in self._postings.items()}
        # Characters: which items hold each one in their name, and which only in their keywords.
        # A one-character query is answered from here, and a longer one checks here how much of
        # it an item's name holds (pairs, most characters) without scanning every name.
        name_chars: dict[str, list[int]] = defaultdict(list)
        keyword_chars: dict[str, list[int]] = defaultdict(list)
        for i, doc in enumerate(all_docs):
            name = self._names[i]
            keyword_terms = [
                *doc.terms.get("keywords", ()),
                *map(normalize_text, doc.texts.get("keywords", ())),
            ]
            for ch in set(name):
                name_chars[ch].append(i)
            for ch in set("".join(keyword_terms)).difference(name, " "):
                keyword_chars[ch].append(i)
        self._name_chars = {c: array("I", ids) for c, ids in name_chars.items()}
        self._keyword_chars = {c: array("I", ids) for c, ids in keyword_chars.items()}

    def terms(self, text: str) -> list[str]:
        return _cut(self._tok, text)

    def _expand(self, terms: list[str]) -> dict[str, float]:
        weights: dict[str, float] = {}
        for term in terms:
            factor = SINGLE_CHAR_FACTOR if len(term) == 1 else 1.0
            weights[term] = max(weights.get(term, 0.0), factor)
            for synonym in self._synonyms.get(term, ()):
                for sub in self.terms(synonym):
                    sub_factor = factor * SYNONYM_FACTOR * (SINGLE_CHAR_FACTOR if len(sub) == 1 else 1.0)
                    weights[sub] = max(weights.get(sub, 0.0), sub_factor)
        return weights

    def search(self, query: str) -> list[tuple[str, float]]:
        """(key, score) best first; ties keep index order (the catalog's own order).

        One character (婚, 证) finds every item whose name holds it, then those whose keywords
        do. A longer query finds an item only on a real match: the whole query in its name, a
        word of two or more characters (or its synonym) in any field, one of the query's
        character pairs in its name, or most of the query's characters (at least two) in its
        name. An item sharing one character with the query is not a match (驾驶证 does not find
        居住证 by 证).
        """
        whole = normalize_text(query).replace(" ", "")
        if not whole:
            return []
        if len(set(whole)) == 1:  # 证, or 证证
            return self._search_one_char(whole[0])
        terms = self.terms(query)
        if whole != normalize_text(query):
            # Typed or spoken with spaces ("开 店", "生\u3000娃"): the words of the text without
            # them count too, or a keyword such as 开店 would never match.
            terms = list(dict.fromkeys([*terms, *self.terms(whole)]))
        scores: dict[int, float] = defaultdict(float)
        real: set[int] = set()
        for term, factor in self._expand(terms).items():
            posting = self._postings.get(term)
            if posting:
                boost = self._idf[term] * factor
                for i, weight in zip(*posting, strict=True):
                    scores[i] += weight * boost
                if len(term) >= 2:
                    real.update(posting[0])
        self._score_name_overlap(query, whole, scores, real)
        ranked = sorted(((i, s) for i, s in scores.items() if i in real), key=lambda kv: (-kv[1], kv[0]))
        if not ranked:
            return []
        # Drop the long tail of weak matches (a common word such as 登记 in a long query).
        floor = ranked[0][1] * 0.15
        return [(self.keys[i], round(score, 3)) for i, score in ranked if score >= floor]

    def _score_name_overlap(self, query: str, whole: str, scores: dict[int, float], real: set[int]) -> None:
        """Score how much of the query an item's name holds, from the character postings: the
        whole query (typed without spaces, or words the vocabulary does not know) and, for an item
        no word matched, the query's character pairs or most of its characters. Work grows with
        the postings of the query's characters, not with the size of the catalog."""
        name_weight = FIELD_WEIGHTS["name"]
        holding = {ch: set(self._name_chars.get(ch, ())) for ch in set(whole)}
        # Set operations run in C: no Python loop over every item that shares one character.
        every = set.intersection(*holding.values()) if all(holding.values()) else set()
        for i in every:
            if whole in self._names[i]:
                scores[i] += name_weight * 2
                real.add(i)
        # Items no word matched: a pair of the query's characters in the name, or three quarters
        # of its characters (at least two), still make a match, ranked by how much they hold.
        pairs = {w[k : k + 2] for w in normalize_text(query).split() for k in range(len(w) - 1)}
        weak: dict[int, int] = defaultdict(int)  # item -> how many of the pairs its name holds
        for pair in pairs:
            if pair[0] in holding and pair[1] in holding:
                for i in (holding[pair[0]] & holding[pair[1]]) - real:
                    if pair in self._names[i]:
                        weak[i] += 1
        needed = max(2, math.ceil(len(holding) * 3 / 4))
        if needed >= len(holding):
            most = every
        else:
            counts = Counter(chain.from_iterable(holding.values()))
            most = {i for i, n in counts.items() if n >= needed}
        for i in most - real:
            weak.setdefault(i, 0)
        for i, found in weak.items():
            held = sum(1 for ids in holding.values() if i in ids)
            scores[i] += name_weight * (found / max(1, len(pairs)) + held / len(holding))
            real.add(i)

    def _search_one_char(self, char: str) -> list[tuple[str, float]]:
        """Items whose name holds `char` first, then those whose keywords do; its synonyms count."""
        scores: dict[int, float] = defaultdict(float)
        in_name = self._name_chars.get(char, ())
        for i in in_name:
            scores[i] = FIELD_WEIGHTS["name"] * 2
        for i in self._keyword_chars.get(char, ()):
            scores[i] = FIELD_WEIGHTS["keywords"]
        for term, factor in self._expand(self.terms(char)).items():
            term_posting = self._postings.get(term)
            if term_posting:
                boost = self._idf[term] * factor
                for i, weight in zip(*term_posting, strict=True):
                    scores[i] += weight * boost
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        if not ranked:
            return []
        # Every item whose name or keywords hold the character stays, however high the top score.
        floor = min(ranked[0][1] * 0.15, FIELD_WEIGHTS["keywords"])
        return [(self.keys[i], round(s, 3)) for i, s in ranked if s >= floor]
