"""Hostile input: entries that try to run script on the site and in the API's HTML (checked in a
real browser), YAML that tries to construct objects or explode, and requests that try to leave
the static mount, exhaust the parser or the server, or break search. Plus schemathesis over the
whole OpenAPI schema (stateless and stateful), security headers, and the site under its CSP.

Every payload that could run sets `window.__pwned` to the place it came from; the browser
checks assert the canary stays undefined with the CSP bypassed (escaping alone must hold) and
over file:// (no CSP at all), that no dialog opens, and that the DOM holds no inline handler,
no `javascript:` URL and no inline script.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from api.deps import Settings  # noqa: E402
from bench.server import Server  # noqa: E402
from kb.build import IndexEmitter, StoreEmitter, build  # noqa: E402
from site_builder import SiteEmitter  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]


def pwn(where: str) -> str:
    return f"window.__pwned='{where}'"


def front_matter(data: dict, body: str) -> str:
    return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n" + body + "\n"


EVIL_BODY = "\n\n".join([
    f"<script>{pwn('body-script')}</script>",
    f"<img src=x onerror=\"{pwn('body-img')}\">",
    f"[md](javascript:{pwn('md-link')}) [md2](JaVaScRiPt:{pwn('md-case')}) [md3](&#x6A;avascript:{pwn('md-entity')}) "
    f"[md4](java%0ascript:{pwn('md-newline')})",
    f"<javascript:{pwn('autolink')}> [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [vb](vbscript:x)",
    f"![img](x\" onerror=\"{pwn('img-title')}) ![alt <img src=x onerror={pwn('img-alt')}>](x.png)",
    f"[[rag|<img src=x onerror={pwn('wikilink-label')}>]] [[rag#<img src=x onerror={pwn('wikilink-anchor')}>|anchor]]",
    f"```\"><img src=x onerror={pwn('fence-lang')}>\ncode <script>{pwn('code')}</script>\n```",
    "Math $\\text{<img/src=\"x\"/onerror=\"" + pwn("math-text") + "\">}$, $\\href{javascript:" + pwn("math-href")
    + "}{x}$ and $\\style{background:red}{y}$.",
    f"## Heading <img src=x onerror=\"{pwn('heading')}\">",
    f"Footnote[^1].\n\n[^1]: <img src=x onerror=\"{pwn('footnote')}\">",
    f"| a | b |\n|---|---|\n| <img src=x onerror=\"{pwn('table')}\"> | <script>{pwn('table-script')}</script> |",
    f"<a href=\"javascript:{pwn('raw-a')}\">raw</a> <svg onload=\"{pwn('raw-svg')}\"></svg> "
    f"<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    f"<form action=\"javascript:{pwn('form')}\"><button>go</button></form> <object data=\"javascript:{pwn('object')}\">"
    "</object> <meta http-equiv=\"refresh\" content=\"0;url=javascript:" + pwn("meta") + "\">",
    f"<details open ontoggle=\"{pwn('details')}\">x</details> <body onload=\"{pwn('body-onload')}\">",
])

EVIL = {
    "title": f"Evil <script>{pwn('title-script')}</script> <img src=x onerror=\"{pwn('title-img')}\"> \"q' &amp;",
    "aliases": [f"<svg onload=\"{pwn('alias-svg')}\">", f"\"><img src=x onerror={pwn('alias-attr')}>",
                f"javascript:{pwn('alias-js')}"],
    "category": "rag",
    "tags": [f"<img src=x onerror=\"{pwn('tag-img')}\">", f"javascript:{pwn('tag-js')}", "a&b", "\"'><x>",
             "<script>alert('tag')</script>"],
    "difficulty": 2,
    "added": "2026-01-01",
    "summary": f"Summary <iframe srcdoc=\"<script>parent.__pwned='summary'</script>\"></iframe> "
               f"<b onmouseover=\"{pwn('summary-b')}\">b</b>",
    "prerequisites": ["rag"],
    "related": ["rag"],
    "sources": [f"<a href=\"javascript:{pwn('source-a')}\">src</a>", f"javascript:{pwn('source-url')}",
                "https://example.org/p?a=1&b=<2>", f"https://example.org/\"onmouseover=\"{pwn('source-quote')}"],
    "questions": [{
        "id": "evil-q", "difficulty": 1,
        "q": f"Question <script>{pwn('q-script')}</script> <img src=x onerror=\"{pwn('q-img')}\">?",
        "a": f"Answer [click](javascript:{pwn('answer-link')}) <img src=x onerror=\"{pwn('answer-img')}\"> "
             f"<a href=\"javascript:{pwn('answer-a')}\">a</a> $\\text{{<img/src=\"x\"/onerror=\"{pwn('answer-math')}\">}}$\n",
    }],
}

RAG = {
    "title": "RAG 检索增强生成", "aliases": ["RAG", "Retrieval-Augmented Generation"], "category": "rag",
    "tags": ["检索"], "difficulty": 1, "added": "2026-01-01", "summary": "先检索，再生成。",
    "sources": ["Lewis et al., 2020, arXiv:2005.11401"],
    "questions": [{"id": "rag-what", "q": "RAG 的基本流程是什么？", "difficulty": 1, "a": "先检索，再生成，见 [[evil]]。$O(n)$\n"}],
}
RAG_BODY = ("## 流程\n\n检索增强生成见 [[evil]]。\n\n```python\nprint('hi')\n```\n\n$$\n\\frac{a}{b} \\le \\sum_i x_i\n$$\n\n"
            "| 指标 | 含义 |\n|---|---|\n| Recall@k | 召回 |\n\n脚注[^n]。\n\n[^n]: 一个脚注。\n")
CATEGORIES = {"rag": f"检索 <img src=x onerror=\"{pwn('category')}\">", "foundations": "基础概念"}


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    bank = root / "entries"
    bank.mkdir()
    (bank / "_categories.yml").write_text(yaml.safe_dump(CATEGORIES, allow_unicode=True), encoding="utf-8")
    (bank / "evil.md").write_text(front_matter(EVIL, EVIL_BODY), encoding="utf-8")
    (bank / "rag.md").write_text(front_matter(RAG, RAG_BODY), encoding="utf-8")
    build(bank, root / "build", [StoreEmitter(), IndexEmitter(), SiteEmitter()])
    return root / "build"


@pytest.fixture(scope="module")
def server(hostile_build, tmp_path_factory):
    with Server(hostile_build, workers=1, log=tmp_path_factory.mktemp("serve") / "serve.log") as s:
        yield s


# -- the browser ------------------------------------------------------------------------------------

DOM_SCAN = """() => {
  const bad = [];
  const urlAttrs = ['href', 'src', 'action', 'formaction', 'data', 'xlink:href', 'background', 'poster'];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toUpperCase();
    for (const a of el.attributes) {
      const n = a.name.toLowerCase();
      const v = a.value.toLowerCase().replace(/[\\s\\x00-\\x1f]/g, '');
      if (n.startsWith('on')) bad.push(`${tag} ${n}="${a.value}"`);
      if (n === 'srcdoc') bad.push(`${tag} srcdoc`);
      if (urlAttrs.includes(n) && /^(javascript:|vbscript:|data:text\\/html)/.test(v)) bad.push(`${tag} ${n}="${a.value}"`);
    }
    if (['IFRAME', 'OBJECT', 'EMBED', 'BASE', 'FRAME'].includes(tag)) bad.push(tag);
    if (tag === 'META' && (el.getAttribute('http-equiv') || '').toLowerCase() === 'refresh') bad.push('META refresh');
    if (tag === 'SCRIPT' && (!el.src || new URL(el.src, location.href).origin !== location.origin)) {
      bad.push(`inline or foreign script: ${el.src || el.textContent.slice(0, 60)}`);
    }
  }
  return bad;
}"""

CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


class Tab:
    """A page that records dialogs, CSP violations and console errors."""

    def __init__(self, browser, *, bypass_csp: bool) -> None:  # noqa: ANN001
        self.context = browser.new_context(bypass_csp=bypass_csp, java_script_enabled=True)
        self.context.add_init_script(CSP_LISTENER)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.problems: list[str] = []

    def check(self, where: str) -> None:
        self.page.wait_for_timeout(60)  # let broken images fail and their (escaped) handlers not run
        canary = self.page.evaluate("() => window.__pwned")
        if canary is not None:
            self.problems.append(f"{where}: window.__pwned = {canary!r}")
        self.problems += [f"{where}: {b}" for b in self.page.evaluate(DOM_SCAN)]
        self.problems += [f"{where}: dialog {d!r}" for d in self.dialogs]
        self.dialogs.clear()

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("() => window.__csp || []")

    def close(self) -> None:
        self.context.close()


def site_pages(build_dir: Path) -> list[str]:
    site = build_dir / "site"
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


def browse(tab: Tab, base: str, pages: list[str]) -> list[str]:
    """Open every page and use what shows entry text through script; return the CSP violations."""
    violations = []
    page = tab.page
    for rel in pages:
        page.goto(base + rel, wait_until="load")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        tab.check(rel)
        violations += [f"{rel}: {v}" for v in tab.csp_violations()]
    page.goto(base + "search.html?q=Evil", wait_until="load")  # results are built from entry text
    page.locator("#search-results li").first.wait_for(timeout=10_000)
    for q in ("Evil", "javascript", "onerror", "script"):
        page.fill("#search-q", q)
        page.keyboard.press("Enter")
        page.wait_for_timeout(100)
        tab.check(f"search.html?q={q}")
    page.goto(base + "index.html", wait_until="load")  # the header's search pop-up
    page.fill("#kb-q", "Evil")
    page.wait_for_timeout(300)
    tab.check("header search pop-up")
    page.goto(base + "practice.html?q=evil-q", wait_until="load")  # the answer is inserted as HTML
    page.click("#p-reveal")
    page.locator("#p-answer").wait_for(state="visible")
    tab.check("practice answer")
    violations += [f"interactions: {v}" for v in tab.csp_violations()]
    return violations


def run_browser(task: dict) -> dict:
    """The three browser checks, in one Chromium (runs in a child process: see `browser_report`)."""
    from playwright.sync_api import sync_playwright

    report: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        tab = Tab(browser, bypass_csp=True)  # file://: no CSP at all, escaping alone must hold
        browse(tab, task["file_base"], task["pages"])
        report["file"] = {"problems": tab.problems}
        tab.close()
        tab = Tab(browser, bypass_csp=False)  # served by kb serve, under its real policy
        violations = browse(tab, task["http_base"], task["pages"])
        report["csp"] = {"problems": tab.problems, "violations": violations,
                         "console": [m for m in tab.console if "Content Security Policy" in m or "Refused to" in m]}
        tab.close()
        tab = Tab(browser, bypass_csp=True)  # the API's HTML, and JSON that echoes the request
        for name, fragment in task["fragments"].items():
            tab.page.set_content(f"<!doctype html><html><body><main>{fragment}</main></body></html>", wait_until="load")
            tab.check(name)
        for url in task["json_urls"]:
            tab.page.goto(url, wait_until="load")
            tab.check(url)
        report["api"] = {"problems": tab.problems}
        tab.close()
        browser.close()
    return report


@pytest.fixture(scope="module")
def browser_report(server, hostile_build) -> dict:
    """Drive Chromium in a child process (this file, run as a script): a Playwright sync session
    cannot start while another one (tests/browser/) is open in the same pytest process."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright into the venv")
    entry = httpx.get(server.base + "/entries/evil").json()
    question = httpx.get(server.base + "/questions/evil-q").json()
    fragments = {"entry html": entry["html"]}  # title, summary, q are plain text fields, not HTML
    fragments |= {f"answer {q['id']}": q["answer_html"] for q in entry["questions"]}
    fragments["question answer_html"] = question["answer_html"]
    for q in ("Evil", "onerror", "javascript", "script", "Summary"):
        for i, hit in enumerate(httpx.get(server.base + "/search", params={"q": q}).json()["results"]):
            fragments[f"snippet {q} {i}"] = hit["snippet"]
    task = {
        "pages": site_pages(hostile_build),
        "file_base": (hostile_build / "site").as_uri() + "/",
        "http_base": server.base + "/site/",
        "fragments": fragments,
        "json_urls": [server.base + p for p in (
            "/entries/%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D1%22%3E",
            "/search?q=%3Cscript%3Ewindow.__pwned%3D2%3C%2Fscript%3E",
            "/questions/%3Csvg%20onload%3Dwindow.__pwned%3D3%3E", "/site/%3Cscript%3Ewindow.__pwned%3D4%3C%2Fscript%3E")],
    }
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(task), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"task": task, **json.loads(proc.stdout.strip().splitlines()[-1])}


@pytest.mark.browser
def test_hostile_entries_never_execute_on_the_site(browser_report, hostile_build):
    """Every page over file://, where no CSP exists (as on a static host that sends none):
    escaping alone must hold. (Over HTTP, under the CSP, see test_site_passes_its_csp.)"""
    assert {"evil.html", "index.html", "search.html", "practice.html"} <= set(browser_report["task"]["pages"])
    assert browser_report["file"]["problems"] == []
    text = (hostile_build / "site" / "evil.html").read_text(encoding="utf-8")  # the payloads are there, as text
    assert "window.__pwned=&#39;body-script&#39;" in text or "window.__pwned='body-script'" in text


@pytest.mark.browser
def test_api_html_never_executes(browser_report):
    """The API's HTML fields (body, answers, search snippets) rendered as HTML, and JSON error
    messages that echo the request, opened in the browser."""
    for name, fragment in browser_report["task"]["fragments"].items():
        assert not re.search(r"<script\b|<iframe\b|\bhref=\"\s*javascript:", fragment, re.I), name
    assert browser_report["api"]["problems"] == []


@pytest.mark.browser
def test_site_passes_its_csp(browser_report):
    """Browsing every page served by `kb serve`, under its real policy: no violation, no CSP console
    error, and still no canary, no dialog, no live handler in the DOM."""
    csp = browser_report["csp"]
    assert csp["violations"] == [] and csp["console"] == [], csp["violations"] + csp["console"]
    assert csp["problems"] == []


# -- YAML -------------------------------------------------------------------------------------------


def test_yaml_that_constructs_objects_or_explodes_is_refused(tmp_path):
    canary = tmp_path / "CANARY"
    bank = tmp_path / "entries"
    bank.mkdir()
    (bank / "_categories.yml").write_text("rag: 检索\n", encoding="utf-8")
    tags = [f'!!python/object/apply:os.system ["touch {canary}"]', f'!!python/object/new:subprocess.Popen [["touch", "{canary}"]]',
            "!!python/name:os.system", "!!python/module:os", f'!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {canary}"]',
            '!!python/object:collections.OrderedDict {a: 1}']
    rest = 'category: rag\ndifficulty: 1\nadded: 2026-01-01\nsummary: s\nsources: ["x"]\nquestions: []\n'
    for i, tag in enumerate(tags):
        (bank / f"y{i}.md").write_text(f"---\ntitle: {tag}\n{rest}---\nbody\n", encoding="utf-8")
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        laughs.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (bank / "bomb.md").write_text("---\n" + "\n".join(laughs) + f"\ntitle: bomb\naliases: *i\ntags: *i\n{rest}---\nb\n",
                                  encoding="utf-8")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kb.cli", "check", "--entries", str(bank), "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    took = time.monotonic() - t0
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    output = proc.stderr + proc.stdout
    for i in range(len(tags)):
        assert f"y{i}.md:2: error [front-matter]" in output, output
    assert "bomb.md:2: error [front-matter]" in output and "aliases" in output
    assert not canary.exists(), "a YAML tag ran a command"
    assert took < 60, f"kb check took {took:.0f}s on a YAML alias bomb"


# -- requests ---------------------------------------------------------------------------------------

TRAVERSALS = [
    "/site/../kb.sqlite", "/site/../../etc/passwd", "/site/%2e%2e/kb.sqlite", "/site/%2E%2E/%2E%2E/etc/passwd",
    "/site/%252e%252e/kb.sqlite", "/site/..%2fkb.sqlite", "/site/..%2Fmanifest.json", "/site/.%2e/kb.sqlite",
    "/site/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/site/..%5ckb.sqlite", "/site/..\\kb.sqlite", "/site/%5c..%5ckb.sqlite",
    "/site//etc/passwd", "/site/%2fetc%2fpasswd", "/site/%2F..%2Fkb.sqlite", "/site/%00", "/site/index.html%00.txt",
    "/site/..%00/kb.sqlite", "/site/..%c0%afkb.sqlite", "/site/..%c1%9ckb.sqlite", "/site/%e0%80%ae%e0%80%ae/kb.sqlite",
    "/site/static/../../kb.sqlite", "/site/c/../../kb.sqlite", "/site/./../kb.sqlite", "/site/..;/kb.sqlite",
    "/site/file:///etc/passwd", "/site/C:\\Windows\\win.ini", "/site/~/.bashrc", "/../kb.sqlite", "/%2e%2e/kb.sqlite",
    "/_docs/../../../../etc/passwd", "/_docs/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/_docs/..%2f..%2fapi%2fapp.py",
    "/site/index.html/../../kb.sqlite", "/site/" + "../" * 40 + "etc/passwd", "/site/BUILD_ID", "/site/../BUILD_ID",
]
SECRETS = [b"SQLite format 3", b"root:x:", b"\"entries\": {", b"[fonts]", b"from api", b"import "]


def raw_get(port: int, target: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes, float]:
    """GET with the request target exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - t0
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> tuple[bytes, float]:
    """Send raw bytes; return what came back until the server closed or answered, and the time."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:  # the server closed on us mid-send: a refusal
            pass
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except ConnectionResetError:
            pass
    return b"".join(chunks), time.monotonic() - t0


def test_path_traversal_is_refused(server, hostile_build):
    assert raw_get(server.port, "/site/index.html")[0] == 200
    for target in TRAVERSALS:
        for accept in ("application/json", "text/html"):
            status, body, _ = raw_get(server.port, target, {"Accept": accept})
            assert status in (400, 404), (target, status)
            assert not any(s in body for s in SECRETS), (target, body[:200])
    for target in ["/site/%00", "/site/\x00"]:  # a raw NUL in the request line is refused by the parser
        data, _ = raw_exchange(server.port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
        assert data.split(b" ", 2)[1] in (b"400", b"404"), (target, data[:80])


@pytest.mark.parametrize("name, request_bytes, expect", [
    ("query string of 20 KB", b"GET /search?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
    ("query string of 1 MB", b"GET /search?q=" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"4"),
    ("path of 10 KB", b"GET /site/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
    ("one header of 100 KB", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n", b"431"),
    ("one header of 2 MB", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 2_000_000 + b"\r\n\r\n", b"4"),
    ("5,000 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(5000)) + b"\r\n",
     b"431"),
    ("a garbage request line", b"\x00\x01\x02 garbage\r\n\r\n", b"400"),
    ("a control character in the target", b"GET /search?q=a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    ("an unsupported method", b"DELETE /entries/rag HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
])
def test_huge_or_malformed_requests_fail_fast(server, name, request_bytes, expect):
    data, took = raw_exchange(server.port, request_bytes)
    assert took < 5, f"{name}: {took:.1f}s"
    if data:  # a clear 4xx (or the connection closed by uvicorn's limits)
        status = data.split(b" ", 2)[1]
        assert status.startswith(expect) and not status.startswith(b"5"), (name, data[:120])
    assert httpx.get(server.base + "/healthz", timeout=10).status_code == 200


def test_an_incomplete_request_does_not_block_others(server):
    """uvicorn never times out a request whose headers never end (documented: put a proxy in
    front on the internet); here: it holds one connection, not the server."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        for _ in range(5):
            assert httpx.get(server.base + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - t0 < 5


NASTY_QUERIES = [
    "../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "..\\..\\kb.sqlite", "*:*", "*", "?", "key:*", "kind:entry OR 1=1",
    "' OR 1=1 --", "\" OR \"\"=\"", "'; DROP TABLE entries; --", "${jndi:ldap://x/a}", "{{7*7}}", "{% raw %}", "%s%s%s%n",
    "(a+)+$", "a" * 500, "(" * 250, "\"" * 500, "AND " * 100, "NOT", "a~99999", "a^999999", "[a TO z]", "{a TO z}",
    "title:evil", "names:rag", "tags:<script>", "\\", "\x00", "\x7f", "\u202e evil", "\ufeff", "\U0001f600" * 100,
    " ".join(f"word{i:03d}x" for i in range(50)), "检索" * 250, "ｅｖｉｌ", "İ", "ß" * 300, "\u0301" * 200,
]


def test_search_syntax_is_plain_text(server):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        for q in NASTY_QUERIES:
            t0 = time.monotonic()
            r = c.get("/search", params={"q": q})
            took = time.monotonic() - t0
            assert r.status_code in (200, 422), (q, r.status_code)
            body = r.json()
            if r.status_code == 200:
                assert isinstance(body["results"], list) and body["total"] >= 0
                assert "root:x:" not in r.text and "SQLite" not in r.text
            else:
                assert set(body["error"]) == {"code", "message"}
            assert took < 5, (q, took)


def test_search_filters_are_never_ignored(server):
    """Unknown or non-overlapping tag/category values match nothing (Whoosh reads an empty filter
    set as no filter at all), and made-up values are not cached."""
    with httpx.Client(base_url=server.base, timeout=30) as c:
        for params in ({"tag": "无此标签"}, {"category": "nope"}, {"tag": "检索", "category": "foundations"},
                       {"tag": "<script>"}, {"tag": "*"}, {"category": "rag OR 1=1"}):
            body = c.get("/search", params={"q": "检索 Evil RAG", **params}).json()
            assert body["total"] == 0 and body["results"] == [], params
        tagged = c.get("/search", params={"q": "检索 Evil RAG", "tag": "检索"}).json()["results"]
        assert tagged and all("检索" in r["tags"] for r in tagged)


@pytest.fixture(scope="module")
def client(hostile_build):
    with TestClient(create_app(Settings(build=hostile_build)), raise_server_exceptions=False) as c:
        yield c


def encode(text: str) -> str:
    """Percent-encode `text` as UTF-8; lone surrogates become the bytes Python would write for them
    with surrogatepass (invalid UTF-8 on the wire)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


unicode_text = st.text(alphabet=st.characters(codec=None, categories=None), min_size=0, max_size=60)
cjk_emoji = st.lists(st.sampled_from(list("检索增强生成向量数据库注意力混合专家") + ["🙂", "🚀", "👩\u200d💻", "\u200d", "\ufe0f",
                                                                         "\ud800", "\udfff", " ", "\x00"]),
                     min_size=1, max_size=30).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(q=st.one_of(unicode_text, cjk_emoji, st.text(alphabet=st.characters(max_codepoint=0x1f), max_size=20)),
       extra=st.sampled_from(["", "&limit=1", "&kind=question", "&tag=%E6%A3%80%E7%B4%A2", "&category=rag", "&offset=3"]))
def test_search_fuzz_unicode_never_5xx(client, q, extra):
    r = client.get(f"/search?q={encode(q)}{extra}")
    assert r.status_code < 500, (q, r.status_code, r.text[:200])
    assert r.status_code in (200, 422)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(min_size=1, max_size=60), name=st.sampled_from(["q", "tag", "category", "limit", "kind", "date"]))
def test_search_fuzz_invalid_utf8_never_5xx(client, raw, name):
    """Arbitrary bytes, percent-encoded: invalid UTF-8, overlong forms, NULs."""
    target = "/search?q=x&" if name != "q" else "/search?"
    r = client.get(f"{target}{name}={quote(raw, safe='')}")
    assert r.status_code < 500, (raw, r.status_code, r.text[:200])
    if raw in (b".", b"..", b"/"):
        return  # dot segments and an encoded slash: /entries/. and /entries/%2F reach the list
    r = client.get(f"/entries/{quote(raw, safe='')}")
    assert r.status_code in (404, 422) or (r.status_code == 200 and raw.decode("utf-8", "replace") in ("rag", "evil"))


# -- schemathesis -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_schema(server):
    return schemathesis.openapi.from_url(server.base + "/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_live_server_no_5xx(case):
    """Every operation of the schema against the real server over the hostile bank."""
    case.call_and_validate()


def test_schemathesis_stateful_no_5xx(live_schema):
    """Chains inferred from the response schemas: /search, /questions/random and /daily feed
    entry and question ids into /entries/{id} and /questions/{id}."""
    machine = live_schema.as_state_machine()
    assert len([r for r in dir(machine) if "__200_" in r]) >= 4, "no links were inferred"
    machine.run(settings=settings(max_examples=15, stateful_step_count=6, deadline=None,
                                  suppress_health_check=list(HealthCheck)))


# -- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, kind", [
    ("/healthz", "application/json"), ("/search?q=rag", "application/json"), ("/entries/nope", "application/json"),
    ("/search?q=", "application/json"), ("/site/index.html", "text/html"), ("/site/evil.html", "text/html"),
    ("/site/nope.html", "text/html"), ("/site/static/style.css", "text/css"), ("/openapi.json", "application/json"),
    ("/docs", "text/html"), ("/", None), ("/search?q=" + "a" * 20_000, "application/json"),
])
def test_security_headers(server, path, kind):
    r = httpx.get(server.base + path, headers={"Accept": "text/html" if "site" in path else "*/*"}, timeout=10)
    if kind:
        assert r.headers["content-type"].startswith(kind), (path, r.headers["content-type"])
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    if path != "/docs":  # Swagger UI ships one inline bootstrap script; everything else runs none
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "server" not in r.headers


if __name__ == "__main__":  # the browser checks' child process (see browser_report)
    print(json.dumps(run_browser(json.loads(sys.stdin.read()))))
