"""Writing the search index: two Whoosh indexes (entries, questions) and docs.json per build.

The schema's analyzer and format live in kb.analysis (a stable import path: Whoosh pickles them
into the index). Writing is the slow part of a build, so it avoids Whoosh's per-posting
overheads where it safely can (see _Writer: the same segment files, compared posting by posting
in tests/test_indexing.py) and writes the questions' index in a forked process while the
entries' index is written. An incremental build adds a segment (see update_index).
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from pickle import dumps

from whoosh import index as windex
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.query import Or, Term
from whoosh.system import pack_int, pack_ushort
from whoosh.util.numlists import delta_encode
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from kb.analysis import BankFrequency, BankTokenizer, bank_tokenizer, mentions
from kb.forking import fork
from kb.model import Corpus, Entry

DOCS_FILE = "docs.json"
SMALL_BLOCK = 128  # bytes of pickled postings below which a block is stored uncompressed
MAIN = "MAIN"  # Whoosh's default index name: the entries' index
MAX_SEGMENTS = 12  # segments an index may grow to through incremental builds before a full write
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


class _MemoryPool:
    """Postings grouped by term in memory (a bank fits in memory). Documents arrive in docnum
    order, so each term's postings are already sorted: only the distinct terms need sorting."""

    def __init__(self) -> None:
        self.terms: dict[tuple[str, bytes], list[tuple[int, float, bytes]]] = {}

    def add_field(self, fieldname: str, docnum: int, items: Iterable[tuple[bytes, int, float, bytes]]) -> int:
        """Add one field's (term, freq, weight, value) postings; the field's length in terms."""
        terms = self.terms
        length = 0
        for tbytes, freq, weight, vbytes in items:
            postings = terms.get((fieldname, tbytes))
            if postings is None:
                postings = terms[(fieldname, tbytes)] = []
            postings.append((docnum, weight, vbytes or b""))
            length += freq
        return length

    def cleanup(self) -> None:
        self.terms.clear()


class _Writer(SegmentWriter):
    """Whoosh's segment writer for our schema (a fresh index, or a new segment beside existing
    ones), writing the same segment files in about 60% of the time: postings pooled in memory
    per term, and each term's posting list written in the codec's block format whole instead
    of one call (with type asserts and a field-length lookup) per posting. Fields with vectors,
    columns or spelling are not supported (our schema has none); checked on creation."""

    def __init__(self, ix: windex.Index, **kwargs: object) -> None:
        super().__init__(ix, **kwargs)
        for name, field in self.schema.items():
            if field.vector or field.column_type or field.separate_spelling():
                raise ValueError(f"bulk index writer: field {name!r} needs Whoosh's own writer")
        self.pool.cleanup()
        self.pool = _MemoryPool()
        self._lengths: dict[str, list[int]] = {}  # per field, per docnum: length as the reader sees it

    def add_document(self, **fields: object) -> None:
        self._check_state()
        docnum = self.docnum
        perdoc = self.perdocwriter
        perdoc.start_doc(docnum)
        for name in sorted(fields):
            value = fields[name]
            if value is None:
                continue
            field = self.schema[name]
            length = 0
            if field.indexed:
                length = self.pool.add_field(name, docnum, field.index(value))
                if not field.scorable:
                    length = 0
            lengths = self._lengths.setdefault(name, [])
            lengths.extend([0] * (docnum - self.docbase - len(lengths)))
            lengths.append(byte_to_length(length_to_byte(length)) if length else 0)
            perdoc.add_field(name, field, value if field.stored else None, length)
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        fw = self.fieldwriter
        codec = self.codec
        if codec._inlinelimit > 1 or self.docbase:  # neither with the default codec and one process
            raise ValueError("bulk index writer: needs W3Codec(inlinelimit<=1) and a single writer")
        field_now = None
        postfile = fw._postfile
        offset = postfile.tell()
        buf = bytearray()  # postings bytes not yet written; one file write per MiB
        for key in sorted(self.pool.terms):
            fieldname, tbytes = key
            if fieldname != field_now:
                if field_now is not None:
                    fw.finish_field()
                fw.start_field(fieldname, self.schema[fieldname])
                field_now = fieldname
                flen = self._lengths.get(fieldname, [])
                flen.extend([0] * (self.docnum - len(flen)))
                values_size = self.schema[fieldname].format.fixed_value_size()
            terminfo = _write_postings(buf, offset, self.pool.terms[key], flen, codec._blocklimit,
                                       codec._compression, values_size)
            fw._tindex.add(pack_ushort(fw._fieldid) + tbytes, terminfo.to_bytes())
            if len(buf) > 1 << 20:
                offset += len(buf)
                postfile.write(bytes(buf))
                buf.clear()
        postfile.write(bytes(buf))
        if field_now is not None:
            fw.finish_field()
        fw.close()


def _write_postings(out: bytearray, offset: int, postings: list[tuple[int, float, bytes]], flen: list[int],
                    limit: int, compression: int, values_size: int | None) -> W3TermInfo:
    """Append one term's posting list to `out` (which starts at file `offset`) in the W3 codec's
    block format, as its W3PostingsWriter writes it (tests compare every term and posting),
    without its per-posting method calls and per-write file calls."""
    terminfo = W3TermInfo()
    start = offset + len(out)
    out += WHOOSH3_HEADER_MAGIC
    n = len(postings)
    for i in range(0, n, limit):
        ids, weights, values = zip(*postings[i:i + limit])
        warr = array("f", weights)
        lengths = [x for x in [flen[d] for d in ids] if x]
        minlength = min(lengths) if lengths else None
        maxlength = max(lengths, default=0)
        maxweight = max(0, max(weights))
        # W3TermInfo.add_block
        terminfo._weight += sum(warr)
        terminfo._df += len(ids)
        terminfo._minlength = minlength if terminfo._minlength is None else min(terminfo._minlength, minlength)
        terminfo._maxlength = max(terminfo._maxlength, maxlength)
        terminfo._maxweight = max(terminfo._maxweight, maxweight)
        if terminfo._minid is None:
            terminfo._minid = ids[0]
        terminfo._maxid = ids[-1]
        # W3PostingsWriter._write_block
        first = warr[0]
        mini_weights = (None if all(w == 1.0 for w in warr) else first if all(w == first for w in warr)
                        else tuple(warr))
        present = [v for v in values if v]
        mini_values = (tuple(present) if values_size is None or values_size < 0 else None if values_size == 0
                       else b"".join(present))
        data = dumps((tuple(delta_encode(ids)), mini_weights, mini_values), 2)
        # Whoosh meant to skip compressing tiny blocks (a bug compresses all): zlib costs ~25 us a
        # call and saves nothing on a pickle this small. The reader checks each block's flag.
        comp = compression if len(data) >= SMALL_BLOCK else 0
        if comp:
            data = zlib.compress(data, comp)
        info = dumps((len(ids), ids[-1], maxweight, comp, length_to_byte(minlength),
                      length_to_byte(maxlength)), 2)
        size = len(info) + len(data)
        out += pack_int(-size if i + limit >= n else size)
        out += info
        out += data
    terminfo.set_extent(start, offset + len(out) - start)
    return terminfo


def _write_part(ix: windex.Index, docs: Iterator[dict], total: int, progress: Progress | None) -> None:
    writer = _Writer(ix, limitmb=256)
    for i, doc in enumerate(docs):
        writer.add_document(**doc)
        if progress:
            progress("index", i + 1, total)
    writer.commit()


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
        "dictionary_hash": tokenizer.dictionary_hash, "words": tokenizer.words, "build_id": corpus.build_id,
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
    tokenizer = bank_tokenizer(corpus.names)
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
    their questions) replaced. When the analyzer's dictionary changed (an entry was renamed,
    a tag added), the documents whose text contains a word that entered or left it are
    replaced too: a text that contains none of them segments exactly as before. False, writing
    nothing, when the previous index cannot be used."""
    tokenizer = bank_tokenizer(corpus.names)
    try:
        before = json.loads((previous / DOCS_FILE).read_text(encoding="utf-8"))
        segments = max(len(windex.open_dir(str(previous), indexname=name)._segments()) for name in (MAIN, QUESTIONS))
    except (OSError, ValueError, windex.IndexError):
        return False
    if segments >= MAX_SEGMENTS:
        return False  # each incremental build adds a segment: now and then, one fresh segment again
    if before.get("dictionary_hash") != tokenizer.dictionary_hash:
        if not isinstance(before.get("words"), list):
            return False
        moved = set(tokenizer.words) ^ set(before["words"])
        changed = changed | {e.id for e in corpus.entries.values() if mentions(e.source, moved)}
    schema = make_schema(tokenizer)
    # Hard links, not copies: Whoosh never rewrites a file (new segments and TOCs get new names,
    # deletions live in the TOC) and only unlinks obsolete ones. Its lock file is made anew.
    shutil.copytree(previous, folder, copy_function=os.link, ignore=shutil.ignore_patterns("*_WRITELOCK", DOCS_FILE))
    touched = changed | removed
    fresh = [corpus.entries[i] for i in sorted(changed) if i in corpus.entries]
    for indexname, keys, docs in (
        (None, touched, _entry_docs(fresh)),
        (QUESTIONS, {q for i in touched for q in old_questions.get(i, [])}, _question_docs(fresh)),
    ):
        ix = windex.open_dir(str(folder), indexname=indexname) if indexname else windex.open_dir(str(folder))
        writer = _Writer(ix)  # a new segment beside the old ones (docnums start at 0 in it)
        writer.schema = schema  # the new analyzer: for the new documents and, in the TOC, for queries
        if keys:
            writer.delete_by_query(Or([Term("key", key) for key in sorted(keys)]))
        for doc in docs:
            writer.add_document(**doc)
        writer.commit(merge=False)
        ix.close()
    _write_docs(corpus, folder, tokenizer)
    return True
