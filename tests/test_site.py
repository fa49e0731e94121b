"""The static site: pages, escaping, relative links, feeds, search data, daily schedule,
incremental builds, and a crawl of every page for broken internal links and anchors."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from kb import quiz
from kb.build import IndexEmitter, StoreEmitter, build, current
from site_bank import _entry, hostile_files, write_site_bank
from site_builder import SiteEmitter
from site_builder.emitter import STATE_FILE
from site_builder.graphmap import layout_cluster
from site_builder.slugs import short_label, tag_slug, tag_slugs

BASE = "https://example.org/kb/"
TODAY = date(2026, 6, 1)


class Page(HTMLParser):
    """What the tests need of an HTML page: links, ids, scripts, inline styles and handlers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.inline_scripts = 0
        self.style_attrs: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.classes: dict[str, str] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"] or "")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if name == "style":
                self.style_attrs.append(tag)
            if name in ("href", "src", "action") and value is not None:
                self.links.append((tag, name, value))
                if name == "href":
                    self.classes[value] = a.get("class") or ""
        if tag == "script" and "src" not in a:
            self.inline_scripts += 1
        if tag == "style":
            self.style_attrs.append("style-element")


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def make_build(tmp_path: Path, base_url: str = BASE, extra: dict | None = None, name: str = "build"):
    bank = write_site_bank(tmp_path / "entries", {**hostile_files(), **(extra or {})})
    emitter = SiteEmitter(base_url=base_url, today=TODAY)
    result = build(bank, tmp_path / name, [StoreEmitter(), IndexEmitter(), emitter])
    return bank, result, emitter


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    bank, result, emitter = make_build(tmp)
    return result.path / "site", result


# -- pages ---------------------------------------------------------------------------------------


def test_every_page_is_written(built):
    site, result = built
    for name in ("index.html", "practice.html", "questions.html", "map.html", "search.html", "404.html",
                 "sitemap.xml", "feed.xml", "t/index.html", "c/rag.html", "c/architecture.html", "c/inference.html",
                 "static/style.css", "static/pygments.css", "static/site.js", "static/search.js",
                 "static/practice.js", "static/data/search.js", "static/data/questions.js", "static/data/daily.js",
                 "static/data/answers-0.js"):
        assert (site / name).is_file(), name
    for entry_id in result.corpus.entries:
        assert (site / f"{entry_id}.html").is_file()
    assert (site / f"t/{tag_slug('检索')}.html").is_file()


def test_entry_page_shows_everything(built):
    site, _ = built
    text = (site / "hnsw.html").read_text(encoding="utf-8")
    page = parse(site / "hnsw.html")
    assert '<html lang="zh-CN">' in text
    assert "<h1 id=\"kb-title\">HNSW 分层可导航小世界图</h1>" in text
    assert 'class="alias">Hierarchical Navigable Small World<' in text
    assert ("a", "href", "c/rag.html") in page.links
    assert ("a", "href", f"t/{tag_slug('图索引')}.html") in page.links
    assert "深入" in text  # difficulty 3
    assert "HNSW 分层可导航小世界图 的一句话定义。" in text
    assert ("a", "href", "#查询过程") in page.links and "查询过程" in page.ids  # table of contents
    assert "<math" in text  # MathML from the core
    assert '<details class="question" id="q-hnsw-search">' in text
    assert {"q-hnsw-search", "q-hnsw-params", "kb-prerequisites", "kb-related", "kb-outgoing", "kb-backlinks"} <= page.ids
    rel = lambda section: text.split(f'id="{section}"', 1)[1].split("</div>", 1)[0]  # noqa: E731
    assert 'href="vector-database.html"' in rel("kb-prerequisites")
    assert 'href="rag.html"' in rel("kb-backlinks")  # RAG links to HNSW
    assert 'href="milvus.html"' in rel("kb-outgoing") and 'href="faiss.html"' in rel("kb-related")
    assert 'class="kb-map kb-local-map"' in text and 'href="rag.html" class="n' in text
    assert 'href="https://arxiv.org/abs/1603.09320"' in text
    assert 'rel="prev"' in text and 'rel="next"' in text


def test_home_category_tag_and_question_pages(built):
    site, result = built
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "检索增强" in home and "6 个概念" in home
    assert 'id="daily"' in home and "今日一题" in home
    assert 'href="practice.html"' in home and 'href="map.html"' in home and 'role="search"' in home
    cat = (site / "c/rag.html").read_text(encoding="utf-8")
    assert cat.index('href="../rag.html"') < cat.index('href="../vector-database.html"') < cat.index('href="../hnsw.html"')
    tag = (site / f"t/{tag_slug('ANN')}.html").read_text(encoding="utf-8")
    assert 'href="../hnsw.html"' in tag and 'href="../faiss.html"' in tag and 'href="../moe.html"' not in tag
    questions = parse(site / "questions.html")
    n = sum(len(e.questions) for e in result.corpus.entries.values())
    assert len([l for l in questions.links if "#q-" in l[2]]) == n
    for select in ("qf-cat", "qf-tag", "qf-d"):
        assert select in questions.ids
    practice = (site / "practice.html").read_text(encoding="utf-8")
    assert 'id="p-reveal"' in practice and 'type="date"' in practice


def test_map_has_typed_edges_and_links(built):
    site, result = built
    text = (site / "map.html").read_text(encoding="utf-8")
    for kind in ("link", "prerequisite", "related"):
        assert re.search(f'class="e e-{kind}( x)?"', text), kind
    for chain in [("rag", "vector-database"), ("vector-database", "hnsw"), ("hnsw", "milvus"), ("hnsw", "faiss")]:
        assert re.search(rf'data-s="{chain[0]}" data-t="{chain[1]}"', text), chain
    page = parse(site / "map.html")
    for entry_id in result.corpus.entries:
        assert ("a", "href", f"{entry_id}.html") in page.links


# -- safety --------------------------------------------------------------------------------------


def test_hostile_text_is_escaped_everywhere(built):
    site, _ = built
    evil = (site / "evil.html").read_text(encoding="utf-8")
    assert "Evil &lt;script&gt;alert(1)&lt;/script&gt;" in evil
    assert "&lt;svg onload=alert(4)&gt;" in evil and "&lt;i&gt;tag&lt;/i&gt;" in evil
    for path in html_pages(site):
        page = parse(path)
        assert page.handlers == [], (path, page.handlers)
        assert not {"iframe", "img", "style"} & set(page.tags), path
        assert not [v for _, _, v in page.links if v.strip().lower().startswith(("javascript:", "data:"))], path
        assert "<script>alert" not in path.read_text(encoding="utf-8"), path
    for path in (site / "static/data").glob("answers-*.js"):  # HTML, escaped by the core
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text, path
    # other data holds plain text, which our scripts only ever put into the page as text
    for path in (site / "static").glob("*.js"):
        uses = re.findall(r"(\w+)\.(?:innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", path.read_text())
        assert uses == ([] if path.name != "practice.js" else ["answer"]), (path, uses)


def test_csp_friendly_no_inline_script_style_or_handlers(built):
    site, _ = built
    for path in html_pages(site):
        page = parse(path)
        assert page.inline_scripts == 0, path
        assert page.style_attrs == [], path
        assert page.handlers == [], path


def test_urls_are_relative_and_nothing_leaves_the_site(built):
    site, _ = built
    for path in html_pages(site):
        if path.name == "404.html":
            continue
        page = parse(path)
        for tag, attr, value in page.links:
            parts = urlsplit(value)
            if parts.scheme:  # only links a reader clicks, to a paper or a doc: never loaded by the page
                assert tag == "a" and parts.scheme == "https" and "ext" in page.classes[value], (path, value)
                continue
            assert not value.startswith(("/", "//")), (path, value)
    css = (site / "static/style.css").read_text(encoding="utf-8") + (site / "static/pygments.css").read_text()
    assert "url(" not in css.replace("url(#", "") and "@import" not in css
    for js in (site / "static").glob("*.js"):
        assert "http://" not in js.read_text() and "https://" not in js.read_text(), js


def test_404_page_links_from_the_base_path(built, tmp_path):
    site, _ = built
    links = [v for _, _, v in parse(site / "404.html").links]
    assert "/kb/index.html" in links and "/kb/static/style.css" in links
    _, result, _ = make_build(tmp_path, base_url="")
    assert "index.html" in [v for _, _, v in parse(result.path / "site/404.html").links]


# -- crawl ---------------------------------------------------------------------------------------


def crawl(site: Path) -> list[str]:
    """Every internal href/src of every page must name a file, and every #fragment an id there."""
    ids: dict[Path, set[str]] = {}
    problems = []
    for path in html_pages(site):
        if path.name == "404.html":
            continue
        page = parse(path)
        for tag, attr, value in page.links:
            parts = urlsplit(value)
            if parts.scheme or value.startswith("//"):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.is_file():
                problems.append(f"{path.relative_to(site)}: {value}: no such file")
                continue
            if parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = parse(target).ids
                if unquote(parts.fragment) not in ids[target]:
                    problems.append(f"{path.relative_to(site)}: {value}: no such anchor")
    return problems


def test_crawl_finds_no_broken_links_or_anchors(built):
    site, _ = built
    assert crawl(site) == []


def test_crawl_of_the_real_bank_if_it_checks_clean(tmp_path):
    from kb.loading import load_corpus

    real = Path(__file__).resolve().parent.parent / "entries"
    if not real.is_dir() or load_corpus(real).errors:
        pytest.skip("entries/ does not check clean yet")
    result = build(real, tmp_path / "build", [SiteEmitter(today=TODAY)])
    assert crawl(result.path / "site") == []


# -- feeds ---------------------------------------------------------------------------------------


def test_sitemap_and_atom_feed(built):
    site, result = built
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "a": "http://www.w3.org/2005/Atom"}
    urls = [u.text for u in ET.parse(site / "sitemap.xml").getroot().findall("s:url/s:loc", ns)]
    assert BASE in urls and f"{BASE}hnsw.html" in urls and f"{BASE}c/rag.html" in urls
    assert all(u.startswith(BASE) for u in urls) and f"{BASE}404.html" not in urls
    feed = ET.parse(site / "feed.xml").getroot()
    entries = feed.findall("a:entry", ns)
    assert len(entries) == len(result.corpus.entries)
    assert entries[0].find("a:title", ns).text == "混合专家 MoE (Mixture of Experts)"  # newest first
    titles = [e.find("a:title", ns).text for e in entries]
    assert any(t.startswith("Evil <script>") for t in titles)  # escaped in XML, intact once parsed
    for e in entries:
        assert e.find("a:link", ns).get("href").startswith(BASE) and e.find("a:updated", ns).text
    home = (site / "index.html").read_text(encoding="utf-8")
    assert '<link rel="alternate" type="application/atom+xml" title="llm-kb 新条目" href="feed.xml">' in home


def test_without_base_url_no_sitemap_or_feed(tmp_path):
    _, result, _ = make_build(tmp_path, base_url="")
    site = result.path / "site"
    assert not (site / "sitemap.xml").exists() and not (site / "feed.xml").exists()
    assert "application/atom+xml" not in (site / "index.html").read_text(encoding="utf-8")
    assert crawl(site) == []


def test_crawl_reports_missing_pages_and_anchors(tmp_path, built):
    site, _ = built
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / "milvus.html").unlink()
    page = copy / "rag.html"
    page.write_text(page.read_text(encoding="utf-8").replace('href="#kb-questions"', 'href="#nope"'), encoding="utf-8")
    problems = crawl(copy)
    assert "hnsw.html: milvus.html: no such file" in problems
    assert "rag.html: #nope: no such anchor" in problems


# -- data files ----------------------------------------------------------------------------------


def load_js(path: Path, name: str) -> dict:
    text = path.read_text(encoding="utf-8")
    prefix = f"window.{name}="
    assert text.startswith(prefix)
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


def test_search_data_is_segmented_like_the_api(built):
    site, _ = built
    data = load_js(site / "static/data/search.js", "KB_SEARCH")
    docs = {(d[0], d[1]): d for d in data["docs"]}
    moe = docs[("e", "moe")]
    assert moe[3] == "moe.html" and "moe" in moe[6] and "混合专家模型" in moe[6]  # names, compared whole
    assert moe[7]["混合专家"] >= 40  # a dictionary word from the title is one term, weighted as a name
    assert "moe" in moe[7] and "向量数据库" in docs[("e", "vector-database")][7]
    assert docs[("q", "moe-balance")][3] == "moe.html#q-moe-balance"
    assert "的" in data["stop"]
    raw = (site / "static/data/search.js").read_text(encoding="utf-8")
    assert "\\u6df7" not in raw  # Chinese written as is, not \u-escaped


def test_daily_schedule_matches_kb_quiz(built):
    site, result = built
    data = load_js(site / "static/data/daily.js", "KB_DAILY")
    start = date.fromisoformat(data["start"])
    assert start == TODAY - timedelta(days=30) and len(data["days"]) == 431
    items = quiz.items_from_corpus(result.corpus)
    for offset in (0, 29, 30, 31, 200, 430):
        day = start + timedelta(days=offset)
        expected = quiz.daily(items, day)
        got = data["days"][offset]
        assert (got == -1 and expected is None) or data["qs"][got][0] == expected.id, day
    home = (site / "index.html").read_text(encoding="utf-8")
    today = quiz.daily(items, TODAY)
    assert f"#q-{today.id}" in home


def test_practice_data_and_answer_shards(built):
    site, result = built
    qs = load_js(site / "static/data/questions.js", "KB_QUESTIONS")
    assert len(qs["qs"]) == len(result.corpus.questions)
    q = next(q for q in qs["qs"] if q[0] == "hnsw-search")
    shard = (site / f"static/data/answers-{q[6]}.js").read_text(encoding="utf-8")
    assert '"hnsw-search":"<p>分层跳表式的贪心搜索。</p>' in shard


# -- incremental builds --------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_incremental_rerenders_only_what_changed_and_equals_a_full_build(tmp_path):
    bank, first, emitter = make_build(tmp_path)
    old_site = first.path / "site"
    path = bank / "hnsw.md"
    path.write_text(path.read_text(encoding="utf-8").replace("title: HNSW 分层可导航小世界图", "title: HNSW 图索引"),
                    encoding="utf-8")
    second = build(bank, tmp_path / "build", [StoreEmitter(), IndexEmitter(), emitter])
    # rag and vector-database write [[hnsw]]: their links now read the new title, so their
    # rendered output changed (their store rows and index documents are rewritten too)
    assert not second.changes.full and second.changes.changed == {"hnsw", "rag", "vector-database"}
    assert emitter.last["segmented"] == 1  # the dictionary lost a word only HNSW's text contains
    written = set(emitter.last["written"])
    # the entry, every page that shows its title (neighbours, lists), the map and the data files
    assert {"hnsw.html", "rag.html", "vector-database.html", "milvus.html", "faiss.html", "c/rag.html",
            "questions.html", "map.html", "static/data/search.js"} <= written
    assert not {"moe.html", "transformer.html", "kv-cache.html", "evil.html", "c/architecture.html",
                "static/style.css", "practice.html", "search.html"} & written
    new_site = second.path / "site"
    assert os.stat(new_site / "moe.html").st_ino == os.stat(old_site / "moe.html").st_ino  # hard link, untouched
    assert (old_site / "hnsw.html").read_text(encoding="utf-8").count("HNSW 分层可导航小世界图") > 0  # old build intact
    assert "HNSW 图索引" in (new_site / "rag.html").read_text(encoding="utf-8")
    full = build(bank, tmp_path / "full", [StoreEmitter(), IndexEmitter(), SiteEmitter(base_url=BASE, today=TODAY)])
    assert tree(new_site) == tree(full.path / "site")


def test_the_site_is_the_same_whether_its_work_is_forked_or_not(tmp_path, monkeypatch):
    """A big bank's build counts terms, renders entry pages, makes the search data and lays out
    the map in forked children; what it writes must not depend on it."""
    from kb import analysis, forking
    from site_builder import emitter as site_emitter

    forked: list[str] = []
    real_fork = forking.fork
    monkeypatch.setattr(forking, "fork", lambda name, *a, **kw: forked.append(name) or real_fork(name, *a, **kw))
    for value in (1, 10**9):  # forks wherever it can; then nowhere
        monkeypatch.setattr(analysis, "PRIME_MIN", value)
        monkeypatch.setattr(site_emitter, "FORK_MIN", value)
        make_build(tmp_path / str(value))
        if value == 1:
            assert {"analyze", "site", "search data", "map layout"} <= set(forked)
            forked.clear()
    assert not {"analyze", "site", "search data", "map layout"} & set(forked)
    one, other = (tree(current(tmp_path / str(v) / "build") / "site") for v in (1, 10**9))
    assert one.keys() == other.keys() and one == other
    # and what the next build reuses (fingerprints of the pages a child wrote, the search data)
    one, other = (pickle.loads((current(tmp_path / str(v) / "build") / STATE_FILE).read_bytes()) for v in (1, 10**9))
    assert one == other


def test_body_edit_rerenders_just_the_entry_and_data(tmp_path):
    bank, _, emitter = make_build(tmp_path)
    path = bank / "moe.md"
    path.write_text(path.read_text(encoding="utf-8").replace("由路由器", "由稀疏门控路由器"), encoding="utf-8")
    build(bank, tmp_path / "build", [StoreEmitter(), IndexEmitter(), emitter])
    assert set(emitter.last["written"]) == {"moe.html", "static/data/search.js"}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_every_kind_of_edit_builds_what_a_full_build_builds(tmp_path):
    """Each edit is built incrementally (kept pages, fingerprints) and compared file by file
    with a full build of the same bank; body-only edits take the path that keeps every page
    but the entry's own, the others recompute what pages show."""
    bank, _, _ = make_build(tmp_path)
    emitter = SiteEmitter(base_url=BASE, today=TODAY)  # one emitter, as `kb build --watch` keeps it
    contexts: dict[str, int] = {}
    edits = [
        ("body", lambda: edit(bank / "moe.md", "由路由器", "由稀疏门控路由器"), {"moe.html"}),
        ("answer", lambda: edit(bank / "rag.md", "先检索，再生成。", "先检索相关片段，再生成。"), {"rag.html"}),
        ("summary", lambda: edit(bank / "milvus.md", "Milvus 的一句话定义。", "开源的向量数据库。"), None),
        ("no summary: body", lambda: edit(bank / "faiss.md", "summary: Faiss 的一句话定义。", "summary: ''"), None),
        ("body of an entry without summary", lambda: edit(bank / "faiss.md", "\n---\n", "\n---\n开头的新句子。"), None),
        ("new link", lambda: edit(bank / "milvus.md", "等索引。", "等索引，也可对比 [[moe]]。"), None),
        ("difficulty", lambda: edit(bank / "hnsw.md", "difficulty: 2\n", "difficulty: 3\n"), None),
        ("question text", lambda: edit(bank / "rag.md", "RAG 的基本流程是什么？", "RAG 的流程？"), None),
        ("tags", lambda: edit(bank / "moe.md", "tags: [", "tags: [稀疏, "), None),
        ("title", lambda: edit(bank / "kv-cache.md", "title: KV Cache", "title: KV Cache 键值缓存"), None),
        ("link removed", lambda: edit(bank / "transformer.md", "混合专家见 [[MoE]]。", ""), None),
        ("category move", lambda: edit(bank / "faiss.md", "category: rag", "category: inference"), None),
        ("new entry", lambda: (bank / "flash.md").write_text(_entry(
            "FlashAttention", "inference", "分块计算注意力，配合 [[kv-cache]] 使用。\n", prereq="[transformer]",
            questions=[("flash-why", "FlashAttention 为什么快？", 2, "减少显存读写。")]), encoding="utf-8"), None),
        ("entry removed", lambda: (bank / "flash.md").unlink(), None),
    ]
    for i, (what, change, only) in enumerate(edits):
        change()
        result = build(bank, tmp_path / "build", [emitter])
        full = build(bank, tmp_path / f"full{i}", [SiteEmitter(base_url=BASE, today=TODAY)], full=True)
        assert tree(result.path / "site") == tree(full.path / "site"), what
        written = set(emitter.last["written"]) - {"static/data/search.js"}
        assert written and (only is None or written - {p for p in written if "answers-" in p} == only), (what, written)
        contexts[what] = emitter.last["contexts"]
    # a title edit recomputes the contexts of the entry and its one neighbour, not every entry's
    assert contexts["title"] == 2 and contexts["body"] == 1, contexts
    later = SiteEmitter(base_url=BASE, today=TODAY + timedelta(days=1))  # a new day: a new question of the day
    result = build(bank, tmp_path / "build", [later])
    assert "index.html" in later.last["written"]
    full = build(bank, tmp_path / "full-later", [SiteEmitter(base_url=BASE, today=TODAY + timedelta(days=1))], full=True)
    assert tree(result.path / "site") == tree(full.path / "site")


def test_incremental_removal_and_new_tag(tmp_path):
    bank, _, emitter = make_build(tmp_path)
    (bank / "milvus.md").unlink()
    for name in ("hnsw.md", "faiss.md"):
        p = bank / name
        p.write_text(p.read_text(encoding="utf-8").replace("[[milvus]] 与 ", "").replace(", milvus]", "]")
                     .replace("参见 [Milvus](milvus.md)", "没有依赖").replace("tags: [向量数据库产品, ANN]",
                                                                         "tags: [开源库, ANN]"), encoding="utf-8")
    second = build(bank, tmp_path / "build", [StoreEmitter(), IndexEmitter(), emitter])
    site = second.path / "site"
    assert not second.changes.full and "milvus" in second.changes.removed
    assert "milvus.html" in emitter.last["removed"] and not (site / "milvus.html").exists()
    assert (site / f"t/{tag_slug('开源库')}.html").is_file()
    assert crawl(site) == []
    full = build(bank, tmp_path / "full", [StoreEmitter(), IndexEmitter(), SiteEmitter(base_url=BASE, today=TODAY)])
    assert tree(site) == tree(full.path / "site")


def test_partial_emit_falls_back_without_usable_state(tmp_path):
    bank, first, emitter = make_build(tmp_path)
    from kb.build import Changes

    out = tmp_path / "staging"
    out.mkdir()
    corpus = first.corpus
    assert emitter.partial_emit(corpus, out, first.path, Changes(full=False), None) is True
    other = SiteEmitter(base_url="https://elsewhere.example/", today=TODAY)  # different settings
    shutil.rmtree(out / "site")
    assert other.partial_emit(corpus, out, first.path, Changes(full=False), None) is False
    (first.path / STATE_FILE).write_bytes(b"\x80\x05broken")
    assert emitter.partial_emit(corpus, out, first.path, Changes(full=False), None) is False
    (first.path / STATE_FILE).unlink()
    assert emitter.partial_emit(corpus, out, first.path, Changes(full=False), None) is False


# -- helpers -------------------------------------------------------------------------------------


def test_tag_slugs_are_ascii_unique_and_stable():
    assert tag_slug("rag") == "rag"
    assert re.fullmatch(r"xiang-liang-jian-suo-[0-9a-f]{6}", tag_slug("向量检索"))
    assert tag_slug("ANN") != tag_slug("ann") and tag_slug("ANN").startswith("ann-")
    assert re.fullmatch(r"[a-z0-9-]+", tag_slug("<i>tag</i> & 标签/x"))
    assert tag_slugs({"ANN", "ann", "检索"}) == {t: tag_slug(t) for t in ("ANN", "ann", "检索")}
    assert tag_slug("KV Cache") == tag_slug("KV Cache")  # no dependence on other tags


def test_short_labels():
    assert short_label("HNSW 分层可导航小世界图", ["HNSW"]) == "HNSW"
    assert short_label("混合专家 MoE (Mixture of Experts)", ["MoE", "Mixture of Experts"]) == "混合专家"
    assert short_label("Retrieval-Augmented Generation for LLMs", ["RAG"]) == "RAG"
    assert short_label("Faiss", []) == "Faiss"
    assert short_label("一个非常非常非常非常长的没有别名的标题", []).endswith("…")


def test_layout_is_deterministic_and_order_independent():
    ids = [f"n{i}" for i in range(30)]
    edges = [(ids[i], ids[(i * 7 + 3) % 30]) for i in range(30)]
    a = layout_cluster(ids, edges)
    b = layout_cluster(list(reversed(ids)), list(reversed(edges)))
    assert a == b and len(set(a.values())) == 30


def test_templates_loaded_compiled_render_the_same_site(tmp_path, monkeypatch):
    """Templates are compiled once per code version into Jinja2's folder of compiled templates;
    a build that loads them renders what a build that compiles them does, and a cache file that
    cannot be read is compiled anew instead of failing the build."""
    import tempfile

    from site_builder import emitter as site_emitter

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "tmp" / f"_jinja2-cache-{os.getuid()}"
    folder.mkdir(mode=0o700)
    (folder / "__llm-kb-0123456789abcdef01234567-x.cache").write_bytes(b"an older version's")  # removed
    (folder / "__jinja2_other-app.cache").write_bytes(b"not ours")  # kept
    compiled: list[str] = []
    real_compile = site_emitter._Environment.compile
    monkeypatch.setattr(site_emitter._Environment, "compile",
                        lambda self, source, name=None, *a, **kw: compiled.append(name) or
                        real_compile(self, source, name, *a, **kw))
    sites = []
    try:
        for run in ("cold", "warm", "damaged"):
            site_emitter.environment.cache_clear()  # a new process, as far as templates go
            compiled.clear()
            _, result, _ = make_build(tmp_path / run)
            sites.append(tree(result.path / "site"))
            files = sorted((tmp_path / "tmp").glob("_jinja2-cache-*/__llm-kb-*.cache"))
            if run == "cold":
                assert "entry.html" in compiled and len(files) == len(set(compiled))
            elif run == "warm":
                assert compiled == []
                for f in files:  # truncated: the next run must compile them again
                    f.write_bytes(f.read_bytes()[:20])
            else:
                assert "entry.html" in compiled
    finally:
        site_emitter.environment.cache_clear()
    assert sites[0] == sites[1] == sites[2]
    assert not (folder / "__llm-kb-0123456789abcdef01234567-x.cache").exists()
    assert (folder / "__jinja2_other-app.cache").exists()
