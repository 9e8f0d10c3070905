"""Chinese search over the catalog: jieba word segmentation, a synonym list, field weights.

The index lives in each process's memory and is built from the published catalog, so results
are the same whichever database holds the data. Query and documents are cut the same way
(`cut_for_search`, which also yields the shorter words inside long ones: 公积金 → 公积, 积金);
each query word is expanded with its synonym group (生孩子 → 生育, 出生, 新生儿 …), and an item
scores by the rarest, best-placed words it contains: name above keywords above category,
department and materials. A query word the dictionary does not know still matches as a
substring of a name.

jieba's full dictionary costs about 80 MB per process; this index loads only its words with a
frequency of at least MIN_FREQ (about 66,000 words) plus every word of the catalog and the
synonym list, which keeps segmentation good for the citizen's phrasing at a fraction of that.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

MIN_FREQ = 30
MAX_QUERY_CHARS = 50
SYNONYMS_FILE = Path(__file__).resolve().parents[2] / "seed" / "catalog" / "synonyms.txt"
FIELD_WEIGHTS = {"name": 10.0, "keywords": 6.0, "category": 3.0, "department": 2.0, "materials": 1.0}
SYNONYM_FACTOR = 0.7
SINGLE_CHAR_FACTOR = 0.3
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_jieba_lock = threading.Lock()
_tokenizers: dict[str, jieba.Tokenizer] = {}
jieba.setLogLevel(logging.WARNING)


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), lower case, punctuation to spaces."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def load_synonyms(path: Path = SYNONYMS_FILE) -> list[list[str]]:
    if not path.exists():
        return []
    groups = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [normalize_text(w) for w in line.split("#", 1)[0].split()]
        words = [w for w in words if w]
        if len(words) >= 2:
            groups.append(words)
    return groups


def _tokenizer(extra_words: Iterable[str]) -> jieba.Tokenizer:
    """A jieba tokenizer on the trimmed dictionary plus `extra_words`, built once per word set."""
    words = sorted({w for w in extra_words if len(w) >= 2 and " " not in w})
    key = hashlib.sha256("\n".join(words).encode()).hexdigest()[:16]
    with _jieba_lock:
        if key in _tokenizers:
            return _tokenizers[key]
        source = Path(jieba.__file__).parent / "dict.txt"
        folder = Path(tempfile.gettempdir()) / f"yiwang-jieba-{os.getuid()}"
        folder.mkdir(exist_ok=True)
        target = folder / f"dict-{MIN_FREQ}-{key}.txt"
        if not target.exists():
            lines = [
                line
                for line in source.read_text(encoding="utf-8").splitlines()
                if len(parts := line.split()) >= 2 and int(parts[1]) >= MIN_FREQ
            ]
            lines += [f"{w} 1000 n" for w in words]
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(target)
        tokenizer = jieba.Tokenizer(dictionary=str(target))
        tokenizer.tmp_dir = str(folder)
        tokenizer.initialize()
        _tokenizers.clear()  # one live dictionary per process: the newest catalog's
        _tokenizers[key] = tokenizer
        return tokenizer


@dataclass(frozen=True)
class Doc:
    key: str
    fields: dict[str, list[str]]  # field name -> texts


class SearchIndex:
    def __init__(self, docs: list[Doc], synonyms: list[list[str]]) -> None:
        vocabulary: set[str] = set()
        for group in synonyms:
            vocabulary.update(group)
        for doc in docs:
            vocabulary.update(normalize_text(k) for k in doc.fields.get("keywords", []))
        self._tok = _tokenizer(vocabulary)
        self._synonyms: dict[str, set[str]] = defaultdict(set)
        for group in synonyms:
            for word in group:
                self._synonyms[word].update(w for w in group if w != word)
        self.keys = [doc.key for doc in docs]
        self._names = [normalize_text(" ".join(doc.fields.get("name", []))) for doc in docs]
        # term -> {doc index: best field weight}
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        for i, doc in enumerate(docs):
            for field_name, texts in doc.fields.items():
                weight = FIELD_WEIGHTS.get(field_name, 1.0)
                for text in texts:
                    for term in self.terms(text):
                        if postings[term].get(i, 0.0) < weight:
                            postings[term][i] = weight
        self._postings = dict(postings)
        n = max(1, len(docs))
        self._idf = {t: 1.0 + math.log(1 + n / len(p)) for t, p in self._postings.items()}

    def terms(self, text: str) -> list[str]:
        text = normalize_text(text)
        if not text:
            return []
        return [t for t in self._tok.cut_for_search(text, HMM=False) if t.strip()]

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
        """(key, score) best first; ties keep index order (the catalog's own order)."""
        terms = self.terms(query)
        if not terms:
            return []
        scores: dict[int, float] = defaultdict(float)
        for term, factor in self._expand(terms).items():
            posting = self._postings.get(term)
            if posting:
                idf = self._idf[term]
                for i, weight in posting.items():
                    scores[i] += weight * idf * factor
        # Words the dictionary does not know (or typed without spaces) still find names holding them.
        whole = normalize_text(query).replace(" ", "")
        if len(whole) >= 2:
            for i, name in enumerate(self._names):
                if whole in name.replace(" ", ""):
                    scores[i] += FIELD_WEIGHTS["name"] * 2
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        if not ranked:
            return []
        # Drop the long tail that matched only on a stray common character.
        floor = ranked[0][1] * 0.15
        return [(self.keys[i], round(score, 3)) for i, score in ranked if score >= floor]
