"""Chinese-aware text analysis for the Whoosh index (keep this import path stable).

Whoosh pickles the analyzer into the index schema by its class path, so `kb.analysis`
must not move. Segmentation is rjieba (jieba-rs: same algorithm and dictionary as jieba,
~50x faster, no cache file). The bank's own titles, aliases and tags are added to the
dictionary, so 向量数据库, 混合专家 and RLHF stay single tokens; the word list is pickled with
the analyzer, so the query side always segments exactly like the index side.

Index mode: precise segmentation, plus dictionary sub-words of long CJK words and the parts
of hyphenated/dotted ASCII words at the parent's position. Query mode: precise only, so
`向量数据库` does not turn into an AND of 向量, 数据, 据库. Everything is lowercased; nothing is
stemmed (cache must not become cach).
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache

import rjieba
from whoosh.analysis import Token, Tokenizer
from whoosh.formats import Frequency
from whoosh.system import pack_uint

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORD_RE = re.compile(r"\w", re.UNICODE)
PART_RE = re.compile(r"[^\W_]+", re.UNICODE)

# Function words that carry no meaning in a query ("什么是 HNSW", "what is the ...").
STOPWORDS = frozenset(
    """的 了 是 和 与 及 或 在 中 吗 呢 啊 吧 什么 怎么 怎样 如何 哪些 哪个 一个 这个 那个 有 为 对 也 就 都 而
    把 被 之 其 请 一下 讲讲 说说 介绍 简述 谈谈 能 会 要 它 这 那 为什么 是否 有哪些 什么样
    a an the of to is are was were be what how why which and or in on for with do does did can
    vs it its this that as by at from""".split()
)

_LOCK = threading.Lock()
_SEGMENTERS: dict[str, rjieba.Jieba] = {}


def _segmenter(words: tuple[str, ...]) -> rjieba.Jieba:
    """One rjieba instance per dictionary per process (they are not picklable)."""
    key = hashlib.sha1("\n".join(words).encode()).hexdigest()
    seg = _SEGMENTERS.get(key)
    if seg is None:
        with _LOCK:
            seg = _SEGMENTERS.get(key)
            if seg is None:
                seg = rjieba.Jieba()
                for word in words:
                    seg.add_word(word, None, None)
                _SEGMENTERS[key] = seg
    return seg


def dictionary_words(names: Iterable[str]) -> tuple[str, ...]:
    """Words to add to the segmenter: names and their space-free runs that contain CJK."""
    out: set[str] = set()
    for name in names:
        for part in re.split(r"[\s,，、/（）()]+", name.strip()):
            if len(part) > 1 and CJK_RE.search(part):
                out.add(part.lower())
    return tuple(sorted(out))


def mentions(text: str, words: Iterable[str]) -> bool:
    """Whether any of `words` (dictionary words, lowercase) occurs in `text`: if none does, the
    text segments the same with or without them in the dictionary."""
    folded = _folded(text)
    return any(word in folded for word in words)


@lru_cache(maxsize=1 << 16)
def _folded(text: str) -> str:
    """NFKC, lowercased: ~0.3 ms for an entry, so kept per text (a watching build asks again)."""
    return unicodedata.normalize("NFKC", text).lower()


def bank_tokenizer(names: Iterable[str]) -> BankTokenizer:
    """The analyzer for a bank whose titles, aliases and tags are `names` (the index and the
    site's search data both use it; built once per process for the same names)."""
    return _bank_tokenizer(tuple(names))


@lru_cache(maxsize=4)
def _bank_tokenizer(names: tuple[str, ...]) -> BankTokenizer:
    return BankTokenizer(dictionary_words(names))


class BankTokenizer(Tokenizer):
    """Whoosh tokenizer: rjieba with the bank's dictionary; see the module docstring."""

    def __init__(self, words: tuple[str, ...] = ()) -> None:
        self.words = tuple(words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BankTokenizer) and other.words == self.words

    def __hash__(self) -> int:
        return hash(self.words)

    @property
    def segmenter(self) -> rjieba.Jieba:
        seg = self.__dict__.get("_seg")
        if seg is None:
            seg = self.__dict__["_seg"] = _segmenter(self.words)
        return seg

    @property
    def dictionary_hash(self) -> str:
        return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16]

    def _expansions(self, word: str) -> list[str]:
        """Sub-words indexed at a word's position (cached: a bank repeats its words)."""
        cache = self.__dict__.setdefault("_cache", {})
        subs = cache.get(word)
        if subs is None:
            if CJK_RE.search(word):
                subs = [w.lower() for w, _, _ in self.segmenter.tokenize(word, "search")
                        if w != word and len(w) > 1] if len(word) > 2 else []
            else:
                parts = PART_RE.findall(word.lower())
                subs = parts if len(parts) > 1 else []
            cache[word] = subs
        return subs

    def terms(self, text: str, mode: str = "index") -> list[tuple[str, int, int, int]]:
        """(term, position, start char, end char) for `text`."""
        text = unicodedata.normalize("NFKC", text)
        out = []
        pos = 0
        index = mode == "index"
        for word, start, end in self.segmenter.tokenize(text, "default"):
            if not word[0].isalnum() and not WORD_RE.search(word):
                continue  # whitespace and punctuation
            low = word.lower()
            if low in STOPWORDS:
                continue
            out.append((low, pos, start, end))
            if index:
                out.extend((sub, pos, start, end) for sub in self._expansions(word))
            pos += 1
        return out

    def term_counts(self, text: str, subwords: bool = True) -> Counter[str]:
        """How often each term occurs in `text` (index mode, or precise with `subwords=False`):
        the hot path of building the index and the site's search data. Words are counted as
        rjieba cuts them, then each distinct word's terms (itself and its sub-words, or none for
        punctuation and stopwords) are looked up once: per word of a bank, not per occurrence."""
        cache = self.__dict__.setdefault("_word_terms" if subwords else "_word_terms_precise", {})
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        out: dict[str, int] = {}
        get = out.get
        for word, n in Counter(self.segmenter.cut(text)).items():
            terms = cache.get(word)
            if terms is None:
                low = word.lower()
                skip = (not word[0].isalnum() and not WORD_RE.search(word)) or low in STOPWORDS
                terms = cache[word] = [] if skip else [low, *(self._expansions(word) if subwords else [])]
            for term in terms:
                out[term] = get(term, 0) + n
        return Counter(out)

    def __getstate__(self) -> dict:
        return {"words": self.words}  # caches and the segmenter are rebuilt, not pickled

    def query_terms(self, text: str) -> list[str]:
        """Distinct terms of a query, in order (precise mode, hyphenated words split too)."""
        seen: dict[str, None] = {}
        for term, *_ in self.terms(text, "query"):
            seen[term] = None
            if not CJK_RE.search(term):
                for part in PART_RE.findall(term):
                    if part not in STOPWORDS:
                        seen[part] = None
        return list(seen)

    def __call__(self, value: str, positions: bool = False, chars: bool = False, keeporiginal: bool = False,
                 removestops: bool = True, start_pos: int = 0, start_char: int = 0, tokenize: bool = True,
                 mode: str = "", **kwargs: object) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for term, pos, start, end in self.terms(value, "query" if mode == "query" else "index"):
            token.text = term
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = term
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class BankFrequency(Frequency):
    """Whoosh's Frequency format, fed counted terms directly instead of one Token object per
    word: the same postings, about a third less time to build the index."""

    def word_values(self, value, analyzer, **kwargs):  # noqa: ANN001, ANN201
        if not isinstance(analyzer, BankTokenizer):
            return super().word_values(value, analyzer, **kwargs)
        counts = analyzer.term_counts(value)
        boost = self.field_boost
        return ((w, n, n * boost, pack_uint(n)) for w, n in counts.items())
