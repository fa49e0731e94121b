"""One error shape for every endpoint: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error a person can act on; `status` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


ERROR_RESPONSES: dict = {
    404: {"model": ErrorBody, "description": "Not found (the message suggests close ids)"},
    422: {"model": ErrorBody, "description": "A parameter is invalid (the message says what to change)"},
}


def _describe(err: dict) -> tuple[str, str]:
    """(code, message) for one validation error, phrased as what to change."""
    where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
    got, kind = err.get("input"), err.get("type", "")
    if where == "q" and kind in ("string_too_short", "string_pattern_mismatch"):
        return "empty_query", "q is empty: give a term to search for, e.g. /search?q=MoE"
    if where == "q" and kind == "string_too_long":
        return "query_too_long", f"q has {len(got)} characters; shorten it to {err['ctx']['max_length']} or fewer"
    if where == "date" and kind.startswith("date"):
        return "invalid_date", f"date '{got}' is not a date; use YYYY-MM-DD, e.g. 2026-11-29"
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) and len(repr(got)) < 80 else ""
    return "invalid_parameter", f"{where}: {err.get('msg', 'invalid value')}{shown}"


def install(app: FastAPI) -> None:
    """Route every error through the one shape; never a traceback, never a bare 500 page."""

    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        described = [_describe(e) for e in exc.errors()]
        return error_response(422, described[0][0], "; ".join(m for _, m in described))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such endpoint; see /docs" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_req: Request, _exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", "the server failed to answer this request; it has been logged")
