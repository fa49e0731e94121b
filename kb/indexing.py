"""Writing the search index: two Whoosh indexes (entries, questions) and docs.json per build.

The schema's analyzer and format live in kb.analysis (a stable import path: Whoosh pickles them
into the index). Writing is the slow part of a build, so it avoids Whoosh's per-posting
overheads where it safely can (see _MemoryPool and _CachedLengths) and writes the questions'
index in a forked process while the entries' index is written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from whoosh import index as windex
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.writing import SegmentWriter

from kb.analysis import BankFrequency, BankTokenizer, dictionary_words
from kb.forking import fork
from kb.model import Corpus, Entry

DOCS_FILE = "docs.json"
QUESTIONS = "questions"  # the questions' Whoosh index name, beside the entries' (MAIN) in index/
Progress = Callable[[str, int, int], None]


def make_schema(tokenizer: BankTokenizer) -> Schema:
    """Entries: names (id, title, aliases), lead (summary, tags), text (body).
    Questions: qlead (the question), qtext (the answer). Separate fields make each route a
    plain query with no `kind` filter to compute per search."""
    schema = Schema(
        kind=ID(stored=True),
        key=ID(stored=True, unique=True),  # entry id or question id
        category=ID,
        tags=KEYWORD(commas=True, lowercase=False, scorable=False),
        names=TEXT(analyzer=tokenizer, field_boost=4.0, phrase=False),
        lead=TEXT(analyzer=tokenizer, field_boost=2.0, phrase=False),
        text=TEXT(analyzer=tokenizer, phrase=False),
        qlead=TEXT(analyzer=tokenizer, field_boost=2.0, phrase=False),
        qtext=TEXT(analyzer=tokenizer, phrase=False),
    )
    for name in ("names", "lead", "text", "qlead", "qtext"):
        schema[name].format = BankFrequency(field_boost=schema[name].format.field_boost)
    return schema


class _CachedLengths:
    """Field lengths, memoised: Whoosh reads one back from disk for every posting it writes."""

    def __init__(self, reader: object) -> None:
        self._reader = reader
        self._cache: dict[tuple[int, str], int] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int:
        key = (docnum, fieldname)
        if key not in self._cache:
            self._cache[key] = self._reader.doc_field_length(docnum, fieldname, default)
        return self._cache[key]

    def __getattr__(self, name: str) -> object:
        return getattr(self._reader, name)


class _MemoryPool:
    """Postings grouped by term in memory (a bank fits in memory). Whoosh's external-sort pool
    sizes, buffers and sorts one tuple per posting; documents arrive in order, so each term's
    postings are already sorted and only the distinct terms need sorting."""

    def __init__(self) -> None:
        self._terms: dict[tuple[str, bytes], list[tuple[int, float, bytes | None]]] = {}

    def add(self, item: tuple) -> None:
        fieldname, tbytes, docnum, weight, vbytes = item
        postings = self._terms.get((fieldname, tbytes))
        if postings is None:
            postings = self._terms[(fieldname, tbytes)] = []
        postings.append((docnum, weight, vbytes))

    def iter_postings(self) -> Iterator[tuple]:
        for key in sorted(self._terms):
            fieldname, tbytes = key
            for docnum, weight, vbytes in self._terms[key]:
                yield fieldname, tbytes, docnum, weight, vbytes

    def cleanup(self) -> None:
        self._terms.clear()


class _Writer(SegmentWriter):
    """Whoosh's segment writer with an in-memory pool and memoised field lengths: the same
    segment files, written in about half the time."""

    def __init__(self, ix: windex.Index, **kwargs: object) -> None:
        super().__init__(ix, **kwargs)
        self.pool.cleanup()
        self.pool = _MemoryPool()

    def per_document_reader(self) -> _CachedLengths:
        return _CachedLengths(super().per_document_reader())


def _write_part(ix: windex.Index, docs: Iterator[dict], total: int, progress: Progress | None) -> None:
    writer = _Writer(ix, limitmb=256)
    for i, doc in enumerate(docs):
        writer.add_document(**doc)
        if progress:
            progress("index", i + 1, total)
    writer.commit()


def _tokenizer(corpus: Corpus) -> BankTokenizer:
    names = [n for e in corpus.entries.values() for n in (e.title, *e.aliases, *e.tags)]
    return BankTokenizer(dictionary_words(names))


def _entry_docs(entries: Iterable[Entry]) -> Iterator[dict]:
    for e in entries:
        yield {"kind": "entry", "key": e.id, "category": e.category, "tags": ",".join(e.tags),
               "names": " \n".join([e.id, e.title, *e.aliases]), "lead": " \n".join([e.summary, *e.tags]),
               "text": e.body_text}


def _question_docs(entries: Iterable[Entry]) -> Iterator[dict]:
    for e in entries:
        for q in e.questions:
            yield {"kind": "question", "key": q.id, "category": e.category, "tags": ",".join(e.tags), "qlead": q.q,
                   "qtext": q.answer_text}


def _write_docs(corpus: Corpus, folder: Path, tokenizer: BankTokenizer) -> None:
    docs = {
        "dictionary_hash": tokenizer.dictionary_hash, "build_id": corpus.build_id,
        "entries": {e.id: {"title": e.title, "aliases": e.aliases, "category": e.category, "tags": e.tags,
                           "summary": e.summary, "text": e.body_text} for e in corpus.entries.values()},
        "questions": {q.id: {"entry_id": e.id, "q": q.q, "text": q.answer_text}
                      for e in corpus.entries.values() for q in e.questions},
    }
    path = folder / DOCS_FILE
    if path.exists():
        path.unlink()  # never write through a hard link into the previous build
    path.write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")


def write_index(corpus: Corpus, folder: Path, progress: Progress | None = None) -> None:
    """Write the Whoosh indexes (entries, and questions under QUESTIONS) and docs.json into an
    empty `folder`. The two indexes are written at once, the questions in a forked process."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(corpus)
    schema = make_schema(tokenizer)
    entries_ix = windex.create_in(str(folder), schema)
    questions_ix = windex.create_in(str(folder), schema, indexname=QUESTIONS)
    child = fork("questions index", partial(_write_part, questions_ix, _question_docs(corpus.entries.values()), 0, None))
    try:
        _write_part(entries_ix, _entry_docs(corpus.entries.values()), len(corpus.entries), progress)
        child.wait()
    except BaseException:
        child.kill()
        raise
    _write_docs(corpus, folder, tokenizer)


def update_index(corpus: Corpus, folder: Path, previous: Path, changed: set[str], removed: set[str],
                 old_questions: dict[str, list[str]]) -> bool:
    """Write `folder` as a copy of the `previous` index with only the changed entries (and
    their questions) replaced; False, writing nothing, when the analyzer's dictionary changed
    (every document would segment differently: a full build is needed)."""
    tokenizer = _tokenizer(corpus)
    try:
        before = json.loads((previous / DOCS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if before.get("dictionary_hash") != tokenizer.dictionary_hash:
        return False
    shutil.copytree(previous, folder)  # a real copy: Whoosh deletes obsolete files on commit
    touched = changed | removed
    fresh = [corpus.entries[i] for i in sorted(changed) if i in corpus.entries]
    for indexname, keys, docs in (
        (None, touched, _entry_docs(fresh)),
        (QUESTIONS, {q for i in touched for q in old_questions.get(i, [])}, _question_docs(fresh)),
    ):
        ix = windex.open_dir(str(folder), indexname=indexname) if indexname else windex.open_dir(str(folder))
        writer = ix.writer()
        for key in sorted(keys):
            writer.delete_by_term("key", key)
        for doc in docs:
            writer.add_document(**doc)
        writer.commit(merge=False)
        ix.close()
    _write_docs(corpus, folder, tokenizer)
    return True
