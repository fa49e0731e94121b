"""The study site in a real browser: Debian's Chromium driven by Playwright (never a browser
download). Every test runs over file:// and over HTTP, served by the API app `kb serve` runs
(with its Content-Security-Policy) or, if that cannot be imported, by a stdlib server that
sends the same policy. Every test also checks: no console error, no failed request, no
dialog (hostile entries must not run script), and no request leaving the site.

Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import functools
import http.server
import socket
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
sys.path.insert(0, str(ROOT / "tests"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the Python package `playwright` is not installed")

from kb import quiz  # noqa: E402
from kb.build import IndexEmitter, StoreEmitter, build  # noqa: E402
from kb.loading import load_corpus  # noqa: E402
from site_bank import hostile_files, write_site_bank  # noqa: E402
from site_builder import SiteEmitter  # noqa: E402

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


# -- the bank, built once --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """The fixture bank (RAG chain, MoE / 混合专家, hostile entries), built with all three emitters."""
    tmp = tmp_path_factory.mktemp("browser-bank")
    bank = write_site_bank(tmp / "entries", hostile_files())
    result = build(bank, tmp / "build", [StoreEmitter(), IndexEmitter(), SiteEmitter()])
    return result.path


@pytest.fixture(scope="session")
def real_built_or_none(tmp_path_factory) -> Path | None:
    """The real bank in entries/, built, when it checks clean."""
    real = ROOT / "entries"
    if not real.is_dir() or load_corpus(real).errors:
        return None
    tmp = tmp_path_factory.mktemp("browser-real")
    return build(real, tmp / "build", [StoreEmitter(), IndexEmitter(), SiteEmitter()]).path


@pytest.fixture(scope="session")
def real_built(real_built_or_none) -> Path:
    if real_built_or_none is None:
        pytest.skip("entries/ does not check clean yet")
    return real_built_or_none


# -- serving ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CSPHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Server:
    """The build folder over HTTP with the site at /site/: the API app if it imports, else stdlib."""

    def __init__(self, build_dir: Path) -> None:
        self.port = free_port()
        self.kind = "stdlib"
        try:
            import uvicorn

            from api.app import create_app
            from api.deps import Settings

            app = create_app(Settings(build=build_dir))
            self._uvicorn = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                          lifespan="off"))
            self._thread = threading.Thread(target=self._uvicorn.run, daemon=True)
            self._thread.start()
            deadline = time.time() + 15
            while not self._uvicorn.started and time.time() < deadline:
                time.sleep(0.02)
            if not self._uvicorn.started:
                raise RuntimeError("uvicorn did not start")
            self.kind = "kb serve app"
        except Exception:  # noqa: BLE001 - the API is another room; fall back to a plain server
            self._uvicorn = None
            handler = functools.partial(CSPHandler, directory=str(build_dir))
            self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
            self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
            self._thread.start()
        self.base = f"http://127.0.0.1:{self.port}/site/"

    def close(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        else:
            self._httpd.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def servers():
    running: dict[Path, Server] = {}
    yield running
    for s in running.values():
        s.close()


def site_url(mode: str, build_dir: Path, servers: dict) -> str:
    if mode == "file":
        return (build_dir / "site").as_uri() + "/"
    if build_dir not in servers:
        servers[build_dir] = Server(build_dir)
    return servers[build_dir].base


@pytest.fixture(params=["file", "http"])
def base(request, built, servers) -> str:
    return site_url(request.param, built, servers)


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Watch:
    """Everything a page did that a test should fail on."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.origin = "file://" if base.startswith("file:") else f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.dialogs: list[str] = []

    def request(self, req) -> None:  # noqa: ANN001
        if not req.url.startswith((self.origin, "data:", "about:", "blob:")):
            self.outside.append(req.url)

    def route(self, route) -> None:  # noqa: ANN001
        if route.request.url.startswith((self.origin, "data:", "about:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def request_failed(self, req) -> None:  # noqa: ANN001
        if "ERR_ABORTED" not in (req.failure or ""):  # a load cancelled by navigating on is no failure
            self.failed.append(f"{req.url}: {req.failure}")

    def response(self, resp) -> None:  # noqa: ANN001
        if resp.status >= 400 and not resp.url.endswith("/404.html"):
            self.failed.append(f"{resp.url}: HTTP {resp.status}")

    def console(self, msg) -> None:  # noqa: ANN001
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} at {msg.location}")

    def check(self) -> None:
        assert self.outside == [], f"requests left the site: {self.outside}"
        assert self.errors == [], self.errors
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.dialogs == [], f"script ran from content: {self.dialogs}"


def open_page(chromium, base: str, width: int = 1280, height: int = 900):  # noqa: ANN001
    context = chromium.new_context(viewport={"width": width, "height": height}, service_workers="block")
    watch = Watch(base)
    context.route("**/*", watch.route)
    page = context.new_page()
    page.on("request", watch.request)
    page.on("console", watch.console)
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    page.on("requestfailed", watch.request_failed)
    page.on("response", watch.response)
    page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(10_000)
    return context, page, watch


@pytest.fixture
def tab(chromium, base):
    context, page, watch = open_page(chromium, base)
    yield page, watch
    context.close()
    watch.check()


def wait_loaded(page) -> None:  # noqa: ANN001
    page.wait_for_load_state("load")


# -- the walks -------------------------------------------------------------------------------------


def test_walk_rag_to_hnsw_to_milvus_by_clicking(tab, base):
    page, _ = tab
    page.goto(base + "index.html")
    page.click("a[href='rag.html']")
    assert page.url.endswith("/rag.html")
    assert page.inner_text("h1") == "RAG 检索增强生成"
    page.click(".body a.wikilink[href='hnsw.html']")
    assert page.url.endswith("/hnsw.html")
    assert page.inner_text("h1").startswith("HNSW")
    page.click(".body a.wikilink[href='milvus.html']")
    assert page.url.endswith("/milvus.html")
    assert page.inner_text("h1") == "Milvus"
    page.go_back()
    page.click("#kb-backlinks a[href='rag.html']")  # and back along a backlink
    assert page.url.endswith("/rag.html")


def test_hnsw_backlinks_list_rag(tab, base):
    page, _ = tab
    page.goto(base + "hnsw.html")
    backlinks = page.locator("#kb-backlinks a").all_inner_texts()
    assert "RAG 检索增强生成" in backlinks
    assert "向量数据库" in page.locator("#kb-prerequisites a").all_inner_texts()


@pytest.mark.parametrize("query", ["MoE", "混合专家"])
def test_search_page_lands_on_moe(tab, base, query):
    page, _ = tab
    page.goto(base + "index.html")
    page.keyboard.press("/")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "hero-q"
    page.keyboard.type(query)
    page.keyboard.press("Enter")
    page.wait_for_url("**/search.html?q=*")
    first = page.locator("#search-results li a").first
    first.wait_for()
    assert "混合专家 MoE" in first.inner_text()
    first.click()
    assert page.url.endswith("/moe.html")
    assert page.inner_text("h1") == "混合专家 MoE (Mixture of Experts)"


@pytest.mark.parametrize("query", ["moe", "混合专家"])
def test_header_search_box_lands_on_moe(tab, base, query):
    page, _ = tab
    page.goto(base + "hnsw.html")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "kb-q"
    page.keyboard.type(query)
    first = page.locator("#kb-q-pop li a").first
    first.wait_for()
    assert first.get_attribute("href") == "moe.html"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url("**/moe.html")


def test_search_finds_questions_and_handles_nothing(tab, base):
    page, _ = tab
    page.goto(base + "search.html?q=" + "负载均衡")
    page.locator("#search-results li a").first.wait_for()
    assert page.locator("#search-results li a").first.get_attribute("href") == "moe.html#q-moe-balance"
    page.fill("#search-q", "zzzqqqxxx")
    page.locator("#search-status", has_text="没有找到").wait_for()
    page.fill("#search-q", "Evil")  # hostile titles are shown as text
    page.locator("#search-results li a").first.wait_for()
    assert "<script>" in page.locator("#search-results li a").first.inner_text()


def test_question_link_opens_its_answer(tab, base):
    page, _ = tab
    page.goto(base + "hnsw.html#q-hnsw-search")
    assert page.get_attribute("#q-hnsw-search", "open") is not None
    assert page.locator("#q-hnsw-search .answer").is_visible()
    assert not page.locator("#q-hnsw-params .answer").is_visible()


def test_practice_reveals_an_answer(tab, base):
    page, _ = tab
    page.goto(base + "practice.html")
    page.click("#p-next")
    assert page.locator("#p-card").is_visible()
    assert not page.locator("#p-answer").is_visible()
    page.click("#p-reveal")
    page.locator("#p-answer").wait_for(state="visible")
    assert page.inner_text("#p-answer").strip()
    page.select_option("#pf-cat", "architecture")
    for _ in range(4):
        page.click("#p-next")
        assert page.inner_text("#p-meta").startswith("模型架构")
    page.goto(base + "practice.html?q=evil-q")  # hostile answer HTML stays inert
    page.click("#p-reveal")
    page.locator("#p-answer").wait_for(state="visible")
    assert "<img src=x onerror=alert(9)>" in page.inner_text("#p-answer")


def test_daily_question_matches_kb_quiz(tab, base, built):
    page, _ = tab
    corpus = _corpus_of(built)
    items = quiz.items_from_corpus(corpus)
    page.goto(base + "practice.html")
    today = date.today()
    for day in (today, today + timedelta(days=1), today + timedelta(days=45)):
        page.fill("#d-date", day.isoformat())
        page.dispatch_event("#d-date", "change")
        expected = quiz.daily(items, day)
        assert page.inner_text("#d-q") == corpus.questions[expected.id].q
    page.click("#d-reveal")
    page.locator("#d-answer").wait_for(state="visible")


@functools.lru_cache(maxsize=4)
def _corpus_of(build_dir: Path):  # noqa: ANN202
    return load_corpus(_bank_of(build_dir))


def _bank_of(build_dir: Path) -> Path:
    return Path(build_dir).parents[1] / "entries"  # <tmp>/.build-versions/<version> -> <tmp>/entries


def test_home_shows_the_question_of_the_day(tab, base, built):
    page, _ = tab
    page.goto(base + "index.html")
    expected = quiz.daily(quiz.items_from_corpus(_corpus_of(built)), date.today())
    href = page.get_attribute("#daily .daily-q a", "href")
    assert href.endswith(f"#q-{expected.id}")


def test_concept_map_links_work(tab, base):
    page, _ = tab
    page.goto(base + "map.html")
    for entry_id in ("rag", "vector-database", "hnsw", "milvus", "faiss"):
        assert page.locator(f"#kb-whole-map a.n[data-id='{entry_id}']").count() == 1
    page.hover("#kb-whole-map a.n[data-id='hnsw']")
    assert "dim" in page.get_attribute("#kb-whole-map", "class")
    page.uncheck(".edge-kinds input[value='link']")
    assert "hide-link" in page.get_attribute("#kb-whole-map", "class")
    page.click("#kb-whole-map a.n[data-id='hnsw']")
    page.wait_for_url("**/hnsw.html")
    page.click("#kb-local-map a.n[data-id='milvus']")  # the local map too
    page.wait_for_url("**/milvus.html")


def test_questions_page_filters(tab, base):
    page, _ = tab
    page.goto(base + "questions.html?cat=rag")
    visible = page.locator(".qlist li:visible")
    assert visible.count() > 0
    assert set(visible.evaluate_all("els => els.map(e => e.dataset.cat)")) == {"rag"}
    page.select_option("#qf-d", "3")
    assert page.locator(".qlist li:visible").all_inner_texts()[0].startswith("M 和 efSearch")
    page.select_option("#qf-cat", "")
    page.select_option("#qf-d", "")
    page.fill("#qf-text", "KV Cache")
    assert page.locator(".qlist li:visible").count() == 1


# -- crawl -----------------------------------------------------------------------------------------


def crawl(page, base: str) -> tuple[int, list[str]]:  # noqa: ANN001
    """Visit every page reachable from the home page; every internal link and anchor must resolve."""
    seen: set[str] = set()
    todo = [base + "index.html", base + "404.html"]
    anchors: list[tuple[str, str, str]] = []
    broken: list[str] = []
    ids: dict[str, set[str]] = {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = page.goto(url, wait_until="domcontentloaded")  # deferred scripts have run by then
        if response is not None and response.status >= 400:
            broken.append(f"{url}: HTTP {response.status}")
            continue
        ids[url] = set(page.evaluate("Array.from(document.querySelectorAll('[id]'), e => e.id)"))
        hrefs = page.evaluate("""Array.from(document.querySelectorAll('a[href]'),
            a => new URL(a.getAttribute('href'), document.baseURI).href)""")
        for href in hrefs:
            if not href.startswith(base):
                continue
            target, fragment = urldefrag(href)
            target = target.split("?", 1)[0]
            if fragment:
                anchors.append((url, target, fragment))
            if target.endswith((".html", "/")) and target not in seen:
                todo.append(target)
    for source, target, fragment in anchors:
        if target not in ids:
            broken.append(f"{source}: link to {target} (not a page)")
        elif unquote(fragment) not in ids[target]:
            broken.append(f"{source}: #{fragment} is no anchor of {target}")
    return len(seen), broken


def test_crawl_every_page_without_broken_links(chromium, base, built):
    context, page, watch = open_page(chromium, base)
    try:
        pages, broken = crawl(page, base)
    finally:
        context.close()
    assert broken == []
    n_entries = len(_corpus_of(built).entries)
    assert pages > n_entries + 8
    watch.check()


FETCH_CRAWL = """async (base) => {
  const seen = new Set(), ids = {}, links = [], broken = [], resources = new Set();
  const todo = [base + "index.html", base + "404.html"];
  while (todo.length) {
    const batch = todo.splice(0, 12).filter(u => !seen.has(u));
    batch.forEach(u => seen.add(u));
    const got = await Promise.all(batch.map(async u => { const r = await fetch(u); return [u, r.status, await r.text()]; }));
    for (const [u, status, text] of got) {
      if (status >= 400) { broken.push(u + ": HTTP " + status); continue; }
      const doc = new DOMParser().parseFromString(text, "text/html");
      ids[u] = Array.from(doc.querySelectorAll("[id]"), e => e.id);
      for (const el of doc.querySelectorAll("a[href], link[href], script[src], form[action]")) {
        const raw = el.getAttribute("href") ?? el.getAttribute("src") ?? el.getAttribute("action");
        const abs = new URL(raw, u).href;
        if (!abs.startsWith(base)) continue;
        const [target, frag] = abs.split("#");
        const clean = target.split("?")[0];
        links.push([u, clean, frag || ""]);
        if (clean.endsWith(".html")) { if (!seen.has(clean) && !todo.includes(clean)) todo.push(clean); }
        else resources.add(clean);
      }
    }
  }
  for (const r of resources) { const resp = await fetch(r); if (resp.status >= 400) broken.push(r + ": HTTP " + resp.status); }
  return {pages: Array.from(seen), ids, links, broken};
}"""


@pytest.mark.slow
def test_real_bank_search_and_crawl(chromium, real_built, servers):
    """The bank in entries/ over HTTP: search, a few pages opened for real, then every page and
    resource fetched and parsed by the browser (the fixture bank is crawled by navigation)."""
    base = site_url("http", real_built, servers)
    context, page, watch = open_page(chromium, base)
    try:
        for query in ("MoE", "混合专家"):
            page.goto(base + "search.html?q=" + query)
            first = page.locator("#search-results li a").first
            first.wait_for()
            assert first.get_attribute("href") == "moe.html", query
        for path in ("index.html", "questions.html", "practice.html", "map.html", "moe.html", "rag.html", "t/index.html"):
            page.goto(base + path)
        page.goto(base + "index.html")
        found = page.evaluate(FETCH_CRAWL, base)
    finally:
        context.close()
    broken = list(found["broken"])
    for source, target, fragment in found["links"]:
        if target.endswith(".html"):
            if target not in found["ids"]:
                broken.append(f"{source}: link to {target} (no page)")
            elif fragment and unquote(fragment) not in found["ids"][target]:
                broken.append(f"{source}: #{fragment} is no anchor of {target}")
    assert broken == []
    n = len(load_corpus(ROOT / "entries").entries)
    assert len(found["pages"]) > n + 10
    watch.check()


# -- screenshots -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [360, 1280])
def test_screenshots(chromium, built, real_built_or_none, servers, width):
    """Home, an entry, practice (answer shown) and the map, light, plus a dark entry page."""
    build_dir = real_built_or_none or built
    entry = "hnsw" if (build_dir / "site/hnsw.html").exists() else "rag"
    base = site_url("http", build_dir, servers)
    context, page, watch = open_page(chromium, base, width=width)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in (("home", "index.html"), ("entry", f"{entry}.html"), ("practice", "practice.html"),
                           ("map", "map.html"), ("search", "search.html?q=混合专家")):
            page.goto(base + path)
            if name == "entry":
                page.click("details.question summary")
            if name == "practice":
                page.click("#p-next")
                page.click("#p-reveal")
                page.locator("#p-answer").wait_for(state="visible")
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=name != "map")
        page.emulate_media(color_scheme="dark")
        page.goto(base + f"{entry}.html")
        page.screenshot(path=str(SHOTS / f"entry-dark-{width}.png"), full_page=False)
        # nothing wider than the screen but the scrolling boxes (tables, code, maps)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"page is {overflow}px wider than a {width}px screen"
    finally:
        context.close()
    watch.check()
    for name in ("home", "entry", "practice", "map", "search", "entry-dark"):
        assert (SHOTS / f"{name}-{width}.png").stat().st_size > 5_000

