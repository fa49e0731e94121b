"""The SQLite store (SQLModel): the tables of record, and the read-only engine that serves them.

Tables mirror the Corpus: entries, questions, tags, links, categories and build metadata.
Lists inside an entry (aliases, sources, headings) are JSON columns: they are read whole.
A build writes the file through kb.store_writer (plain sqlite3, the DDL these classes emit).
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool
from sqlmodel import Field, Session, SQLModel, create_engine, select

from kb.store_writer import DB_NAME

__all__ = ["DB_NAME", "CategoryRow", "EntryRow", "LinkRow", "MetaRow", "QuestionRow", "TagRow", "open_readonly",
           "read_meta"]


class EntryRow(SQLModel, table=True):
    __tablename__ = "entries"
    id: str = Field(primary_key=True)
    path: str
    title: str
    aliases: str  # JSON list
    category: str = Field(index=True)
    difficulty: int
    added: date | None = None
    summary: str
    sources: str  # JSON list
    headings: str  # JSON list of {level, text, slug}
    body_md: str
    body_html: str
    body_text: str
    content_hash: str


class QuestionRow(SQLModel, table=True):
    __tablename__ = "questions"
    id: str = Field(primary_key=True)
    entry_id: str = Field(index=True, foreign_key="entries.id")
    position: int
    q: str
    answer_md: str
    answer_html: str
    difficulty: int = Field(index=True)
    added: date | None = None


class TagRow(SQLModel, table=True):
    __tablename__ = "tags"
    entry_id: str = Field(primary_key=True, foreign_key="entries.id")
    tag: str = Field(primary_key=True, index=True)


class LinkRow(SQLModel, table=True):
    __tablename__ = "links"
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True, foreign_key="entries.id")
    target: str = Field(index=True, foreign_key="entries.id")
    kind: str
    anchor: str | None = None
    line: int


class CategoryRow(SQLModel, table=True):
    __tablename__ = "categories"
    key: str = Field(primary_key=True)
    name: str
    position: int


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


def open_readonly(path: Path) -> Engine:
    """An engine on a finished store that can never write to it (safe for many processes)."""
    uri = f"file:{path}?mode=ro&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    # A real pool: the URL "sqlite://" alone would select SingletonThreadPool (meant for :memory:),
    # which keeps 5 connections and closes other threads' connections while they are in use:
    # under 16 concurrent requests the server failed with "closed database", then segfaulted.
    # Each connection here is used by one thread at a time; 40 covers FastAPI's thread pool.
    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=8, max_overflow=40,
                           pool_timeout=30)

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record):  # noqa: ANN001
        conn.execute("PRAGMA query_only = ON")

    return engine


def read_meta(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {row.key: row.value for row in s.exec(select(MetaRow))}
