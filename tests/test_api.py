"""The HTTP API: in-process tests over a real build, one error shape, schemathesis, a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import ROOT, entry, write_bank
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.deps import Settings
from kb.build import IndexEmitter, StoreEmitter, build
from site_builder import SiteEmitter

FILES = {
    "rag.md": entry("RAG", extra="aliases: [Retrieval-Augmented Generation, 检索增强生成]\ntags: [检索]\n",
                    body="检索增强生成依赖 [[vector-database|向量数据库]]。"),
    "vector-database.md": entry("向量数据库", extra="aliases: [Vector Database]\ntags: [检索, 存储]\n",
                                body="索引常用 [[HNSW]]。"),
    "hnsw.md": entry("HNSW", extra="aliases: [Hierarchical Navigable Small World]\nprerequisites: [vector-database]\n",
                     body="## 查询过程\n\n实现见 [[milvus]] 与 [[faiss]]。"),
    "milvus.md": entry("Milvus", body="Milvus 支持 [[hnsw#查询过程|HNSW]]。"),
    "faiss.md": entry("Faiss", body="Faiss 是一个库，参见 [Milvus](milvus.md)。"),
    "moe.md": entry("混合专家 MoE", category="inference", extra="aliases: [MoE, Mixture of Experts, 混合专家]\n",
                    body="稀疏激活的专家层，显存占用取决于总参数量。见 [[rag]]。"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("api")
    bank = write_bank(root / "entries", FILES)
    build(bank, root / "build", [StoreEmitter(), IndexEmitter(), SiteEmitter()])
    return root / "build"


@pytest.fixture(scope="module")
def client(built) -> TestClient:
    with TestClient(create_app(Settings(build=built))) as c:
        yield c


@pytest.mark.parametrize("query, expected", [
    ("moe", "moe"), ("MoE", "moe"), ("Mixture of Experts", "moe"), ("混合专家", "moe"), ("MoE 显存", "moe"),
    ("Milv", "milvus"), ("Milvis", "milvus"), ("什么是 HNSW", "hnsw"), ("向量数据库", "vector-database"),
    ("retrieval-augmented generation", "rag"),
])
def test_search_finds_the_entry(client, query, expected):
    body = client.get("/search", params={"q": query}).json()
    assert body["results"][0]["entry_id"] == expected


def test_search_response_shape(client):
    r = client.get("/search", params={"q": "HNSW", "explain": "true"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "total", "took_ms", "results", "facets"}
    top = body["results"][0]
    assert set(top) == {"kind", "entry_id", "question_id", "title", "snippet", "score", "url", "tags", "category", "explain"}
    assert top["explain"]["names"] == 1 and top["url"] == "hnsw.html"
    assert "<mark>HNSW</mark>" in top["snippet"]
    assert body["facets"]["category"]["rag"] >= 1


def test_search_filters_and_kinds(client):
    only_q = client.get("/search", params={"q": "HNSW", "kind": "question"}).json()["results"]
    assert only_q and all(r["kind"] == "question" and r["question_id"] for r in only_q)
    cat = client.get("/search", params={"q": "专家", "category": "rag"}).json()["results"]
    assert all(r["category"] == "rag" for r in cat)
    tagged = client.get("/search", params={"q": "检索", "tag": "存储"}).json()["results"]
    assert {r["entry_id"] for r in tagged} == {"vector-database"}


@pytest.mark.parametrize("query", ["AND", "(", "*", '"', ":", "a:b OR (c", "🙂🙂", "\x01", "的"])
def test_query_syntax_is_plain_text(client, query):
    r = client.get("/search", params={"q": query})
    assert r.status_code == 200 and isinstance(r.json()["results"], list)


def test_snippets_are_escaped(make_bank, tmp_path):
    bank = make_bank({"x.md": entry("XSS", body="<img src=x onerror=alert(1)> 关键词 [[y]]"), "y.md": entry("Y", body="[[x]]")})
    build(bank, tmp_path / "b", [StoreEmitter(), IndexEmitter(), SiteEmitter()])
    with TestClient(create_app(Settings(build=tmp_path / "b"))) as c:
        snippet = c.get("/search", params={"q": "关键词"}).json()["results"][0]["snippet"]
    assert "<img" not in snippet and "&lt;img" in snippet and "<mark>关键词</mark>" in snippet


@pytest.mark.parametrize("url, status, code, message", [
    ("/search?q=", 422, "empty_query", "q is empty: give a term to search for, e.g. /search?q=MoE"),
    ("/search?q=%20%20", 422, "empty_query", "q is empty: give a term to search for, e.g. /search?q=MoE"),
    ("/search?q=" + "x" * 501, 422, "query_too_long", "q has 501 characters; shorten it to 500 or fewer"),
    ("/search?q=a&limit=0", 422, "invalid_parameter", "limit: Input should be greater than or equal to 1 (got '0')"),
    ("/search?q=a&limit=101", 422, "invalid_parameter", "limit: Input should be less than or equal to 100 (got '101')"),
    ("/search?q=a&offset=-1", 422, "invalid_parameter", "offset: Input should be greater than or equal to 0 (got '-1')"),
    ("/search", 422, "invalid_parameter", "q: Field required"),
    ("/questions/daily?date=2026-02-30", 422, "invalid_date", "date '2026-02-30' is not a date; use YYYY-MM-DD, e.g. 2026-11-29"),
    ("/entries/hnws", 404, "not_found", "no entry 'hnws'; did you mean 'hnsw'?"),
    ("/path?from=rag&to=nowhere", 404, "not_found", "no entry 'nowhere'; see /entries for every id"),
    ("/path?from=faiss&to=rag", 404, "no_path", "no chain of links leads from 'faiss' to 'rag'"),
    ("/questions/random?tag=无此标签", 404, "no_question", "no question matches these filters; loosen tag, category or difficulty"),
    ("/nope", 404, "not_found", "no such endpoint; see /docs"),
    ("/site/%2e%2e/kb.sqlite", 404, "not_found", "no page '/site/../kb.sqlite' in this build"),
])
def test_errors_say_what_to_change(client, url, status, code, message):
    r = client.get(url)
    assert (r.status_code, r.json()) == (status, {"error": {"code": code, "message": message}})


def test_every_route_uses_the_one_error_shape(client):
    """Each operation in the schema, called with an unknown id or a bad parameter, answers the shape."""
    bad = {"/search": "?q=a&limit=-5", "/entries": "?limit=0", "/entries/{entry_id}": "", "/questions/random": "?difficulty=9",
           "/questions/daily": "?date=yesterday", "/questions/{question_id}": "", "/tags": None, "/categories": None,
           "/graph": None, "/path": "?from=x", "/healthz": None}
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == set(bad)
    for path, query in bad.items():
        if query is None:
            continue
        r = client.get(path.replace("{entry_id}", "zzz").replace("{question_id}", "zzz") + query)
        assert 400 <= r.status_code < 500, path
        assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message"}, path


def test_entries_and_questions(client):
    listing = client.get("/entries", params={"category": "rag", "limit": 2}).json()
    assert listing["total"] == 5 and len(listing["entries"]) == 2
    assert client.get("/entries", params={"tag": "存储"}).json()["entries"][0]["id"] == "vector-database"
    hnsw = client.get("/entries/hnsw").json()
    assert [b["source"] for b in hnsw["backlinks"]] == ["milvus", "vector-database"]
    assert [p["target"] for p in hnsw["prerequisites"]] == ["vector-database"]
    assert {l["target"] for l in hnsw["links"]} == {"milvus", "faiss"}
    assert hnsw["markdown"].startswith("## 查询过程") and '<h2 id="查询过程">' in hnsw["html"]
    qid = hnsw["questions"][0]["id"]
    assert client.get(f"/questions/{qid}").json()["entry_id"] == "hnsw"
    assert client.get("/questions/random", params={"seed": 7}).json() == client.get("/questions/random", params={"seed": 7}).json()
    assert client.get("/questions/random", params={"category": "inference"}).json()["entry_id"] == "moe"
    day = client.get("/questions/daily", params={"date": "2026-11-29"}).json()
    assert day["date"] == "2026-11-29" and day == client.get("/questions/daily", params={"date": "2026-11-29"}).json()


def test_graph_path_tags_health(client, built):
    graph = client.get("/graph").json()
    assert {"source": "rag", "target": "vector-database", "kind": "link"} in graph["edges"]
    assert {"source": "hnsw", "target": "vector-database", "kind": "prerequisite"} in graph["edges"]
    assert client.get("/path", params={"from": "rag", "to": "faiss"}).json()["path"] == ["rag", "vector-database", "hnsw", "faiss"]
    assert client.get("/tags").json()["tags"][0] == {"tag": "检索", "count": 2}
    health = client.get("/healthz")
    build_id = (built / "BUILD_ID").read_text().strip()
    assert health.json() == {"status": "ok", "build_id": build_id, "entries": 6, "questions": 6}
    assert health.headers["etag"] == f'W/"{build_id}"'
    assert client.get("/healthz", headers={"If-None-Match": health.headers["etag"]}).status_code == 304


def test_headers_cors_gzip_security(client):
    r = client.get("/graph", headers={"Origin": "https://example.org", "Accept-Encoding": "gzip"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "max-age" in r.headers["cache-control"]
    big = client.get("/entries/hnsw", headers={"Accept-Encoding": "gzip"})
    assert big.headers.get("content-encoding") == "gzip" or len(big.content) < 1000


def test_site_is_served_and_traversal_refused(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/site/"
    assert client.get("/site/").status_code == 200 and "text/html" in client.get("/site/").headers["content-type"]
    for probe in ["/site/..%2fkb.sqlite", "/site/%2e%2e%2fkb.sqlite", "/site/....//kb.sqlite", "/site/%00",
                  "/site/..%5ckb.sqlite", "/site//etc/passwd"]:
        r = client.get(probe)
        assert r.status_code == 404 and b"SQLite" not in r.content, probe


def test_docs_load_without_a_cdn(client):
    page = client.get("/docs").text
    assert "/_docs/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/_docs/swagger-ui-bundle.js").status_code == 200


@pytest.fixture(scope="module")
def api_schema(built):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(build=built)))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_server_errors(case):
    case.call_and_validate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def test_real_server_builds_serves_and_picks_up_rebuilds(tmp_path):
    bank = write_bank(tmp_path / "entries", FILES)
    out = tmp_path / "build"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--entries", str(bank),
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", proc)
        first = httpx.get(f"{base}/healthz").json()
        assert first["entries"] == 6
        assert httpx.get(f"{base}/search", params={"q": "混合专家"}).json()["results"][0]["entry_id"] == "moe"
        assert httpx.get(f"{base}/site/").status_code == 200
        assert httpx.get(f"{base}/", follow_redirects=False).status_code == 307
        (bank / "extra.md").write_text(entry("Extra", body="新的条目 [[rag]]"), encoding="utf-8")
        build(bank, out, [StoreEmitter(), IndexEmitter(), SiteEmitter()])
        second = httpx.get(f"{base}/healthz").json()
        assert second["entries"] == 7 and second["build_id"] != first["build_id"]
        assert httpx.get(f"{base}/search", params={"q": "新的条目"}).json()["results"][0]["entry_id"] == "extra"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_serve_watch_rebuilds_on_save_and_stops_with_the_server(tmp_path):
    bank = write_bank(tmp_path / "entries", FILES)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--watch", "--port", str(port), "--entries",
                             str(bank), "--out", str(tmp_path / "build")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", proc)
        time.sleep(1)  # the watcher's first build
        (bank / "extra.md").write_text(entry("Extra", body="保存后自动重建 [[rag]]"), encoding="utf-8")
        deadline = time.time() + 60
        while time.time() < deadline and httpx.get(f"{base}/entries/extra").status_code != 200:
            time.sleep(0.3)
        assert "保存后自动重建" in httpx.get(f"{base}/entries/extra").json()["markdown"]
        watchers = subprocess.run(["pgrep", "-f", f"build --watch --entries {bank}"], capture_output=True, text=True)
        assert watchers.stdout.split(), "the watcher runs beside the server"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"build --watch --entries {bank}"], capture_output=True, text=True)
    assert not left.stdout.split(), "the watcher stops with the server"
