"""Typed records of the bank: front-matter models, entries, questions, links, issues, corpus."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Page names the static site uses at its root; an entry may not take them.
RESERVED_IDS = frozenset({"index", "search", "practice", "map", "questions", "404", "sitemap", "feed"})
EdgeKind = Literal["link", "prerequisite", "related"]


@dataclass(frozen=True, order=True)
class Issue:
    """One problem of the bank, the single shape every check reports."""

    path: str
    line: int
    severity: Literal["error", "warning"]
    code: str
    message: str
    hint: str = ""

    def format(self) -> str:
        text = f"{self.path}:{self.line}: {self.severity} [{self.code}] {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class QuestionFM(BaseModel):
    """A question as written in front-matter."""

    model_config = ConfigDict(extra="forbid")

    id: str
    q: str = Field(min_length=1)
    a: str = Field(min_length=1)
    difficulty: StrictInt | None = Field(default=None, ge=1, le=3)
    added: date | None = None


class FrontMatter(BaseModel):
    """The front-matter of an entry file; unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str = Field(min_length=1)
    aliases: list[str] = []
    category: str
    tags: list[str] = []
    difficulty: StrictInt = Field(default=2, ge=1, le=3)
    added: date | None = None
    summary: str = ""
    prerequisites: list[str] = []
    related: list[str] = []
    sources: list[str] = []
    questions: list[QuestionFM] = []


@dataclass
class Link:
    """An edge of the concept graph: `source` links to `target` as `kind`."""

    source: str
    target: str
    kind: EdgeKind
    line: int
    anchor: str | None = None


@dataclass
class Heading:
    level: int
    text: str
    slug: str


@dataclass
class Question:
    id: str
    entry_id: str
    position: int
    q: str
    answer_md: str
    answer_html: str
    answer_text: str
    difficulty: int
    added: date | None
    line: int


@dataclass
class Entry:
    id: str
    path: str  # as reported to authors, e.g. entries/hnsw.md
    title: str
    aliases: list[str]
    category: str
    tags: list[str]
    difficulty: int
    added: date | None
    summary: str
    prerequisites: list[str]
    related: list[str]
    sources: list[str]
    body_md: str
    body_html: str
    body_text: str
    headings: list[Heading]
    questions: list[Question]
    links: list[Link]  # outgoing edges, all kinds, deduplicated
    content_hash: str
    source: str  # the whole file as written
    rendered_hash: str = ""  # of what it renders to: changes without the source when a linked entry is renamed


@dataclass
class Corpus:
    """The validated, linked and rendered bank: what every emitter consumes."""

    entries: dict[str, Entry]
    categories: dict[str, str]
    issues: list[Issue]
    backlinks: dict[str, list[Link]] = field(default_factory=dict)
    input_hash: str = ""
    cache: object = None  # kb.loading.LoadCache: what the load parsed, for the next build to reuse

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def questions(self) -> dict[str, Question]:
        return {q.id: q for e in self.entries.values() for q in e.questions}

    @property
    def names(self) -> list[str]:
        """Every title, alias and tag: the words the bank's analyzer keeps whole."""
        return [n for e in self.entries.values() for n in (e.title, *e.aliases, *e.tags)]

    @property
    def edges(self) -> list[Link]:
        return [link for e in self.entries.values() for link in e.links]

    @property
    def build_id(self) -> str:
        return self.input_hash[:12]
