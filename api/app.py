"""The FastAPI app: `create_app(settings)`; read-only over one build folder."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import BankHolder, NotModified, Settings
from api.routes import entries, graph, questions, search, site
from kb import __version__

# The site and the JSON API: scripts and styles from our own origin only, no inline script.
STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# Swagger UI ships an inline bootstrap script; its assets are served locally (no CDN).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Plain ASGI middleware (cheaper than BaseHTTPMiddleware): headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(("/docs", "/_docs"))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", (DOCS_CSP if docs else STRICT_CSP).encode()),
                    (b"x-frame-options", b"DENY"),
                ]
            await send(message)

        await self.app(scope, receive, wrapped)


# Request size limits, checked before any routing. uvicorn (h11) accepts a request line and
# headers of up to ~256 KiB when they arrive in one read; these answer a clear 414/431 instead.
# The longest valid query (q of 500 CJK characters, tag and category of 200, percent-encoded)
# is about 8.5 KB.
MAX_QUERY_BYTES = 16 * 1024
MAX_PATH_BYTES = 4 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


class RequestLimits:
    """Plain ASGI middleware: refuse oversized query strings, paths and header sets at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await errors.error_response(*refusal, headers={"Connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> tuple[int, str, str] | None:
        query = len(scope.get("query_string", b""))
        if query > MAX_QUERY_BYTES:
            return 414, "uri_too_long", f"the query string has {query} bytes; the limit is {MAX_QUERY_BYTES}"
        path = len(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape"))
        if path > MAX_PATH_BYTES:
            return 414, "uri_too_long", f"the path has {path} bytes; the limit is {MAX_PATH_BYTES}"
        headers = scope.get("headers", [])
        if len(headers) > MAX_HEADERS:
            return 431, "headers_too_large", f"the request has {len(headers)} headers; the limit is {MAX_HEADERS}"
        size = sum(len(k) + len(v) for k, v in headers)
        if size > MAX_HEADER_BYTES:
            return 431, "headers_too_large", f"the headers have {size} bytes; the limit is {MAX_HEADER_BYTES}"
        return None


def _docs_assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:  # pragma: no cover - a dependency; docs then fall back to the schema only
        return None
    return Path(fastapi_offline.__file__).parent / "static"


def create_app(settings: Settings) -> FastAPI:
    """The app over the build at `settings.build` (opened lazily, reopened when it changes)."""
    app = FastAPI(
        title="llm-kb API",
        version=__version__,
        description="Search and read the LLM interview question bank. Read-only; every error is "
                    '`{"error": {"code", "message"}}`.',
        docs_url=None,
        redoc_url=None,
    )
    app.state.holder = BankHolder(settings)
    errors.install(app)

    @app.exception_handler(NotModified)
    async def _not_modified(_req, exc: NotModified) -> Response:  # noqa: ANN001
        return Response(status_code=304, headers={"ETag": exc.etag})

    for module in (search, entries, questions, graph, site):
        app.include_router(module.router)

    assets = _docs_assets()
    if assets is not None:
        app.mount("/_docs", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="llm-kb API",
                                   swagger_js_url="/_docs/swagger-ui-bundle.js",
                                   swagger_css_url="/_docs/swagger-ui.css", swagger_favicon_url="/_docs/favicon.png")

    @app.on_event("startup")
    def _open() -> None:
        # Open the build before this worker takes connections (uvicorn finishes startup first):
        # at 10,000 entries opening takes seconds, which the first requests used to wait for,
        # after every start and every worker restart. No build yet: stay lazy (503 until one).
        holder: BankHolder = app.state.holder
        try:
            bank = holder.acquire()
        except errors.ApiError:
            return
        try:
            bank.quiz_items()
        finally:
            holder.release(bank)

    @app.on_event("shutdown")
    def _close() -> None:
        app.state.holder.close()

    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"],
                       allow_headers=["*"], expose_headers=["ETag"])
    app.add_middleware(RequestLimits)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`kb serve`): the build folder comes from $KB_BUILD."""
    return create_app(Settings(build=Path(os.environ.get("KB_BUILD", "build"))))
