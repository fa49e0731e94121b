"""GET /entries and GET /entries/{id}."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import BankDep
from api.errors import ERROR_RESPONSES, ApiError
from api.schemas import EntryList, EntryOut
from api.routes.questions import question_out
from kb.bank import Bank, Edge

router = APIRouter(tags=["entries"], responses=ERROR_RESPONSES)


def not_found(bank: Bank, what: str, name: str) -> ApiError:
    close = bank.suggest(name)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see /entries for every id"
    return ApiError(404, "not_found", f"no {what} '{name}'{hint}")


def edge_out(bank: Bank, e: Edge, other: str) -> dict:
    return {"source": e.source, "target": e.target, "kind": e.kind, "title": bank.titles.get(other, other)}


@router.get("/entries", response_model=EntryList)
def list_entries(
    bank: BankDep,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """Entries in id order, optionally filtered by tag or category."""
    total, entries = bank.entries(tag=tag, category=category, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "entries": entries}


@router.get("/entries/{entry_id}", response_model=EntryOut)
def get_entry(bank: BankDep, entry_id: Annotated[str, Path(max_length=200)]) -> dict:
    """One entry: metadata, rendered HTML, Markdown source, edges both ways, questions."""
    found = bank.entry(entry_id)
    if found is None:
        raise not_found(bank, "entry", entry_id)
    row, questions = found
    out_edges = bank.out.get(row.id, [])
    by_kind = {k: [edge_out(bank, e, e.target) for e in out_edges if e.kind == k]
               for k in ("prerequisite", "related", "link")}
    return {
        "id": row.id, "title": row.title, "aliases": json.loads(row.aliases), "category": row.category,
        "category_name": bank.categories.get(row.category, row.category), "tags": bank.tags_of.get(row.id, []),
        "difficulty": row.difficulty, "added": row.added, "summary": row.summary, "sources": json.loads(row.sources),
        "html": row.body_html, "markdown": row.body_md, "headings": json.loads(row.headings),
        "prerequisites": by_kind["prerequisite"], "related": by_kind["related"], "links": by_kind["link"],
        "backlinks": [edge_out(bank, e, e.source) for e in bank.incoming.get(row.id, [])],
        "questions": [question_out(bank, q) for q in questions], "url": f"{row.id}.html",
    }
