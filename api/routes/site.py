"""The static site under /site/, served from the current build; `/` redirects there.

Paths are resolved against the site folder of the build this request reads and refused if
they leave it (`..`, encoded variants, symlinks out), so only files of site/ are reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.deps import BankDep
from api.errors import error_response

router = APIRouter(include_in_schema=False)


def _inside(root: Path, rel: str) -> Path | None:
    if "\x00" in rel or "\\" in rel:
        return None
    candidate = Path(os.path.realpath(root / rel.lstrip("/")))
    if candidate != root and root not in candidate.parents:
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/site/", status_code=307)


@router.get("/site")
def site_root() -> RedirectResponse:
    return RedirectResponse("/site/", status_code=307)


@router.get("/site/{rel:path}")
def site_file(bank: BankDep, request: Request, rel: str) -> Response:
    root = Path(os.path.realpath(bank.path / "site"))
    found = _inside(root, rel)
    if found is not None:
        return FileResponse(found, headers={"ETag": f'W/"{bank.build_id}"', "Cache-Control": "public, max-age=60"})
    page = root / "404.html"
    if "text/html" in request.headers.get("accept", "") and page.is_file():
        return FileResponse(page, status_code=404)
    return error_response(404, "not_found", f"no page '/site/{rel}' in this build")
