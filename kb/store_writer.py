"""Writing the SQLite store: plain sqlite3, so a build never imports SQLAlchemy (0.8 s here).

The tables are declared once, as SQLModel classes in kb.store (what the API reads with).
SCHEMA below is the DDL SQLModel emits for them; tests/test_build.py regenerates it and fails
when the two differ (print it anew with `python -m kb.store_writer`). A full build writes a new
file; an incremental one copies the previous file and replaces only the changed entries' rows.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from kb.model import Corpus, Entry

DB_NAME = "kb.sqlite"

SCHEMA = """
CREATE TABLE entries (
	id VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	aliases VARCHAR NOT NULL, 
	category VARCHAR NOT NULL, 
	difficulty INTEGER NOT NULL, 
	added DATE, 
	summary VARCHAR NOT NULL, 
	sources VARCHAR NOT NULL, 
	headings VARCHAR NOT NULL, 
	body_md VARCHAR NOT NULL, 
	body_html VARCHAR NOT NULL, 
	body_text VARCHAR NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_entries_category ON entries (category);
CREATE TABLE categories (
	"key" VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE meta (
	"key" VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE questions (
	id VARCHAR NOT NULL, 
	entry_id VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	q VARCHAR NOT NULL, 
	answer_md VARCHAR NOT NULL, 
	answer_html VARCHAR NOT NULL, 
	difficulty INTEGER NOT NULL, 
	added DATE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(entry_id) REFERENCES entries (id)
);
CREATE INDEX ix_questions_entry_id ON questions (entry_id);
CREATE INDEX ix_questions_difficulty ON questions (difficulty);
CREATE TABLE tags (
	entry_id VARCHAR NOT NULL, 
	tag VARCHAR NOT NULL, 
	PRIMARY KEY (entry_id, tag), 
	FOREIGN KEY(entry_id) REFERENCES entries (id)
);
CREATE INDEX ix_tags_tag ON tags (tag);
CREATE TABLE links (
	id INTEGER NOT NULL, 
	source VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	anchor VARCHAR, 
	line INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(source) REFERENCES entries (id), 
	FOREIGN KEY(target) REFERENCES entries (id)
);
CREATE INDEX ix_links_target ON links (target);
CREATE INDEX ix_links_source ON links (source);
"""

ENTRY_COLUMNS = ("id", "path", "title", "aliases", "category", "difficulty", "added", "summary", "sources",
                 "headings", "body_md", "body_html", "body_text", "content_hash")
QUESTION_COLUMNS = ("id", "entry_id", "position", "q", "answer_md", "answer_html", "difficulty", "added")
LINK_COLUMNS = ("source", "target", "kind", "anchor", "line")


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _insert(db: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    db.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


def _insert_entries(db: sqlite3.Connection, entries: list[Entry]) -> None:
    _insert(db, "entries", ENTRY_COLUMNS, (
        (e.id, e.path, e.title, _json(e.aliases), e.category, e.difficulty, e.added and e.added.isoformat(),
         e.summary, _json(e.sources), _json([h.__dict__ for h in e.headings]), e.body_md, e.body_html,
         e.body_text, e.content_hash) for e in entries))
    _insert(db, "questions", QUESTION_COLUMNS, (
        (q.id, q.entry_id, q.position, q.q, q.answer_md, q.answer_html, q.difficulty, q.added and q.added.isoformat())
        for e in entries for q in e.questions))
    _insert(db, "tags", ("entry_id", "tag"), ((e.id, t) for e in entries for t in dict.fromkeys(e.tags)))
    _insert(db, "links", LINK_COLUMNS, ((l.source, l.target, l.kind, l.anchor, l.line) for e in entries for l in e.links))


def _write_bank_rows(db: sqlite3.Connection, corpus: Corpus) -> None:
    """Rows that describe the whole bank: categories and build metadata."""
    db.execute("DELETE FROM categories")
    db.execute("DELETE FROM meta")
    _insert(db, "categories", ("key", "name", "position"),
            ((k, v, i) for i, (k, v) in enumerate(corpus.categories.items())))
    _insert(db, "meta", ("key", "value"), (
        ("build_id", corpus.build_id), ("entries", str(len(corpus.entries))),
        ("questions", str(sum(len(e.questions) for e in corpus.entries.values())))))


def _connect(path: Path) -> sqlite3.Connection:
    """A connection for writing a build's staging copy: no rollback journal and no fsync, since
    a failed build's folder is thrown away whole and a good one is swapped in by a rename."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    return db


def write_store(corpus: Corpus, path: Path) -> None:
    """Write the whole corpus into a new SQLite file at `path`."""
    db = _connect(path)
    try:
        with db:
            db.executescript(SCHEMA)
            _insert_entries(db, list(corpus.entries.values()))
            _write_bank_rows(db, corpus)
    finally:
        db.close()


def update_store(corpus: Corpus, path: Path, previous: Path, changed: set[str], removed: set[str]) -> None:
    """Write `path` as a copy of the `previous` store with only the changed and removed entries'
    rows replaced (a copy, never a hard link: SQLite writes in place)."""
    shutil.copyfile(previous, path)
    db = _connect(path)
    try:
        with db:
            gone = [(i,) for i in sorted(changed | removed)]
            for table, column in (("links", "source"), ("tags", "entry_id"), ("questions", "entry_id"),
                                  ("entries", "id")):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", gone)
            _insert_entries(db, [corpus.entries[i] for i in sorted(changed) if i in corpus.entries])
            _write_bank_rows(db, corpus)
    finally:
        db.close()


if __name__ == "__main__":
    print(SCHEMA.strip())
