"""Writing the search index: two Whoosh indexes (entries, questions) and docs.json per build.

The schema's analyzer and format live in kb.analysis (a stable import path: Whoosh pickles them
into the index). Writing is the slow part of a build, so it avoids Whoosh's per-posting
overheads where it safely can (see _Writer: the same segment files, compared posting by posting
in tests/test_indexing.py) and writes the questions' index in a forked process while the
entries' index is written. An incremental build adds a segment (see update_index).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from hashlib import md5
from itertools import chain
from operator import sub
from pathlib import Path
from pickle import dumps

from whoosh import index as windex
from whoosh.analysis import IDTokenizer
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.filedb.filetables import OrderedHashWriter, _lengths, _pointer
from whoosh.formats import Existence, Frequency
from whoosh.query import Or, Term
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from kb.analysis import BankFrequency, BankTokenizer, bank_tokenizer, mentions
from kb.forking import fork
from kb.model import Corpus, Entry

DOCS_FILE = "docs.json"
BLOCK_POSTINGS = 512  # postings per block of a posting list (Whoosh's default: 128)
SMALL_BLOCK = 512  # bytes of pickled postings below which a block is stored uncompressed
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


class _Writer(SegmentWriter):
    """Whoosh's segment writer for our schema (a fresh index, or a new segment beside existing
    ones), writing the same segment files in a fraction of the time: each document's terms are
    counted once (the bank's analyzer memoizes counts the build computed in parallel, see
    `kb.analysis.primed`) and pooled per term as flat (docnum, frequency) lists;
    at the end each term's posting list is written in the codec's block format whole, and the
    term table in one write, instead of Whoosh's few calls (with type asserts, a field-length
    lookup and an md5 hex string) per posting. Fields with vectors, columns or spelling, or
    formats other than Existence and Frequency, are not supported (checked on creation)."""

    def __init__(self, ix: windex.Index, **kwargs: object) -> None:
        kwargs.setdefault("codec", W3Codec(blocklimit=BLOCK_POSTINGS))
        super().__init__(ix, **kwargs)
        for name, field in self.schema.items():
            if field.vector or field.column_type or field.separate_spelling() or \
                    not isinstance(field.format, (Existence, Frequency)) or field.format.posting_size not in (0, 4):
                raise ValueError(f"bulk index writer: field {name!r} needs Whoosh's own writer")
        self.pool.cleanup()
        self._postings: dict[str, dict[str, list[int]]] = {}  # field -> term -> [docnum, freq, docnum, freq...]
        self._lengths: dict[str, list[int]] = {}  # per field, per docnum: length as the reader sees it
        self._seen: dict[tuple[int, str], dict[str, int]] = {}  # see _term_freqs

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
                length = _pool(self._postings.setdefault(name, {}), docnum, _term_freqs(field, value, self._seen))
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
        postfile = fw._postfile
        offset = postfile.tell()
        buf = bytearray()  # postings bytes not yet written; one file write per MiB
        records: list[tuple[bytes, bytes]] = []  # the term table: (field id + term, term info)
        for fieldname in sorted(self._postings):
            field = self.schema[fieldname]
            fw.start_field(fieldname, field)  # registers the field's id
            prefix = pack_ushort(fw._fieldid)
            flen = self._lengths.get(fieldname, [])
            flen.extend([0] * (self.docnum - len(flen)))
            block = _BlockFormat(field.format, flen, codec._blocklimit, codec._compression)
            terms = self._postings[fieldname]
            for term in sorted(terms):  # code point order is UTF-8 byte order
                records.append((prefix + term.encode("utf-8"), block.write(buf, offset, terms[term])))
                if len(buf) > 1 << 20:
                    offset += len(buf)
                    postfile.write(bytes(buf))
                    buf.clear()
            fw.finish_field()
        postfile.write(bytes(buf))
        _write_term_table(fw._tindex, records)
        fw._tindex._write_hashes = partial(_write_hashes, fw._tindex)  # what fw.close() calls, faster
        fw.close()


def _term_freqs(field: object, value: object, seen: dict) -> dict[str, int]:
    """A field value's terms and their frequencies, as Whoosh's field.index would give them.
    `seen`: values analyzed by Whoosh's own analyzers before (a question repeats its entry's tags)."""
    analyzer = field.analyzer
    if isinstance(analyzer, BankTokenizer) and isinstance(field.format, BankFrequency):
        return analyzer.term_counts(value)
    if type(analyzer) is IDTokenizer and isinstance(value, str):
        return {value: 1}  # the whole value is the one term
    key = (id(field), value) if isinstance(value, str) else None
    freqs = seen.get(key) if key else None
    if freqs is None:
        freqs = {tbytes.decode("utf-8"): freq for tbytes, freq, _, _ in field.index(value)}
        if key:
            seen[key] = freqs
    return freqs


def _pool(terms: dict[str, list[int]], docnum: int, freqs: dict[str, int]) -> int:
    """Add one field's postings to its pool; the field's length in terms."""
    get = terms.get
    for term, n in freqs.items():
        postings = get(term)
        if postings is None:
            terms[term] = [docnum, n]
        else:
            postings += (docnum, n)
    return sum(freqs.values())


class _BlockFormat:
    """Writes posting lists of one field in the W3 codec's block format, as its W3PostingsWriter
    does (tests compare every term and posting), from flat [docnum, freq, ...] lists."""

    def __init__(self, fmt: Existence | Frequency, flen: list[int], limit: int, compression: int) -> None:
        self.boost = float(fmt.field_boost)
        self.boost32 = array("f", (self.boost,))[0]
        self.existence = fmt.posting_size == 0  # weight = boost, no value; else freq * boost and a uint
        self.flen = flen
        self.limit = limit
        self.compression = compression
        # a power of two (1.0, 2.0, 4.0...) times whole frequencies is exact in float32
        self.exact = not self.existence and math.frexp(self.boost)[0] == 0.5 and self.boost >= 1.0
        self.byte_of: dict[int | None, int] = {}  # length_to_byte, memoized
        self.single: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # see _write_one

    def _byte(self, length: int | None) -> int:
        b = self.byte_of.get(length)
        if b is None:
            b = self.byte_of[length] = length_to_byte(length)
        return b

    def write(self, out: bytearray, offset: int, flat: list[int]) -> bytes:
        """Append a term's postings to `out` (which starts at file `offset`); its term info bytes."""
        n = len(flat) >> 1
        if n == 1:
            return self._write_one(out, offset, *flat)
        all_ids, all_freqs = flat[0::2], flat[1::2]
        start = offset + len(out)
        out += WHOOSH3_HEADER_MAGIC
        weight_sum = 0.0
        minlength = None
        maxlength = maxweight = 0
        limit = self.limit
        boost = self.boost
        flen = self.flen
        for i in range(0, n, limit):
            # most terms fit one block: no copies then
            ids, freqs = (all_ids, all_freqs) if n <= limit else (all_ids[i:i + limit], all_freqs[i:i + limit])
            k = len(ids)
            lengths = [flen[d] for d in ids]
            low = min(lengths)
            if not low:  # Whoosh leaves a document's zero length out (unscorable fields: all zero)
                lengths = [x for x in lengths if x]
                low = min(lengths) if lengths else None
            high = max(lengths, default=0)
            if self.existence:  # every weight is the boost (as float32 in the block)
                values = None
                top = max(0, boost * 1.0)
                weight_sum += self.boost32 * k  # exact: the sum of k float32 copies in a double
                mini_weights = None if self.boost32 == 1.0 else self.boost32
            elif self.exact:
                # Whole frequencies times a power of two are exact in the block's float32 array:
                # its sum and its all-ones and all-equal checks need no array
                values = struct.pack(f"!{k}I", *freqs)  # pack_uint of each
                fmax = max(freqs)
                top = max(0, fmax * boost)
                weight_sum += sum(freqs) * boost
                if min(freqs) == fmax:
                    mini_weights = None if fmax * boost == 1.0 else fmax * boost
                else:
                    mini_weights = tuple([f * boost for f in freqs])
            else:
                values = struct.pack(f"!{k}I", *freqs)
                weights = [f * boost for f in freqs]
                warr = array("f", weights)
                top = max(0, max(weights) * 1.0)
                weight_sum += sum(warr)
                first = warr[0]
                mini_weights = None if warr.count(1.0) == k else first if warr.count(first) == k else tuple(warr)
            if minlength is None or (low is not None and low < minlength):
                minlength = low
            if high > maxlength:
                maxlength = high
            if top > maxweight:
                maxweight = top
            data = dumps((tuple(map(sub, ids, [0, *ids[:-1]])), mini_weights, values), 2)  # delta-coded ids
            # Whoosh meant to skip compressing tiny blocks (a bug compresses all): zlib costs ~25 us
            # a call; under 512 bytes it saves little (the index grows ~10%, reads skip inflating).
            # The reader checks each block's flag.
            comp = self.compression if len(data) >= SMALL_BLOCK else 0
            if comp:
                data = zlib.compress(data, comp)
            info = dumps((k, ids[-1], top, comp, self._byte(low), self._byte(high)), 2)
            size = len(info) + len(data)
            out += pack_int(-size if i + limit >= n else size)
            out += info
            out += data
        # W3TermInfo.to_bytes of a posting list that is not inlined
        return (W3TermInfo._struct.pack(0, weight_sum, n, self._byte(minlength), self._byte(maxlength), maxweight,
                                        all_ids[0], all_ids[-1])
                + pack_long(start) + pack_int(offset + len(out) - start))

    def _write_one(self, out: bytearray, offset: int, docnum: int, freq: int) -> bytes:
        """`write` for a term in one document (half the terms of a bank), the same bytes, faster:
        such a block depends only on (document, frequency), which a document's rare terms share
        (most occur once), so its bytes are made once per pair and only the offset differs."""
        start = offset + len(out)
        made = self.single.get((docnum, freq))
        if made is None:
            made = self.single[(docnum, freq)] = self._single(docnum, freq)
        block, info = made
        out += block
        return info + pack_long(start) + pack_int(len(block))

    def _single(self, docnum: int, freq: int) -> tuple[bytes, bytes]:
        """The block of a posting list of one posting, and its term info up to the offset."""
        if self.existence:
            weight, values = self.boost, None
        else:
            weight, values = freq * self.boost, pack_uint(freq)
        stored = array("f", (weight,))[0]  # the weight as the block's float32 array holds it
        length = self.flen[docnum]
        low, high = (length, length) if length else (None, 0)
        top = max(0, weight * 1.0)
        data = dumps(((docnum,), None if stored == 1.0 else stored, values), 2)
        comp = self.compression if len(data) >= SMALL_BLOCK else 0
        if comp:
            data = zlib.compress(data, comp)
        info = dumps((1, docnum, top, comp, self._byte(low), self._byte(high)), 2)
        block = WHOOSH3_HEADER_MAGIC + pack_int(-(len(info) + len(data))) + info + data
        return block, W3TermInfo._struct.pack(0, stored, 1, self._byte(low), self._byte(high), top, docnum, docnum)


def _write_term_table(tindex: OrderedHashWriter, records: list[tuple[bytes, bytes]]) -> None:
    """Add sorted (key, value) records to Whoosh's term table in one file write, as as many calls
    of its `add` would (record layout, md5 bucket hashes, the ordered positions array)."""
    if tindex.hashtype != 0:
        raise ValueError("bulk index writer: the term table must use md5 hashing")
    dbfile = tindex.dbfile
    base = dbfile.tell()
    buf = bytearray()
    buckets = tindex.buckets
    positions = tindex.index
    for key, value in records:
        pos = base + len(buf)
        positions.append(pos)
        buf += _lengths.pack(len(key), len(value))
        buf += key
        buf += value
        h = int.from_bytes(md5(key, usedforsecurity=False).digest()[-4:], "big")  # whoosh's md5_hash
        buckets[h & 255].append((h, pos))
    dbfile.write(bytes(buf))
    if records:
        tindex.lastkey = records[-1][0]


def _write_hashes(tindex: OrderedHashWriter) -> None:
    """Whoosh's `HashWriter._write_hashes` (256 open-addressing tables of (hash, position)
    slots), each table in one write instead of one call per slot."""
    dbfile = tindex.dbfile
    empty = (0, 0)
    for entries in tindex.buckets:
        numslots = 2 * len(entries)
        tindex.directory.append((dbfile.tell(), numslots))
        table = [empty] * numslots
        for hashval, position in entries:
            slot = (hashval >> 8) % numslots
            while table[slot] != empty:  # linear probing, as Whoosh's reader expects
                slot = (slot + 1) % numslots
            table[slot] = (hashval, position)
        dbfile.write(b"".join([_pointer.pack(h, p) for h, p in table]))


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


def analyzed_texts(corpus: Corpus) -> list[str]:
    """Every text the index analyzes (names, leads, bodies, questions, answers): what a full
    build counts terms of up front (`kb.analysis.primed`); the site's search data analyzes
    most of the same texts."""
    entries = corpus.entries.values()
    return [doc[name] for doc in chain(_entry_docs(entries), _question_docs(entries))
            for name in ("names", "lead", "text", "qlead", "qtext") if doc.get(name)]


def _write_docs(corpus: Corpus, folder: Path) -> None:
    """The texts search snippets are cut from (kb.search), beside the index: `docs.json`, the
    bank's entries and questions by id, joined from each entry's remembered JSON (`remember_docs`)."""
    parts = [_doc_parts(e) for e in corpus.entries.values()]
    text = "".join(['{"build_id": ', json.dumps(corpus.build_id), ', "entries": {', ", ".join(p[0] for p in parts),
                    '}, "questions": {', ", ".join(p[1] for p in parts if p[1]), "}}"])
    path = folder / DOCS_FILE
    if path.exists():
        path.unlink()  # never write through a hard link into the previous build
    path.write_bytes(text.encode())


def _doc_parts(e: Entry) -> tuple[str, str]:
    """An entry's members of docs.json's "entries" and of its "questions", as JSON text,
    remembered per version of the entry."""
    key = (e.id, e.content_hash, e.rendered_hash)
    hit = _DOC_PARTS.get(key)
    if hit is None:
        entry = {e.id: {"title": e.title, "aliases": e.aliases, "category": e.category, "tags": e.tags,
                        "summary": e.summary, "text": e.body_text}}
        questions = {q.id: {"entry_id": e.id, "q": q.q, "text": q.answer_text} for q in e.questions}
        if len(_DOC_PARTS) > 1 << 16:  # a long `kb build --watch` session: start afresh
            _DOC_PARTS.clear()
        hit = _DOC_PARTS[key] = (_to_json(entry)[1:-1], _to_json(questions)[1:-1])
    return hit


_DOC_PARTS: dict[tuple[str, str, str], tuple[str, str]] = {}
_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps makes an encoder per call


def remember_docs(corpus: Corpus) -> None:
    """Make docs.json's part of every entry now, in this process: `kb build --watch` does it
    while it waits for the next edit, so the index's process that its next build forks joins
    them instead of serializing the bank again (and copying every page that holds a text)."""
    for e in corpus.entries.values():
        _doc_parts(e)


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
    _write_docs(corpus, folder)


def update_index(corpus: Corpus, folder: Path, previous: Path, changed: set[str], removed: set[str],
                 old_questions: dict[str, list[str]]) -> bool:
    """Write `folder` as a copy of the `previous` index with only the changed entries (and
    their questions) replaced. When the analyzer's dictionary changed (an entry was renamed,
    a tag added), the documents whose text contains a word that entered or left it are
    replaced too: a text that contains none of them segments exactly as before. False, writing
    nothing, when the previous index cannot be used."""
    tokenizer = bank_tokenizer(corpus.names)
    try:
        indexes = [windex.open_dir(str(previous), indexname=name) for name in (MAIN, QUESTIONS)]
        segments = max(len(ix._segments()) for ix in indexes)
        before = indexes[0].schema["names"].analyzer  # the analyzer the previous build indexed with
    except (OSError, ValueError, KeyError, windex.IndexError):
        return False
    if segments >= MAX_SEGMENTS or not isinstance(before, BankTokenizer) or not (previous / DOCS_FILE).is_file():
        return False  # each incremental build adds a segment: now and then, one fresh segment again
    if before.words != tokenizer.words:
        moved = set(tokenizer.words) ^ set(before.words)
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
    _write_docs(corpus, folder)
    return True
