"""GET /search: multi-route recall fused with RRF (see kb.search)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import BankDep
from api.errors import ERROR_RESPONSES
from api.schemas import SearchOut

router = APIRouter(tags=["search"], responses=ERROR_RESPONSES)
MAX_QUERY = 500


@router.get("/search", response_model=SearchOut)
def search(
    bank: BankDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, pattern=r"\S",
                            description="What to look for: a term, an alias, a question, in Chinese or English.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    kind: Literal["entry", "question"] | None = None,
    explain: bool = False,
) -> dict:
    """Search entries and questions. Query syntax characters are plain text."""
    result = bank.index.search(q.strip(), limit=limit, offset=offset, tag=tag, category=category, kind=kind)
    return {
        "query": result.query, "total": result.total, "took_ms": result.took_ms, "facets": result.facets,
        "results": [h.as_dict(explain=explain) for h in result.results],
    }
