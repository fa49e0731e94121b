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
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain

import rjieba
from whoosh.analysis import Token, Tokenizer
from whoosh.formats import Frequency
from whoosh.system import pack_uint

from kb.forking import Progress, Shared

PRIME_MIN = 500  # texts from which `primed` counts in two processes (the fork must pay off)
CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORD_RE = re.compile(r"\w", re.UNICODE)
PART_RE = re.compile(r"[^\W_]+", re.UNICODE)
NAME_PARTS_RE = re.compile(r"[\s,，、/（）()]+")  # what separates the words of a title, alias or tag

# Function words that carry no meaning in a query ("什么是 HNSW", "what is the ...").
STOPWORDS = frozenset(
    """的 了 是 和 与 及 或 在 中 吗 呢 啊 吧 什么 怎么 怎样 如何 哪些 哪个 一个 这个 那个 有 为 对 也 就 都 而
    把 被 之 其 请 一下 讲讲 说说 介绍 简述 谈谈 能 会 要 它 这 那 为什么 是否 有哪些 什么样
    a an the of to is are was were be what how why which and or in on for with do does did can
    vs it its this that as by at from""".split()
)

# Chinese text's full-width punctuation, each with what NFKC makes of it (one ASCII character,
# or three for the ellipsis): see `nfkc`.
_WIDE = tuple((c, unicodedata.normalize("NFKC", c)) for c in "，：（）？；！～\u3000…")

_SKIP = "\x00"  # the term of punctuation, whitespace and stopwords in term_counts: dropped
_LOCK = threading.Lock()
_SEGMENTERS: dict[str, rjieba.Jieba] = {}  # oldest first; at most KEEP_SEGMENTERS
KEEP_SEGMENTERS = 2  # ~25 MB each: a watching build makes one per renaming edit
_DEFAULT_TAKEN = False


def _segmenter(words: tuple[str, ...]) -> rjieba.Jieba:
    """One rjieba instance per dictionary per process (they are not picklable), for the last
    two dictionaries (the current build's and the previous one's)."""
    global _DEFAULT_TAKEN
    key = hashlib.sha1("\n".join(words).encode()).hexdigest()
    seg = _SEGMENTERS.get(key)
    if seg is None:
        with _LOCK:
            seg = _SEGMENTERS.get(key)
            if seg is None:
                # Importing rjieba builds a default segmenter (0.15 s of loading its dictionary)
                # that nothing here uses through rjieba.cut: the process's first bank dictionary
                # takes it over instead of loading the dictionary a second time.
                default = None if _DEFAULT_TAKEN else getattr(rjieba, "_DEFAULT_JIEBA", None)
                _DEFAULT_TAKEN = True
                seg = default if isinstance(default, rjieba.Jieba) else rjieba.Jieba()
                for word in words:
                    seg.add_word(word, None, None)
                _SEGMENTERS[key] = seg
                for old in list(_SEGMENTERS)[:-KEEP_SEGMENTERS]:
                    del _SEGMENTERS[old]
    return seg


def dictionary_words(names: Iterable[str]) -> tuple[str, ...]:
    """Words to add to the segmenter: names and their space-free runs that contain CJK."""
    out: set[str] = set()
    for name in set(names):  # tags repeat across entries
        for part in NAME_PARTS_RE.split(name.strip()):
            if len(part) > 1 and CJK_RE.search(part):
                out.add(part.lower())
    return tuple(sorted(out))


def mentions(text: str, words: Iterable[str]) -> bool:
    """Whether any of `words` (dictionary words, lowercase) occurs in `text`: if none does, the
    text segments the same with or without them in the dictionary."""
    folded = _folded(text)
    return any(word in folded for word in words)


def fold(texts: Iterable[str]) -> None:
    """Prepare `texts` for `mentions` in this process now: `kb build --watch` does it while it
    waits for the next edit, so the processes its next build forks (the index's) inherit them
    instead of folding every entry again after a rename (0.3 s per 1,000 entries)."""
    for text in texts:
        _folded(text)


def _term(word: str) -> str:
    """The term a segmented word is indexed and searched as: lowercased; `_SKIP` for whitespace,
    punctuation and stopwords."""
    if not word[0].isalnum() and not WORD_RE.search(word):
        return _SKIP
    low = word.lower()
    return _SKIP if low in STOPWORDS else low


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, 2-3x faster for Chinese text: its full-width
    punctuation is what keeps it from being NFKC already, and normalizing walks every character
    (as long as segmenting it takes). Those characters are replaced first (`str.replace` is a C
    scan); a text still not NFKC then is normalized whole. The same result: a character and its
    NFKC form decompose alike, so replacing one by the other leaves the NFKC of the text as it was."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    wide = text
    for char, ascii_ in _WIDE:
        if char in wide:
            wide = wide.replace(char, ascii_)
    return wide if unicodedata.is_normalized("NFKC", wide) else unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=1 << 16)
def _folded(text: str) -> str:
    """NFKC, lowercased: ~0.1 ms for an entry, so kept per text (a watching build asks again)."""
    return nfkc(text).lower()


def bank_tokenizer(names: Iterable[str]) -> BankTokenizer:
    """The analyzer for a bank whose titles, aliases and tags are `names` (the index and the
    site's search data both use it; built once per process for the same names)."""
    return _bank_tokenizer(tuple(names))


@lru_cache(maxsize=2)  # each holds its segmenter: the current names and the previous build's
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
        text = nfkc(text)
        out = []
        pos = 0
        index = mode == "index"
        for word, start, end in self.segmenter.tokenize(text, "default"):
            low = _term(word)
            if low is _SKIP:
                continue
            out.append((low, pos, start, end))
            if index:
                out.extend((sub, pos, start, end) for sub in self._expansions(word))
            pos += 1
        return out

    def term_counts(self, text: str) -> dict[str, int]:
        """How often each term occurs in `text` (index mode): the hot path of building the index
        and the site's search data, so the per-word work runs in C: each word rjieba cuts maps
        to its lowercased term through a dict (punctuation and stopwords to a sentinel dropped
        at the end), and words with sub-words add those. Inside `primed`, a remembered count:
        callers share the returned mapping and must not change it."""
        memo = self.__dict__.get("_memo")
        if memo is not None:
            hit = memo.get(text)
            if hit is not None:
                return hit
        words = self.segmenter.cut(nfkc(text))
        term_of = self.__dict__.get("_term_of")
        if term_of is None:
            term_of = self.__dict__["_term_of"] = _Terms(self)
        out = Counter(map(term_of.__getitem__, words))  # words not met yet are learned on the way
        subs = term_of.subs
        out.update(chain.from_iterable(map(subs.__getitem__, filter(subs.__contains__, words))))
        out.pop(_SKIP, None)
        return out

    def __getstate__(self) -> dict:
        return {"words": self.words}  # caches, counts and the segmenter are rebuilt, not pickled

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


class _Terms(dict):
    """A tokenizer's word -> term map for `term_counts` (the lowercased word; `_SKIP` for
    punctuation, whitespace and stopwords), and each word's sub-words in `subs`. A word not met
    yet is learned when it is first looked up (`__missing__`), so the words of a text are
    counted in one pass, in order, at dict speed."""

    def __init__(self, tokenizer: BankTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.subs: dict[str, list[str]] = {}

    def __missing__(self, word: str) -> str:
        term = self[word] = _term(word)
        if term is not _SKIP and (expansions := self.tokenizer._expansions(word)):
            self.subs[word] = expansions
        return term


class BankFrequency(Frequency):
    """Whoosh's Frequency format, fed counted terms directly instead of one Token object per
    word: the same postings, about a third less time to build the index."""

    def word_values(self, value, analyzer, **kwargs):  # noqa: ANN001, ANN201
        if not isinstance(analyzer, BankTokenizer):
            return super().word_values(value, analyzer, **kwargs)
        counts = analyzer.term_counts(value)
        boost = self.field_boost
        return ((w, n, n * boost, pack_uint(n)) for w, n in counts.items())


@contextmanager
def primed(tokenizer: BankTokenizer, texts: Iterable[str], progress: Progress | None = None) -> Iterator[None]:
    """Within the block, `tokenizer.term_counts` answers each of `texts` from counts computed
    up front in two processes (`kb.forking.Shared`), for this process and the processes it
    forks: the index and the site's search data analyze the same bodies, answers, names and
    questions, and each text is then analyzed once. The counts are dropped on leaving."""
    todo = list(dict.fromkeys(texts))
    # plain dicts: the child's half comes back pickled, and a Counter pickles and loads 2x slower
    counts = Shared("analyze", todo, lambda t: dict(tokenizer.term_counts(t)), PRIME_MIN).result(progress, "analyze")
    tokenizer.__dict__["_memo"] = dict(zip(todo, counts))
    try:
        yield
    finally:
        tokenizer.__dict__.pop("_memo", None)
