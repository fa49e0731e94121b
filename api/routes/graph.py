"""GET /graph, /path, /tags, /categories and /healthz."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import BankDep
from api.errors import ERROR_RESPONSES, ApiError
from api.routes.entries import not_found
from api.schemas import CategoriesOut, GraphOut, HealthOut, PathOut, TagsOut

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/graph", response_model=GraphOut, tags=["graph"])
def graph(bank: BankDep) -> dict:
    """Every entry and every typed edge (link, prerequisite, related)."""
    return {
        "nodes": [{"id": k, "title": t} for k, t in sorted(bank.titles.items())],
        "edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in bank.edges],
    }


@router.get("/path", response_model=PathOut, tags=["graph"])
def path(
    bank: BankDep,
    source: Annotated[str, Query(alias="from", max_length=200)],
    target: Annotated[str, Query(alias="to", max_length=200)],
) -> dict:
    """The shortest chain of links from one entry to another, e.g. rag -> ... -> faiss."""
    for name in (source, target):
        if name not in bank.titles:
            raise not_found(bank, "entry", name)
    found = bank.shortest_path(source, target)
    if found is None:
        raise ApiError(404, "no_path", f"no chain of links leads from '{source}' to '{target}'")
    return {"source": source, "target": target, "path": found, "length": len(found) - 1}


@router.get("/tags", response_model=TagsOut, tags=["entries"])
def tags(bank: BankDep) -> dict:
    """Every tag with its number of entries, most used first."""
    return {"tags": [{"tag": t, "count": n} for t, n in bank.tag_counts()]}


@router.get("/categories", response_model=CategoriesOut, tags=["entries"])
def categories(bank: BankDep) -> dict:
    """Every category key with its display name, in site order."""
    return {"categories": [{"key": k, "name": v} for k, v in bank.categories.items()]}


@router.get("/healthz", response_model=HealthOut, tags=["meta"])
def healthz(bank: BankDep) -> dict:
    """Liveness plus what is being served: build id and counts."""
    return {"status": "ok", "build_id": bank.build_id, **bank.counts}
