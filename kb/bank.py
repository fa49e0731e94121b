"""A finished build opened read-only: the store, the search index and what queries need.

Used by the API (one per served build) and by commands that read a build. Everything here
reads; nothing writes. The graph and the quiz items are small and loaded once per build.
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from kb.links import norm, shortest_path
from kb.quiz import QuizItem
from kb.search import SearchIndex
from kb.store import DB_NAME, CategoryRow, EntryRow, LinkRow, QuestionRow, TagRow, open_readonly, read_meta


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    anchor: str | None = None


class Bank:
    """One build version folder, opened read-only."""

    def __init__(self, path: Path, search_pool: int = 2) -> None:
        self.path = path
        self.engine = open_readonly(path / DB_NAME)
        try:
            meta = read_meta(self.engine)
            self.build_id = meta["build_id"]
            self.counts = {"entries": int(meta["entries"]), "questions": int(meta["questions"])}
            self.index = SearchIndex(path / "index", pool_size=search_pool)
        except BaseException:  # a build that cannot be opened must not leak its database handle
            self.engine.dispose()
            raise
        with Session(self.engine) as s:
            self.categories = {c.key: c.name for c in s.exec(select(CategoryRow).order_by(CategoryRow.position))}
            rows = s.exec(select(EntryRow.id, EntryRow.title, EntryRow.category)).all()
            self.titles = {r[0]: r[1] for r in rows}
            self.entry_category = {r[0]: r[2] for r in rows}
            self.edges = [Edge(l.source, l.target, l.kind, l.anchor) for l in s.exec(select(LinkRow).order_by(LinkRow.source, LinkRow.id))]
            tag_rows = s.exec(select(TagRow.entry_id, TagRow.tag)).all()
            self.question_counts: dict[str, int] = dict(
                s.exec(select(QuestionRow.entry_id, func.count()).group_by(QuestionRow.entry_id)).all())
        self.tags_of: dict[str, list[str]] = {}
        for entry_id, tag in tag_rows:
            self.tags_of.setdefault(entry_id, []).append(tag)
        self.out: dict[str, list[Edge]] = {}
        self.incoming: dict[str, list[Edge]] = {}
        for e in self.edges:
            self.out.setdefault(e.source, []).append(e)
            self.incoming.setdefault(e.target, []).append(e)
        self._quiz: list[QuizItem] | None = None
        self._quiz_lock = threading.Lock()
        self._names = {norm(k): k for k in self.titles} | {norm(t): k for k, t in self.titles.items()}

    def close(self) -> None:
        self.index.close()
        self.engine.dispose()

    # --- entries -------------------------------------------------------------------------
    def suggest(self, name: str) -> list[str]:
        """Entry ids close to `name` (for 404 messages)."""
        keys = difflib.get_close_matches(norm(name), list(self._names), n=3, cutoff=0.5)
        return list(dict.fromkeys(self._names[k] for k in keys))

    def entry(self, entry_id: str) -> tuple[EntryRow, list[QuestionRow]] | None:
        with Session(self.engine) as s:
            row = s.get(EntryRow, entry_id)
            if row is None:
                return None
            qs = s.exec(select(QuestionRow).where(QuestionRow.entry_id == entry_id).order_by(QuestionRow.position)).all()
            return row, list(qs)

    def entries(self, *, tag: str | None, category: str | None, limit: int, offset: int) -> tuple[int, list[dict]]:
        with Session(self.engine) as s:
            stmt = select(EntryRow.id, EntryRow.title, EntryRow.category, EntryRow.difficulty, EntryRow.summary)
            if category:
                stmt = stmt.where(EntryRow.category == category)
            if tag:
                stmt = stmt.where(EntryRow.id.in_(select(TagRow.entry_id).where(TagRow.tag == tag)))
            total = s.exec(select(func.count()).select_from(stmt.subquery())).one()
            rows = s.exec(stmt.order_by(EntryRow.id).limit(limit).offset(offset)).all()
        return total, [
            {"id": r[0], "title": r[1], "category": r[2], "difficulty": r[3], "summary": r[4],
             "tags": self.tags_of.get(r[0], []), "questions": self.question_counts.get(r[0], 0), "url": f"{r[0]}.html"}
            for r in rows
        ]

    def question(self, question_id: str) -> QuestionRow | None:
        with Session(self.engine) as s:
            return s.get(QuestionRow, question_id)

    def quiz_items(self) -> list[QuizItem]:
        """Every question as the daily/random selection sees it (built once per build, by one
        thread: at 30,000 questions it takes ~0.4 s, and 16 concurrent first requests each
        building it kept a freshly started server from answering for over 10 s)."""
        if self._quiz is not None:
            return self._quiz
        with self._quiz_lock:
            if self._quiz is not None:
                return self._quiz
            with Session(self.engine) as s:
                rows = s.exec(select(QuestionRow.id, QuestionRow.entry_id, QuestionRow.added, QuestionRow.difficulty)).all()
            self._quiz = [QuizItem(id=r[0], entry_id=r[1], added=r[2], tags=tuple(self.tags_of.get(r[1], [])),
                                   category=self.entry_category[r[1]], difficulty=r[3]) for r in rows]
        return self._quiz

    def tag_counts(self) -> list[tuple[str, int]]:
        counts = Counter(t for tags in self.tags_of.values() for t in tags)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    # --- graph ---------------------------------------------------------------------------
    def shortest_path(self, start: str, goal: str) -> list[str] | None:
        """Fewest edges from `start` to `goal`, following outgoing edges of any kind."""
        return shortest_path(lambda node: (e.target for e in self.out.get(node, [])), start, goal)
