"""`kb build`: real files in, a real SQLite file, a real Whoosh index and a site out, swapped atomically."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import entry, write_bank
from whoosh import index as windex
from whoosh.query import Term

from kb.build import BuildError, IndexEmitter, StoreEmitter, build, build_lock, current, versions_dir
from kb.forking import Job, Shared, fork
from kb.search import SearchIndex
from site_builder import SiteEmitter


def emitters() -> list:
    return [StoreEmitter(), IndexEmitter(), SiteEmitter()]


def kb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of the served build, by relative path."""
    root = out.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_writes_all_artifacts(chain_bank, tmp_path):
    out = tmp_path / "build"
    result = build(chain_bank, out, emitters())
    assert out.is_symlink() and current(out) == result.path
    assert (out / "BUILD_ID").read_text().strip() == result.corpus.build_id
    db = sqlite3.connect(out / "kb.sqlite")
    assert db.execute("select count(*) from entries").fetchone() == (5,)
    assert db.execute("select count(*) from questions").fetchone() == (5,)
    assert ("rag", "vector-database", "link") in db.execute("select source, target, kind from links").fetchall()
    assert db.execute("select value from meta where key='build_id'").fetchone() == (result.corpus.build_id,)
    ix = windex.open_dir(str(out / "index"))
    with ix.searcher() as s:
        assert s.search(Term("names", "hnsw"))[0]["key"] == "hnsw"
    assert (out / "site" / "index.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["entries"]["rag"]["links"] == ["vector-database"]


def test_build_id_is_a_hash_of_the_inputs(chain_bank, tmp_path):
    first = build(chain_bank, tmp_path / "a", emitters()).corpus.build_id
    assert build(chain_bank, tmp_path / "b", emitters()).corpus.build_id == first
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="改过了 [[milvus]]"), encoding="utf-8")
    assert build(chain_bank, tmp_path / "a", emitters()).corpus.build_id != first


def test_chinese_index_keeps_bank_terms_whole(make_bank, tmp_path):
    bank = make_bank({
        "moe.md": entry("混合专家 MoE", extra="aliases: [Mixture of Experts]\n", body="稀疏激活 [[vector-database]]"),
        "vector-database.md": entry("向量数据库", body="存放向量 [[moe]]，RLHF 无关。"),
    })
    build(bank, tmp_path / "out", emitters())
    ix = SearchIndex(tmp_path / "out" / "index")
    try:
        assert ix.tokenizer.query_terms("向量数据库和混合专家") == ["向量数据库", "混合专家"]
        assert ix.tokenizer.query_terms("RLHF 的 KV-Cache") == ["rlhf", "kv-cache", "kv", "cache"]
        assert ix.search("混合专家").results[0].entry_id == "moe"
        assert ix.search("向量数据库").results[0].entry_id == "vector-database"
    finally:
        ix.close()


def test_failed_build_leaves_previous_output_whole(chain_bank, tmp_path):
    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    before = snapshot(out)
    (chain_bank / "rag.md").write_text(entry("RAG", body="[[nowhere]]"), encoding="utf-8")
    with pytest.raises(BuildError) as info:
        build(chain_bank, out, emitters())
    assert [i.code for i in info.value.issues if i.severity == "error"] == ["unresolved-link"]
    assert snapshot(out) == before


def test_failing_emitter_leaves_previous_output_whole(chain_bank, tmp_path):
    class Broken:
        name = "broken"

        def emit(self, corpus, out, progress):  # noqa: ANN001
            (out / "half-written").write_text("x")
            raise OSError("disk full")

    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    before = snapshot(out)
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="新内容 [[milvus]]"), encoding="utf-8")
    with pytest.raises(OSError):
        build(chain_bank, out, [*emitters(), Broken()])
    assert snapshot(out) == before
    build(chain_bank, out, emitters())  # the next build cleans up and succeeds
    assert not list(versions_dir(out).glob("staging-*"))
    assert "新内容" in (out / "kb.sqlite").read_bytes().decode("utf-8", "ignore")


def test_second_build_at_once_is_refused(chain_bank, tmp_path):
    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    before = snapshot(out)
    with build_lock(out):
        proc = kb("build", "--entries", str(chain_bank), "--out", str(out))
    assert proc.returncode == 1
    assert "another kb build is writing" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(out) == before


def big_bank(root: Path, n: int) -> Path:
    files = {f"e{i}.md": entry(f"Entry {i}", body=("段落 " * 300) + f"[[e{(i + 1) % n}]]") for i in range(n)}
    return write_bank(root, files)


@pytest.mark.slow
def test_build_killed_midway_leaves_previous_output_whole(tmp_path):
    bank = big_bank(tmp_path / "entries", 400)
    out = tmp_path / "build"
    build(bank, out, emitters())
    before = snapshot(out)
    (bank / "e0.md").write_text(entry("Entry 0", body="changed [[e1]]"), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "build", "--entries", str(bank), "--out", str(out),
                             "--full"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(versions_dir(out).glob("staging-*/kb.sqlite")) and time.time() < deadline:
        time.sleep(0.01)  # kill it once it is writing its artifacts
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == before
    assert sqlite3.connect(f"file:{out / 'kb.sqlite'}?mode=ro", uri=True).execute(
        "select count(*) from entries").fetchone() == (400,)
    result = build(bank, out, emitters())  # the lock died with the process; the next build works
    assert (out / "BUILD_ID").read_text().strip() == result.corpus.build_id
    assert not list(versions_dir(out).glob("staging-*"))


def test_old_versions_are_pruned(chain_bank, tmp_path):
    """Each build keeps itself and the version served before it; older ones, and what a killed
    build or a killed deletion left (staging-*, trash-*), are deleted (by a child, meanwhile)."""
    out = tmp_path / "build"
    for i in range(4):
        served = current(out)
        (versions_dir(out) / f"staging-{i}" / "site").mkdir(parents=True)
        (versions_dir(out) / f"trash-{i}" / "site").mkdir(parents=True)
        (chain_bank / "faiss.md").write_text(entry("Faiss", body=f"版本 {i} [[milvus]]"), encoding="utf-8")
        build(chain_bank, out, emitters())
        versions = {p for p in versions_dir(out).iterdir() if p.is_dir()}
        assert versions == {current(out), served} - {None}


def test_plain_folder_at_out_is_kept_aside(chain_bank, tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    build(chain_bank, out, emitters())
    assert out.is_symlink()
    [adopted] = versions_dir(out).glob("adopted-*")
    assert (adopted / "notes.txt").read_text() == "mine"


def test_incremental_build_updates_only_changed_entries_in_the_index(chain_bank, tmp_path):
    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="全新的段落 [[milvus]]").replace("Faiss 的答案", "新的答案"),
                                         encoding="utf-8")
    (chain_bank / "extra.md").write_text(entry("Extra", body="另一个条目 [[rag]]"), encoding="utf-8")
    result = build(chain_bank, out, emitters())
    assert not result.changes.full and result.changes.changed == {"faiss", "extra"}
    ix = SearchIndex(out / "index")
    try:
        assert ix.search("全新的段落").results[0].entry_id == "faiss"
        assert ix.search("另一个条目").results[0].entry_id == "extra"
        assert [h.question_id for h in ix.search("新的答案", kind="question").results][:1] == \
            [result.corpus.entries["faiss"].questions[0].id]
        assert ix.ix.doc_count() == 6 and ix.qix.doc_count() == 6  # old documents deleted, not duplicated
    finally:
        ix.close()
    (chain_bank / "extra.md").unlink()
    result = build(chain_bank, out, emitters())
    assert result.changes.removed == {"extra"}
    ix = SearchIndex(out / "index")
    try:
        assert ix.search("另一个条目").results == [] and ix.ix.doc_count() == 5
    finally:
        ix.close()


def test_store_schema_is_what_sqlmodel_declares(chain_bank, tmp_path):
    from sqlmodel import SQLModel, create_engine

    import kb.store  # noqa: F401 - registers the tables

    declared = tmp_path / "declared.sqlite"
    SQLModel.metadata.create_all(create_engine(f"sqlite:///{declared}"))
    out = tmp_path / "build"
    build(chain_bank, out, [StoreEmitter()])

    def schema(path: Path) -> list[str]:
        with sqlite3.connect(path) as db:
            return sorted(sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))

    assert schema(out / "kb.sqlite") == schema(declared)


def store_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, links without their autoincrement id, in a stable order."""
    with sqlite3.connect(path) as db:
        return {
            "entries": db.execute("SELECT * FROM entries ORDER BY id").fetchall(),
            "questions": db.execute("SELECT * FROM questions ORDER BY id").fetchall(),
            "tags": db.execute("SELECT * FROM tags ORDER BY entry_id, tag").fetchall(),
            "links": db.execute("SELECT source, target, kind, anchor, line FROM links ORDER BY source, id").fetchall(),
            "categories": db.execute("SELECT * FROM categories ORDER BY position").fetchall(),
            "meta": db.execute("SELECT * FROM meta ORDER BY key").fetchall(),
        }


def test_incremental_store_equals_a_full_build(chain_bank, tmp_path):
    out, ref = tmp_path / "build", tmp_path / "reference"
    build(chain_bank, out, emitters())
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="改写的正文 [[rag]]", extra="tags: [库]\n"), encoding="utf-8")
    (chain_bank / "extra.md").write_text(entry("Extra", body="新条目 [[hnsw]]"), encoding="utf-8")
    (chain_bank / "milvus.md").unlink()
    (chain_bank / "hnsw.md").write_text(entry("HNSW", body="## 查询过程\n\n实现见 [[faiss]]。"), encoding="utf-8")
    result = build(chain_bank, out, emitters())
    assert not result.changes.full and result.changes.removed == {"milvus"}
    build(chain_bank, ref, emitters(), full=True)
    assert store_rows(out / "kb.sqlite") == store_rows(ref / "kb.sqlite")


def test_renaming_an_entry_marks_entries_that_link_to_it_changed(chain_bank, tmp_path):
    # milvus links [[hnsw#...|HNSW]] (labelled) but vector-database writes [[HNSW]]: its link text
    # is HNSW's title, so its rendered page changes although its file did not.
    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    (chain_bank / "hnsw.md").write_text(entry("HNSW", extra="aliases: [Hierarchical NSW]\n",
                                              body="## 查询过程\n\n实现见 [[milvus]] 与 [[faiss]]。"),
                                        encoding="utf-8")
    (chain_bank / "rag.md").write_text(entry("RAG 检索增强", body="检索增强生成依赖 [[vector-database]]。"),
                                       encoding="utf-8")
    result = build(chain_bank, out, emitters())
    assert result.changes.changed == {"hnsw", "rag"}
    (chain_bank / "vector-database.md").write_text(
        entry("向量库", extra="aliases: [Vector Database]\n", body="索引常用 [[HNSW]]。"), encoding="utf-8")
    result = build(chain_bank, out, emitters())
    assert result.changes.changed == {"vector-database", "rag"}  # rag's [[vector-database]] reads 向量库 now
    with sqlite3.connect(out / "kb.sqlite") as db:
        (html,) = db.execute("SELECT body_html FROM entries WHERE id = 'rag'").fetchone()
    assert "向量库</a>" in html


def test_load_cache_gives_the_same_corpus_as_a_cold_load(chain_bank, tmp_path):
    from kb.loading import LoadCache, load_corpus

    first = load_corpus(chain_bank)
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="坏链接 [[nowhere]]"), encoding="utf-8")
    (chain_bank / "vector-database.md").write_text(entry("向量库", body="索引常用 [[HNSW]]。"), encoding="utf-8")
    cold = load_corpus(chain_bank)
    warm = load_corpus(chain_bank, cache=first.cache)
    assert warm.entries == cold.entries and warm.issues == cold.issues and warm.input_hash == cold.input_hash
    assert any(i.code == "unresolved-link" for i in warm.issues)
    # renaming vector-database re-renders only what asks for its name: rag links to it with a
    # label and hnsw by id, so both renderings are reused (the same objects)
    assert warm.entries["rag"] is first.entries["rag"] and warm.entries["hnsw"] is first.entries["hnsw"]
    assert warm.entries["vector-database"] is not first.entries["vector-database"]
    (chain_bank / "rag.md").write_text(entry("RAG", body="依赖 [[vector-database]]。"), encoding="utf-8")
    third = load_corpus(chain_bank, cache=warm.cache)
    (chain_bank / "vector-database.md").write_text(entry("向量数据库", body="索引常用 [[HNSW]]。"), encoding="utf-8")
    renamed = load_corpus(chain_bank, cache=third.cache)
    assert renamed.entries["hnsw"] is third.entries["hnsw"]
    assert renamed.entries["rag"] is not third.entries["rag"]  # [[vector-database]] reads as its title
    assert renamed.entries == load_corpus(chain_bank).entries
    (chain_bank / "nowhere.md").write_text(entry("Nowhere", body="[[rag]]"), encoding="utf-8")
    resolved = load_corpus(chain_bank, cache=renamed.cache)  # faiss's [[nowhere]] resolves now
    assert not resolved.errors and "nowhere" in {l.target for l in resolved.entries["faiss"].links}
    (chain_bank / "nowhere.md").unlink()
    cold = load_corpus(chain_bank)
    warm = load_corpus(chain_bank, cache=resolved.cache)
    again = load_corpus(chain_bank, cache=warm.cache)  # everything from the cache, nothing parsed
    assert again.entries == cold.entries and again.issues == cold.issues
    path = tmp_path / "cache.pickle"
    warm.cache.write(path)
    assert LoadCache.read(path).rendered.keys() == warm.cache.rendered.keys()


def test_files_whose_stat_is_unchanged_are_not_read_again(chain_bank, monkeypatch):
    from kb import drafts, loading

    past = time.time() - 60
    for path in chain_bank.glob("*.md"):
        os.utime(path, (past, past))
    first = loading.load_corpus(chain_bank)
    read: list[str] = []
    real = drafts.read_text
    monkeypatch.setattr(drafts, "read_text", lambda path, *a: read.append(path.name) or real(path, *a))
    faiss = chain_bank / "faiss.md"
    faiss.write_text(entry("Faiss", body="新的正文"), encoding="utf-8")
    second = loading.load_corpus(chain_bank, cache=first.cache)
    assert read == ["faiss.md"] and "新的正文" in second.entries["faiss"].body_text
    # faiss.md was just written: its stat is not trusted yet (git's "racy" files). Other text of
    # the same size under the same mtime and inode is still seen.
    st = os.stat(faiss)
    faiss.write_text(faiss.read_text(encoding="utf-8").replace("新的正文", "别的正文"), encoding="utf-8")
    os.utime(faiss, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = os.stat(faiss)
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    read.clear()
    third = loading.load_corpus(chain_bank, cache=second.cache)
    assert read == ["faiss.md"] and "别的正文" in third.entries["faiss"].body_text
    cold = loading.load_corpus(chain_bank)
    assert third.entries == cold.entries and third.input_hash == cold.input_hash


def test_a_file_that_cannot_be_read_is_an_issue_not_a_crash(chain_bank):
    from kb.loading import load_corpus

    (chain_bank / "gone.md").symlink_to(chain_bank / "nowhere.md")  # listed, then nothing to read
    corpus = load_corpus(chain_bank)
    assert [(i.path, i.code) for i in corpus.errors] == [(str(chain_bank / "gone.md"), "unreadable")]
    assert "rag" in corpus.entries


def test_a_broken_load_cache_is_ignored(chain_bank, tmp_path):
    out = tmp_path / "build"
    build(chain_bank, out, emitters())
    cache = versions_dir(out) / "load-cache.pickle"
    assert cache.is_file()
    for junk in (b"", b"not a pickle", b"\x80\x05\x95garbage"):
        cache.write_bytes(junk)
        (chain_bank / "faiss.md").write_text(entry("Faiss", body=f"正文 {len(junk)}"), encoding="utf-8")
        result = build(chain_bank, out, emitters())
        assert "正文" in result.corpus.entries["faiss"].body_text
    assert cache.stat().st_size > 1000  # rewritten by the last build


def test_a_job_runs_in_a_child_and_falls_back_to_this_process():
    parent = os.getpid()

    def work() -> int:
        if os.getpid() != parent:
            time.sleep(0.3)  # long enough to be killed below
        return os.getpid()

    job = Job("pid", work)
    assert job.result() not in (parent, None)  # done in the child
    assert Job("pid", work, in_child=False).result() == parent
    job = Job("pid", work)
    job.child.proc.kill()
    assert job.result() == parent  # the child died: done here instead
    job = Job("pid", work)
    proc = job.child.proc
    job.cancel()
    assert not proc.is_alive() and job.child is None


def test_shared_work_is_started_by_a_child_and_finished_by_both():
    parent = os.getpid()

    def work(x: int) -> tuple[int, int]:
        time.sleep(0.002)
        return x * x, os.getpid()

    shared = Shared("squares", list(range(300)), work)
    time.sleep(0.2)  # the child works alone meanwhile (the CLI importing the rest)
    done = shared.result()
    assert [v for v, _ in done] == [x * x for x in range(300)]
    assert len({pid for _, pid in done}) == 2 and parent in {pid for _, pid in done}
    # results far bigger than a pipe holds stream back while both work (no deadlock, nothing lost)
    big = Shared("big", list(range(300)), lambda x: (str(x) * 30_000, os.getpid()), min_items=10)
    got = big.result()
    assert [v for v, _ in got] == [str(x) * 30_000 for x in range(300)] and len({p for _, p in got}) == 2
    # work that fails here stops the child too (it would wait forever to send what it did)
    def fails_here(x: int) -> int:
        if os.getpid() == parent and x > 20:
            raise ValueError("boom")
        time.sleep(0.002)
        return x

    failing = Shared("failing", list(range(300)), fails_here, min_items=10)
    proc = failing.child.proc
    with pytest.raises(ValueError):
        failing.result()
    proc.join(5)
    assert not proc.is_alive()
    # a result that does not pickle cannot come back from the child: what it took is done here
    unpicklable = Shared("closures", list(range(101)), lambda x: (x, lambda: x), min_items=10)
    assert [v for v, _ in unpicklable.result()] == list(range(101))
    shared = Shared("squares", list(range(50)), work)
    shared.child.proc.kill()  # what the child took and never returned is done here
    assert [v for v, _ in shared.result()] == [x * x for x in range(50)]
    shared = Shared("squares", list(range(50)), work)
    proc = shared.child.proc
    shared.cancel()
    assert not proc.is_alive() and shared.child is None
    few = Shared("squares", list(range(50)), work, min_items=51)  # too few to pay for a fork
    seen: list[tuple[str, int, int]] = []
    assert few.child is None and few.result(lambda *a: seen.append(a), "sq") == [(x * x, parent) for x in range(50)]
    assert seen[-1] == ("sq", 50, 50) and [n for _, n, _ in seen] == sorted(n for _, n, _ in seen)


def test_a_prefetched_bank_loads_as_a_cold_one_and_files_changed_since_are_read_again(chain_bank):
    from kb.drafts import prefetch
    from kb.loading import LoadCache, load_corpus

    past = time.time() - 60
    for path in chain_bank.glob("*.md"):
        os.utime(path, (past, past))
    (chain_bank / "broken.md").write_text("---\ntitle: [\n---\n", encoding="utf-8")
    files = prefetch(chain_bank).result()
    assert sorted(f[0].rsplit("/", 1)[1] for f in files if f) == ["faiss.md", "hnsw.md", "milvus.md", "rag.md",
                                                                   "vector-database.md"]
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="改过的正文"), encoding="utf-8")  # after it was parsed
    warm = load_corpus(chain_bank, cache=LoadCache.of(files))
    cold = load_corpus(chain_bank)
    assert warm.entries == cold.entries and warm.issues == cold.issues and warm.input_hash == cold.input_hash
    assert "改过的正文" in warm.entries["faiss"].body_text
    assert [i.code for i in warm.errors if i.path.endswith("broken.md")] == ["front-matter"]


def test_a_watching_build_folds_the_bank_while_it_waits(chain_bank, tmp_path):
    """After a rename, the index and the site's search data (forked) look for the words that
    entered or left the dictionary in every entry: `kb build --watch` prepares the texts while
    idle, so a forked process finds them ready."""
    from kb import analysis
    from kb.watch import watch

    builds: list = []
    watch(chain_bank, tmp_path / "out", emitters(), builds.append, stop=lambda: len(builds) >= 1, interval=0.01)
    sources = [e.source for e in builds[0].corpus.entries.values()]
    child = fork("mentions", lambda: (analysis._folded.cache_info().misses,
                                       [analysis.mentions(s, ["不在文中的词"]) for s in sources],
                                       analysis._folded.cache_info().misses))
    before, found, after = child.wait()[1]
    assert found == [False] * len(sources) and after == before  # every text was ready
    # and docs.json's part of every entry, for the next build's index
    from kb.indexing import _DOC_PARTS
    assert all((e.id, e.content_hash, e.rendered_hash) in _DOC_PARTS for e in builds[0].corpus.entries.values())


def test_docs_json_joined_from_remembered_parts_equals_a_full_builds(chain_bank, tmp_path):
    """docs.json (the texts search snippets are cut from) is joined from each entry's JSON,
    remembered across the builds of a watching process: after edits, an added and a removed
    entry it is what a full build writes."""
    from kb.indexing import DOCS_FILE, remember_docs

    first = build(chain_bank, tmp_path / "inc", emitters())
    remember_docs(first.corpus)
    (chain_bank / "faiss.md").write_text(entry("Faiss", body="改过的正文 [[milvus]]").replace("Faiss 的答案", "改过的答案"),
                                         encoding="utf-8")
    (chain_bank / "extra.md").write_text(entry("Extra", body="新条目 [[milvus]]"), encoding="utf-8")
    (chain_bank / "rag.md").unlink()
    inc = build(chain_bank, tmp_path / "inc", emitters(), cache=first.corpus.cache)
    full = build(chain_bank, tmp_path / "full", emitters(), full=True)
    assert not inc.changes.full and {"faiss", "extra"} <= inc.changes.changed and inc.changes.removed == {"rag"}
    docs = [(r.path / "index" / DOCS_FILE).read_bytes() for r in (inc, full)]
    assert docs[0] == docs[1]
    data = json.loads(docs[0])
    assert "改过的正文" in data["entries"]["faiss"]["text"] and "rag" not in data["entries"] and "extra" in data["entries"]
