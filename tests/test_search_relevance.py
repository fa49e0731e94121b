"""Search quality on the real bank: a relevance set of typed queries and the entry each should find."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from kb.build import IndexEmitter, build
from kb.search import SearchIndex

RELEVANCE = [
    tuple(line.split("\t"))
    for line in (Path(__file__).parent / "search_relevance.tsv").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    out = tmp_path_factory.mktemp("relevance") / "build"
    build(ROOT / "entries", out, [IndexEmitter()])
    ix = SearchIndex(out / "index")
    yield ix
    ix.close()


def rank_of(ix: SearchIndex, query: str, expected: str) -> int | None:
    entries = list(dict.fromkeys(h.entry_id for h in ix.search(query, limit=10).results))
    return entries.index(expected) + 1 if expected in entries else None


def test_relevance_set_is_large_enough():
    assert len(RELEVANCE) >= 50
    entries = {p.stem for p in (ROOT / "entries").glob("*.md")}
    assert {expected for _, expected in RELEVANCE} <= entries


def test_mrr_and_top3(index):
    ranks = {q: rank_of(index, q, e) for q, e in RELEVANCE}
    misses = {q: r for q, r in ranks.items() if r is None or r > 3}
    mrr = sum(1 / r for r in ranks.values() if r) / len(ranks)
    assert misses == {}, f"expected entry not in the top 3 for: {misses}"
    assert mrr >= 0.9, f"MRR {mrr:.3f}"
