"""The site's search index: a JS data file the browser searches with no server.

Text is segmented at build time by the analyzer the API's index uses (`kb.analysis`, with the
same dictionary: every title, alias and tag), so Chinese terms match the same way. The browser
segments a query by longest match against the index's own terms (plus the same stopwords),
then prefix-matches terms; names (id, title, aliases) weigh most, a query equal to a name
wins outright. `static/search.js` holds the matching side.

The file lists documents with their weighted terms (the browser builds the inverted index when
it loads, ~50 ms for 4,000 documents). Each entry's documents are one JSON *fragment* that
depends only on the entry's source and the dictionary, so an incremental build reuses the
fragments of unchanged entries by content hash and just joins strings.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from operator import itemgetter

from kb.analysis import STOPWORDS, BankTokenizer
from kb.links import norm
from kb.model import Entry

BODY_TERMS = 80  # most frequent body terms kept per entry (keeps the file O(entries), not O(text))
ANSWER_TERMS = 30
W_NAME, W_TAG, W_SUMMARY, W_QUESTION, W_TEXT = 40, 20, 12, 12, 5
SNIPPET = 110
TABLE = 64  # counts below this are weighed from a table


def _weights(w: int) -> list[int]:
    """`round(w * (1 + ln n))` for the counts n that most terms have (index n)."""
    return [0, w] + [round(w * (1 + math.log(n))) for n in range(2, TABLE)]


_TABLES = {w: _weights(w) for w in (W_NAME, W_TAG, W_SUMMARY, W_QUESTION, W_TEXT)}


def _weighed(counts: Counter, w: int, top: int | None = None) -> dict[str, int]:
    """Each term weighed `round(w * (1 + ln count))`; with `top`, only the most frequent terms
    (ties: the first counted, as `most_common`)."""
    items = counts.items()
    if top is not None and len(counts) > top:
        items = sorted(items, key=itemgetter(1), reverse=True)[:top]  # a stable sort: most_common's order
    table = _TABLES[w]
    try:
        return {term: table[n] for term, n in items}
    except IndexError:  # a term counted TABLE times or more
        return {term: table[n] if n < TABLE else round(w * (1 + math.log(n))) for term, n in items}


def _merged(*parts: dict[str, int]) -> dict[str, int]:
    """Per term, the highest weight any part gives it (the biggest part is copied whole first:
    rounding keeps the order of weights, so rounded weights compare like the exact ones)."""
    big = max(parts, key=len)
    out = dict(big)
    get = out.get
    for part in parts:
        if part is not big:
            for term, v in part.items():
                if v > get(term, 0):
                    out[term] = v
    return out


def name_key(name: str) -> str:
    """How the browser compares a query with a name: NFKC, case-folded, spaces collapsed."""
    return norm(unicodedata.normalize("NFKC", name))


def _head(title: str) -> str:
    """The title's first word, its short name: `向量数据库 Vector Database` -> `向量数据库`."""
    head = title.split(maxsplit=1)[0] if title.split() else ""
    return head if len(head) >= 2 and head != title else ""


def _short(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry_fragment(tok: BankTokenizer, e: Entry) -> str:
    """The search documents of one entry (itself and its questions) with weighted terms, as
    JSON array items: [kind, id, title, url, category, snippet, names, {term: weight}]."""
    names = tok.term_counts(" \n".join([e.id, e.title, *e.aliases]))
    weights = _merged(_weighed(names, W_NAME), _weighed(tok.term_counts(" \n".join(e.tags)), W_TAG),
                      _weighed(tok.term_counts(e.summary), W_SUMMARY),
                      _weighed(tok.term_counts(e.body_text), W_TEXT, BODY_TERMS))
    docs = [["e", e.id, e.title, f"{e.id}.html", e.category, _short(e.summary or e.body_text),
             sorted({name_key(x) for x in (e.id, e.title, *e.aliases, _head(e.title)) if x}), weights]]
    # a question's names weigh as its text: "MoE 负载均衡" finds MoE's load-balancing question
    as_text = _weighed(names, W_TEXT)
    for q in e.questions:
        weights = _merged(_weighed(tok.term_counts(q.q), W_QUESTION),
                          _weighed(tok.term_counts(q.answer_text), W_TEXT, ANSWER_TERMS), as_text)
        docs.append(["q", q.id, q.q, f"{e.id}.html#q-{q.id}", e.category, e.title, [], weights])
    return json.dumps(docs, ensure_ascii=False, separators=(",", ":"))[1:-1]


def search_data_js(fragments: list[str], categories: dict[str, str]) -> str:
    """The data file: `window.KB_SEARCH = {v, cats, stop, docs: [...]}`."""
    head = json.dumps({"v": 2, "cats": categories, "stop": sorted(STOPWORDS)}, ensure_ascii=False,
                      separators=(",", ":"))
    return "window.KB_SEARCH=" + head[:-1] + ',"docs":[' + ",".join(f for f in fragments if f) + "]};\n"
