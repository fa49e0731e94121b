"""Public response shapes (separate from the storage rows)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class SearchHit(BaseModel):
    kind: str
    entry_id: str
    question_id: str | None
    title: str
    snippet: str
    score: float
    url: str
    tags: list[str]
    category: str
    explain: dict[str, int] | None = None


class SearchOut(BaseModel):
    query: str
    total: int
    took_ms: float
    results: list[SearchHit]
    facets: dict[str, dict[str, int]]


class EntrySummary(BaseModel):
    id: str
    title: str
    category: str
    difficulty: int
    summary: str
    tags: list[str]
    questions: int
    url: str


class EntryList(BaseModel):
    total: int
    limit: int
    offset: int
    entries: list[EntrySummary]


class EdgeOut(BaseModel):
    source: str
    target: str
    kind: str
    title: str


class QuestionOut(BaseModel):
    id: str
    entry_id: str
    entry_title: str
    q: str
    answer_md: str
    answer_html: str
    difficulty: int
    added: date | None
    url: str


class DailyOut(QuestionOut):
    date: date


class HeadingOut(BaseModel):
    level: int
    text: str
    slug: str


class EntryOut(BaseModel):
    id: str
    title: str
    aliases: list[str]
    category: str
    category_name: str
    tags: list[str]
    difficulty: int
    added: date | None
    summary: str
    sources: list[str]
    html: str
    markdown: str
    headings: list[HeadingOut]
    prerequisites: list[EdgeOut]
    related: list[EdgeOut]
    links: list[EdgeOut]
    backlinks: list[EdgeOut]
    questions: list[QuestionOut]
    url: str


class TagCount(BaseModel):
    tag: str
    count: int


class TagsOut(BaseModel):
    tags: list[TagCount]


class CategoryOut(BaseModel):
    key: str
    name: str


class CategoriesOut(BaseModel):
    categories: list[CategoryOut]


class GraphNode(BaseModel):
    id: str
    title: str


class GraphEdge(BaseModel):
    source: str
    target: str
    kind: str


class GraphOut(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class PathOut(BaseModel):
    source: str
    target: str
    path: list[str]
    length: int


class HealthOut(BaseModel):
    status: str
    build_id: str
    entries: int
    questions: int
