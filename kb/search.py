"""Full-text search: the query engine over the Whoosh indexes that kb.indexing writes.

Ranking follows what the bank teaches about multi-route recall: three routes, fused with
reciprocal rank fusion, score = sum over routes of 1 / (60 + rank).
- names: exact, prefix and one-typo matches of ids, titles and aliases (in memory);
- entries: BM25F over title + aliases, summary + tags, and body (Whoosh);
- questions: BM25F over question text and answers (Whoosh).
Queries are built from analyzed terms, never parsed as query syntax, so `AND`, `(`, `*`,
`"` and `:` are plain text. Snippets come from text kept beside the index (docs.json), not
from Whoosh's stored fields, which is the slow part of Whoosh highlighting.
"""

from __future__ import annotations

import bisect
import html
import json
import queue
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA
from whoosh import index as windex
from whoosh import scoring
from whoosh.query import And, Or, Term
from whoosh.searching import Searcher

from kb.analysis import CJK_RE, BankTokenizer
from kb.indexing import DOCS_FILE, QUESTIONS, make_schema
from kb.links import norm

RRF_K = 60
MAX_CACHED_FILTERS = 512  # (tag, category) doc sets kept per opened index
ROUTE_DEPTH = 100  # hits taken from each route before fusion


@dataclass
class Hit:
    kind: str
    entry_id: str
    question_id: str | None
    title: str
    snippet: str
    score: float
    url: str
    tags: list[str]
    category: str
    explain: dict[str, int] = field(default_factory=dict)

    def as_dict(self, explain: bool = False) -> dict:
        d = asdict(self)
        if not explain:
            d.pop("explain")
        return d


@dataclass
class SearchResult:
    query: str
    total: int
    took_ms: float
    results: list[Hit]
    facets: dict[str, dict[str, int]]


class NameRoute:
    """Exact, prefix and one-typo matches against every id, title and alias."""

    def __init__(self, entries: dict[str, dict], tokenizer: BankTokenizer, common: Callable[[str], bool]) -> None:
        self.exact: dict[str, list[str]] = {}
        words: dict[str, list[tuple[int, str]]] = {}
        for entry_id, e in entries.items():
            for rank, name in enumerate((entry_id, e["title"], *e["aliases"])):
                self._add(self.exact, norm(name), entry_id)
                for word in tokenizer.query_terms(name):  # HNSW 分层可导航小世界图 -> hnsw, ...
                    if len(word) > 1:
                        words.setdefault(word, []).append((min(rank, 2), entry_id))
        # A word of one or two entries' names that is rare in the bank's text is a name (hnsw);
        # a word common in the text is not (模型), whatever names it appears in.
        for word, found in words.items():
            ids = list(dict.fromkeys(entry_id for _, entry_id in sorted(found)))  # title words first
            if len(ids) <= 2 and word not in self.exact and not common(word):
                self.exact[word] = ids
        self.sorted_keys = sorted(self.exact)
        self.fuzzy_keys = [k for k in self.sorted_keys if len(k) >= 4 and not CJK_RE.search(k) and " " not in k]

    @staticmethod
    def _add(index: dict[str, list[str]], key: str, entry_id: str) -> None:
        ids = index.setdefault(key, [])
        if entry_id not in ids:
            ids.append(entry_id)

    def rank(self, query: str, terms: list[str]) -> list[str]:
        out: dict[str, None] = {}
        whole = norm(query)
        for entry_id in self.exact.get(whole, []):
            out[entry_id] = None
        for term in terms:
            for entry_id in self.exact.get(term, []):
                out[entry_id] = None
        for probe in dict.fromkeys([whole, *terms]):
            if len(probe) < 3 or CJK_RE.search(probe):
                continue
            i = bisect.bisect_left(self.sorted_keys, probe)
            prefixed = []
            while i < len(self.sorted_keys) and self.sorted_keys[i].startswith(probe):
                prefixed.append(self.sorted_keys[i])
                i += 1
            for key in sorted(prefixed, key=len)[:20]:
                for entry_id in self.exact[key]:
                    out.setdefault(entry_id, None)
            if not prefixed and len(probe) >= 5 and probe not in self.exact:
                cutoff = 2 if len(probe) >= 9 else 1
                for key, _dist, _ in process.extract(probe, self.fuzzy_keys, scorer=OSA.distance,
                                                     score_cutoff=cutoff, limit=5):
                    for entry_id in self.exact[key]:
                        out.setdefault(entry_id, None)
        return list(out)


def _snippet(text: str, terms: list[str], width: int = 120) -> str:
    """HTML-escaped window of `text` around the first matched term, terms wrapped in <mark>."""
    if not text:
        return ""
    low = text.lower()
    found = [(low.find(t), t) for t in terms if t and low.find(t) >= 0]
    start = max(0, min(found)[0] - width // 3) if found else 0
    piece = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    if not found:
        return html.escape(prefix + piece + suffix)
    pattern = re.compile("|".join(re.escape(t) for t in sorted({t for _, t in found}, key=len, reverse=True)), re.I)
    out, last = [], 0
    for m in pattern.finditer(piece):
        out.append(html.escape(piece[last : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        last = m.end()
    out.append(html.escape(piece[last:]))
    return html.escape(prefix) + "".join(out) + html.escape(suffix)


class IndexFormatError(Exception):
    """The index was written by a version of kb whose schema differs from this one's."""


class SearchIndex:
    """An opened index folder: a small pool of Whoosh searchers (they are not thread-safe)."""

    def __init__(self, folder: Path, pool_size: int = 2) -> None:
        self.folder = folder
        self.ix = windex.open_dir(str(folder))
        self.qix = windex.open_dir(str(folder), indexname=QUESTIONS)
        # An index of another schema opens fine and then fails inside queries (a question found
        # where an entry was expected: KeyError, HTTP 500). Refuse it here, with what to do.
        expected, found = set(make_schema(BankTokenizer()).names()), set(self.ix.schema.names())
        if found != expected:
            self.ix.close()
            self.qix.close()
            raise IndexFormatError(f"the index in {folder} was written by another version of kb (fields "
                                   f"{', '.join(sorted(found ^ expected))} differ); rebuild it with `kb build --full`")
        self.tokenizer: BankTokenizer = self.ix.schema["names"].analyzer
        docs = json.loads((folder / DOCS_FILE).read_text(encoding="utf-8"))
        self.entries: dict[str, dict] = docs["entries"]
        self.questions: dict[str, dict] = docs["questions"]
        self._pool: queue.Queue[tuple[Searcher, Searcher]] = queue.Queue()
        self._all: list[Searcher] = []
        self._filters: dict[tuple, set[int]] = {}
        self._known = {"tags": {t for e in self.entries.values() for t in e["tags"]},
                       "category": {e["category"] for e in self.entries.values()}}
        for _ in range(pool_size):
            pair = (self.ix.searcher(weighting=scoring.BM25F()), self.qix.searcher(weighting=scoring.BM25F()))
            self._all += pair
            self._pool.put(pair)
        limit = max(2, len(self.entries) // 4)
        reader = self._all[0].reader()
        self.names = NameRoute(self.entries, self.tokenizer, lambda w: reader.doc_frequency("text", w) > limit)
        self.tokenizer.query_terms("预热")  # load the segmenter now, not in the first request

    @contextmanager
    def _searchers(self) -> Iterator[tuple[Searcher, Searcher]]:
        s = self._pool.get()
        try:
            yield s
        finally:
            self._pool.put(s)

    def close(self) -> None:
        for s in self._all:
            s.close()
        self.ix.close()
        self.qix.close()

    def _filter(self, s: Searcher, index: str, filters: tuple[tuple[str, str], ...]) -> set[int] | None:
        """Doc numbers matching every (field, value) filter, computed once per index.

        Only values the bank has are cached (the keys come from request parameters: caching
        every tag a client makes up would grow the process without bound), and at most
        MAX_CACHED_FILTERS of them."""
        if not filters:
            return None
        cached = self._filters.get((index, filters))
        if cached is not None:
            return cached
        if not all(v in self._known[f] for f, v in filters):
            return set()  # an unknown tag or category matches nothing
        docs = set(s.docs_for_query(And([Term(f, v) for f, v in filters])))
        if len(self._filters) >= MAX_CACHED_FILTERS:
            self._filters.clear()
        self._filters[(index, filters)] = docs
        return docs

    def _whoosh(self, s: Searcher, fields: tuple[str, ...], terms: list[str], allowed: set[int] | None) -> list[str]:
        if not terms or (allowed is not None and not allowed):
            return []  # Whoosh reads an empty filter set as "no filter": nothing is allowed here
        q = Or([Term(f, t) for t in terms for f in fields])
        q.matcher_type = Or.DEFAULT_MATCHER  # a union tree that can skip blocks, not an array of every doc
        return [hit["key"] for hit in s.search(q, limit=ROUTE_DEPTH, filter=allowed)]

    def search(self, query: str, *, limit: int = 10, offset: int = 0, tag: str | None = None,
               category: str | None = None, kind: str | None = None) -> SearchResult:
        """Run every route, fuse with RRF, filter, page; see the module docstring."""
        t0 = time.perf_counter()
        terms = self.tokenizer.query_terms(query)
        filters = tuple([("tags", tag)] if tag else []) + tuple([("category", category)] if category else [])
        with self._searchers() as (es, qs):
            by_entry = (self._whoosh(es, ("names", "lead", "text"), terms, self._filter(es, "entries", filters))
                        if kind != "question" else [])
            by_question = (self._whoosh(qs, ("qlead", "qtext"), terms, self._filter(qs, QUESTIONS, filters))
                           if kind != "entry" else [])
        by_name = [
            e for e in self.names.rank(query, terms)
            if (not category or self.entries[e]["category"] == category) and (not tag or tag in self.entries[e]["tags"])
        ]
        scores: dict[tuple[str, str], float] = Counter()
        explain: dict[tuple[str, str], dict[str, int]] = {}
        question_entries: list[str] = list(dict.fromkeys(self.questions[q]["entry_id"] for q in by_question))
        for route, ids in (("names", by_name), ("entries", by_entry), ("questions", question_entries)):
            if kind == "question":
                break
            for rank, entry_id in enumerate(ids, 1):
                scores[("entry", entry_id)] += 1 / (RRF_K + rank)
                explain.setdefault(("entry", entry_id), {})[route] = rank
        if kind != "entry":
            name_rank = {e: r for r, e in enumerate(by_name, 1)}
            for rank, qid in enumerate(by_question, 1):
                key = ("question", qid)
                scores[key] += 1 / (RRF_K + rank)
                explain.setdefault(key, {})["questions"] = rank
                if (r := name_rank.get(self.questions[qid]["entry_id"])) is not None:
                    scores[key] += 1 / (RRF_K + r)
                    explain[key]["names"] = r
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0][0] != "entry", kv[0][1]))
        facets: dict[str, Counter] = {"category": Counter(), "tag": Counter()}
        for (k, key), _ in ranked:
            e = self.entries[key if k == "entry" else self.questions[key]["entry_id"]]
            facets["category"][e["category"]] += 1
            for t in e["tags"]:
                facets["tag"][t] += 1
        hits = [self._hit(k, key, score, terms, explain[(k, key)]) for (k, key), score in ranked[offset : offset + limit]]
        return SearchResult(query=query, total=len(ranked), took_ms=round((time.perf_counter() - t0) * 1000, 2),
                            results=hits, facets={k: dict(v.most_common()) for k, v in facets.items()})

    def _hit(self, kind: str, key: str, score: float, terms: list[str], explain: dict[str, int]) -> Hit:
        if kind == "entry":
            e = self.entries[key]
            text = e["summary"] + "\n" + e["text"] if not any(t in e["summary"].lower() for t in terms) else e["summary"]
            return Hit("entry", key, None, e["title"], _snippet(text, terms), round(score, 6), f"{key}.html",
                       e["tags"], e["category"], explain)
        q = self.questions[key]
        e = self.entries[q["entry_id"]]
        text = q["q"] if any(t in q["q"].lower() for t in terms) else q["q"] + "\n" + q["text"]
        return Hit("question", q["entry_id"], key, q["q"], _snippet(text, terms), round(score, 6),
                   f"{q['entry_id']}.html#q-{key}", e["tags"], e["category"], explain)
