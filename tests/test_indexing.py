"""The bulk index writer writes what Whoosh's own writer writes: every term, every posting."""

from __future__ import annotations

from pathlib import Path

from collections import Counter

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import index as windex
from whoosh.codec.whoosh3 import W3Codec
from whoosh.formats import Frequency
from whoosh.writing import SegmentWriter

from bench.corpus import generate
from kb import analysis, indexing
from kb.analysis import bank_tokenizer, primed
from kb.forking import fork
from kb.loading import load_corpus

ROOT = Path(__file__).resolve().parent.parent


def contents(folder: Path, indexname: str) -> tuple:
    """Everything a reader sees: per term its statistics and postings (with block statistics),
    per document its field lengths and stored fields."""
    ix = windex.open_dir(str(folder), indexname=indexname)
    with ix.reader() as r:
        terms = []
        for field, text in r.all_terms():
            ti = r.term_info(field, text)
            m = r.postings(field, text)
            postings = []
            while m.is_active():
                postings.append((m.id(), m.weight(), m.value(), m.block_min_length(), m.block_max_length(),
                                 m.block_max_weight()))
                m.next()
            terms.append((field, text, ti.weight(), ti.doc_frequency(), ti.min_length(), ti.max_length(),
                          ti.max_weight(), ti.min_id(), ti.max_id(), postings))
        names = [n for n, f in ix.schema.items() if f.scorable]
        lengths = [[r.doc_field_length(d, n) for n in names] for d in range(r.doc_count_all())]
        totals = [r.field_length(n) for n in names]
        return terms, lengths, totals, list(r.all_stored_fields())


@pytest.mark.parametrize("bank,blocks", [("real", indexing.BLOCK_POSTINGS), ("generated", indexing.BLOCK_POSTINGS),
                                         ("generated", 64)])
def test_bulk_writer_equals_whooshs_writer(bank, blocks, tmp_path):
    # the generated bank has terms in more than 64 documents: several blocks per posting list
    folder = ROOT / "entries" if bank == "real" else generate(200, tmp_path / "bank")
    corpus = load_corpus(folder)
    schema = indexing.make_schema(bank_tokenizer(corpus.names))
    # Whoosh's own writer, with Whoosh's own Frequency format: it reads the analyzer's token
    # stream, not the term counts ours uses (so they are checked against each other too)
    reference = indexing.make_schema(bank_tokenizer(corpus.names))
    for name in ("names", "lead", "text", "qlead", "qtext"):
        reference[name].format = Frequency(field_boost=reference[name].format.field_boost)
    for indexname, docs in (("MAIN", indexing._entry_docs), ("questions", indexing._question_docs)):
        ours, theirs = tmp_path / f"ours-{indexname}", tmp_path / f"theirs-{indexname}"
        ours.mkdir(), theirs.mkdir()
        writer = indexing._Writer(windex.create_in(str(ours), schema, indexname=indexname), codec=W3Codec(blocklimit=blocks))
        for doc in docs(corpus.entries.values()):
            writer.add_document(**doc)
        writer.commit()
        writer = SegmentWriter(windex.create_in(str(theirs), reference, indexname=indexname),
                               codec=W3Codec(blocklimit=blocks))
        for doc in docs(corpus.entries.values()):
            writer.add_document(**doc)
        writer.commit()
        a, b = contents(ours, indexname), contents(theirs, indexname)
        assert len(a[0]) > 1000 and a == b
        if blocks == 64:
            assert max(t[3] for t in a[0]) > 2 * blocks


def test_the_bulk_writer_writes_blocks_of_block_postings(tmp_path):
    """Posting lists are written BLOCK_POSTINGS postings a block (Whoosh's default is 128; in
    Python the cost of writing is per block), and Whoosh reads them as any other."""
    corpus = load_corpus(generate(200, tmp_path / "bank"))
    ix = windex.create_in(str(tmp_path), indexing.make_schema(bank_tokenizer(corpus.names)), indexname="questions")
    indexing._write_part(ix, indexing._question_docs(corpus.entries.values()), 0, None)
    with ix.reader() as r:
        field, text = max(r.all_terms(), key=lambda term: r.doc_frequency(*term))
        assert r.doc_frequency(field, text) > 128
        m = r.postings(field, text)
        assert m._blocklength == min(indexing.BLOCK_POSTINGS, r.doc_frequency(field, text))
        assert len(list(m.all_ids())) == r.doc_frequency(field, text)


EDGE_TEXTS = [
    "", "，。！", "  \n ", "Hello, WORLD! hello-world KV-Cache kv_cache 的 是 什么是 向量数据库",
    "ＲＬＨＦ 与 RLHF、ｒｌｈｆ（全角）", "混合专家模型 MoE 的负载均衡 load-balancing loss", "x86_64 C++ 3.14 e.g. GPT-4o",
]


def test_term_counts_equal_the_analyzers_token_stream():
    """term_counts (what the index and the site's search data use) counts exactly the terms the
    analyzer's token stream yields, sub-words included, on the real bank and awkward texts."""
    corpus = load_corpus(ROOT / "entries")
    tok = bank_tokenizer(corpus.names)
    texts = EDGE_TEXTS + indexing.analyzed_texts(corpus)
    for text in texts:
        assert tok.term_counts(text) == Counter(term for term, *_ in tok.terms(text)), text
    assert tok.term_counts("向量数据库")["向量"] == 1  # a sub-word of a bank word


# Full-width punctuation (what `nfkc` replaces), other compatibility characters (ligatures,
# circled digits, half-width katakana and their sound marks), combining marks, Hangul jamo.
_NFKC_CHARS = "，：（）？；！～\u3000…ﬁ①ｶﾞﾟ\u0301\u0308\u3099ᄀ\u1161가Å" + "aZ0 ,.混合专家"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(_NFKC_CHARS) | st.characters(), max_size=40))
def test_nfkc_equals_unicodedatas(text):
    assert analysis.nfkc(text) == unicodedata.normalize("NFKC", text)


def test_primed_counts_are_shared_with_forked_processes_and_then_dropped(monkeypatch):
    corpus = load_corpus(ROOT / "entries")
    tok = bank_tokenizer(corpus.names)
    texts = indexing.analyzed_texts(corpus)
    cold = [tok.term_counts(t) for t in texts]
    monkeypatch.setattr(analysis, "PRIME_MIN", 10)  # counted in two processes
    with primed(tok, texts):
        warm = [tok.term_counts(t) for t in texts]
        assert warm == cold
        assert all(tok.term_counts(t) is c for t, c in zip(texts, warm))  # remembered, not recounted
        # a process forked inside the block reads the counts without counting
        child = fork("reader", lambda: [tok.term_counts(t) is tok.__dict__["_memo"][t] for t in texts])
        assert all(child.wait()[1])
    assert "_memo" not in tok.__dict__ and tok.term_counts(texts[0]) is not warm[0]


def test_bulk_writer_refuses_fields_it_cannot_write(tmp_path):
    from whoosh.fields import ID, TEXT, Schema

    ix = windex.create_in(str(tmp_path), Schema(key=ID(stored=True), text=TEXT(vector=True)))
    with pytest.raises(ValueError, match="needs Whoosh's own writer"):
        indexing._Writer(ix)


def live_postings(folder: Path, indexname: str) -> tuple[set, tuple]:
    """(field, term, document key, weight) of every live document, and the analyzer's words."""
    ix = windex.open_dir(str(folder), indexname=indexname)
    with ix.searcher() as s:
        r = s.reader()
        keys = {d: fields["key"] for d, fields in r.iter_docs()}
        out = set()
        for field, text in r.all_terms():
            if field in ("names", "lead", "text", "qlead", "qtext"):
                m = r.postings(field, text)
                while m.is_active():
                    if not r.is_deleted(m.id()):
                        out.add((field, text, keys[m.id()], m.weight()))
                    m.next()
        return out, ix.schema["text"].analyzer.words


def test_renames_that_change_the_dictionary_update_the_index_like_a_full_build(make_bank, tmp_path):
    from conftest import entry

    from kb.build import IndexEmitter, build

    bank = make_bank({
        "rag.md": entry("RAG", body="检索增强生成先查向量数据库，再做近似检索。"),
        "vector-database.md": entry("向量数据库", body="存放向量，支持近似检索。"),
        "hnsw.md": entry("HNSW", body="分层图索引。[[rag]]"),
        "bm25.md": entry("BM25", body="词频打分，与向量无关。[[rag]]"),
    })
    out = tmp_path / "build"
    build(bank, out, [IndexEmitter()])
    (bank / "vector-database.md").write_text(entry("向量库", body="存放向量，支持近似检索。"), encoding="utf-8")
    (bank / "hnsw.md").write_text(entry("HNSW", extra="tags: [近似检索]\n", body="分层图索引。[[rag]]"),
                                  encoding="utf-8")
    result = build(bank, out, [IndexEmitter()])
    assert not result.changes.full and result.changes.changed == {"vector-database", "hnsw"}
    full = build(bank, tmp_path / "full", [IndexEmitter()], full=True)
    for indexname in ("MAIN", "questions"):
        partial_postings, partial_words = live_postings(out / "index", indexname)
        full_postings, full_words = live_postings(full.path / "index", indexname)
        assert partial_words == full_words and "近似检索" in partial_words and "向量数据库" not in partial_words
        assert partial_postings == full_postings
    # rag and vector-database mention a moved word (向量数据库, 近似检索) and were re-indexed;
    # bm25 mentions neither and kept its document
    assert ("text", "向量数据库".encode(), "rag", 1.0) not in partial_postings


def test_incremental_builds_keep_the_number_of_segments_bounded(make_bank, tmp_path):
    from conftest import entry

    from kb.build import IndexEmitter, build
    from kb.search import SearchIndex

    bank = make_bank({"rag.md": entry("RAG", body="检索增强 [[faiss]]"), "faiss.md": entry("Faiss", body="向量库 [[rag]]")})
    out = tmp_path / "build"
    build(bank, out, [IndexEmitter()])
    counts = []
    for i in range(indexing.MAX_SEGMENTS + 3):
        (bank / "faiss.md").write_text(entry("Faiss", body=f"第{i}版正文 [[rag]]"), encoding="utf-8")
        build(bank, out, [IndexEmitter()])
        counts.append(len(windex.open_dir(str(out / "index"))._segments()))
        ix = SearchIndex(out / "index")
        try:
            assert ix.search(f"第{i}版正文").results[0].entry_id == "faiss" and ix.ix.doc_count() == 2
        finally:
            ix.close()
    assert max(counts) == indexing.MAX_SEGMENTS and counts.count(1) == 1  # written afresh once


def test_a_watching_process_keeps_only_the_last_dictionaries_segmenters():
    """Each renaming edit under `kb build --watch` makes a new dictionary; a segmenter holds
    ~25 MB, so a process keeps those of the last two (a long session must not grow)."""
    tokenizers = [bank_tokenizer([f"检索增强 {i}", f"重命名词条{i}号"]) for i in range(5)]
    for i, tok in enumerate(tokenizers):
        assert f"重命名词条{i}号" in tok.segmenter.cut(f"关于重命名词条{i}号的问题")  # its own dictionary
    assert len(analysis._SEGMENTERS) <= analysis.KEEP_SEGMENTERS
    # a tokenizer whose segmenter left the cache keeps its own
    assert "重命名词条0号" in tokenizers[0].segmenter.cut("关于重命名词条0号的问题")
