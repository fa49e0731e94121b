"""`kb import`: the seed blog post, an Obsidian vault, a Notion export, conflicts, bad input."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
from conftest import CATEGORIES, entry
from typer.testing import CliRunner

from kb.cli import app
from kb.frontmatter import parse as parse_frontmatter
from kb.importer import make_id
from kb.loading import load_corpus

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_a2e60030be32ba35.txt"
needs_seed = pytest.mark.skipif(not SEED.is_file(), reason=f"seed file not found at {SEED} (shared/ beside the repo)")
WARNINGS_ONLY = {"no-summary", "no-sources", "no-questions", "orphan"}
SEED_IDS = {
    "beijing", "huanjue", "rag", "chat-completion", "weitiao", "lianghua-jingdu", "moxing-geshi",
    "daxiao-moxing-xietong", "ai-xunlian", "weitiao-shujuji-goujian", "cpu-gpu", "fenbushi-xunlian",
    "weitiao-shujuji-goujian-liucheng", "prefix-lm-causal-lm", "yongxian-nengli", "xiangliangku", "fenci-jishu",
    "sheng-neicun-xunlian-weitiao-tuili", "jiagou", "qps-qpm", "ref",
}


def kb(*args: str):
    return CliRunner().invoke(app, list(args))


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


def front(path: Path) -> dict:
    return parse_frontmatter(path.read_text(encoding="utf-8")).data


def body(path: Path) -> str:
    return parse_frontmatter(path.read_text(encoding="utf-8")).body


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def errors(bank: Path) -> list[str]:
    return [i.format().replace(str(bank) + "/", "") for i in load_corpus(bank).errors]


@pytest.fixture
def bank(make_bank, tmp_path, monkeypatch) -> Path:
    """An empty bank (categories only); the working directory is tmp_path, so paths print short."""
    monkeypatch.chdir(tmp_path)
    return make_bank({})


# -- the seed: a Hexo blog post -----------------------------------------------------------------

@needs_seed
def test_seed_import_yields_entries_and_questions(bank, tmp_path):
    result = kb("import", str(SEED), "--into", "entries", "--split-level", "1")
    assert result.exit_code == 0, result.output
    assert {p.stem for p in bank.glob("*.md")} == SEED_IDS

    prefix = bank / "prefix-lm-causal-lm.md"
    fm = front(prefix)
    assert fm["title"] == "prefix LM 和 causal LM 区别是什么？"
    assert fm["category"] == "foundations"  # the seed's category 学术 is no category key: it becomes a tag
    assert fm["tags"] == ["pytorch", "推理", "LLM", "学术"]
    assert fm["added"] == date(2024, 7, 23)
    [q] = fm["questions"]
    assert q["id"] == "prefix-lm-causal-lm-q1" and q["q"] == "prefix LM 和 causal LM 区别是什么？"
    assert q["a"].startswith("1. Prefix LM：**Encoder-Decoder 模型的一种变体。")
    assert "2. Causal LM：因果语言模型是一种**自回归模型**" in q["a"]
    assert "\n  a: |" in prefix.read_text(encoding="utf-8")  # answers are block scalars
    assert body(prefix) == ""  # the whole section answered the question

    flow = bank / "weitiao-shujuji-goujian-liucheng.md"  # a bold list item with a 💡 and a sub-list answer
    assert front(flow)["questions"] == [{
        "id": "weitiao-shujuji-goujian-liucheng-q1", "q": "微调后的模型出现能力劣化，灾难性遗忘是怎么回事？",
        "a": "1. 数据分布差异，和以前的数据冲突了，\n2. 引入多任务，增量学习",
    }]
    assert "灾难性遗忘" not in body(flow) and "6. **数据增强：**" in body(flow)

    arch = bank / "jiagou.md"  # a question heading two levels down
    assert [q["q"] for q in front(arch)["questions"]] == [
        "GPT3、LLAMA、ChatGLM 的Layer Normalization 的区别是什么？各自的优缺点是什么？"]
    assert body(arch).startswith("## GLM和LLAMA2架构的区别\n")
    assert "Layer Normalization 的区别" not in body(arch)

    memory = front(bank / "sheng-neicun-xunlian-weitiao-tuili.md")
    assert memory["questions"][0]["q"] == "有哪些省内存的大语言模型训练/微调/推理方法？"
    training = body(bank / "ai-xunlian.md")  # ### directly under # moves up to ##
    assert "\n## 1. Pretraining — 预训练阶段\n" in training and "###" not in training
    chat = body(bank / "chat-completion.md")  # `# Note:` inside a code fence is no heading
    assert "```python\n# Note: you need to be using OpenAI Python v0.27.0" in chat
    assert "![img](https://cdn.jsdelivr.net/" in body(bank / "rag.md")  # images kept as links

    corpus = load_corpus(bank)
    assert corpus.errors == []
    assert {i.code for i in corpus.issues} <= WARNINGS_ONLY
    assert len(corpus.entries) == 21 and len(corpus.questions) == 4
    assert "note: front-matter keys with no place in an entry were dropped: top, cover, toc, mathjax, draft, password" \
        in result.stdout
    assert "Imported 21 entries with 4 questions into entries (0 skipped, 0 unchanged, 0 files failed)." in result.stdout
    assert "Next steps:" in result.stdout

    check = kb("check", "--entries", "entries")
    assert check.exit_code == 0, check.output
    assert "OK: 21 entries, 4 questions, 0 errors," in check.output


@needs_seed
def test_seed_second_import_changes_nothing(bank):
    assert kb("import", str(SEED), "--into", "entries").exit_code == 0
    before = snapshot(bank)
    again = kb("import", str(SEED), "--into", "entries")
    assert again.exit_code == 0
    assert snapshot(bank) == before
    assert "  skip      entries/huanjue.md" in again.stdout
    assert "幻觉: entries/huanjue.md already exists (use --force to overwrite)" in again.stdout
    assert "Imported 0 entries with 0 questions into entries (21 skipped, 0 unchanged, 0 files failed)." in again.stdout
    forced = kb("import", str(SEED), "--into", "entries", "--force")  # same content: rewritten files are left alone
    assert forced.exit_code == 0 and "(0 skipped, 21 unchanged, 0 files failed)" in forced.stdout
    assert snapshot(bank) == before


@needs_seed
def test_seed_dry_run_prints_the_plan_and_writes_nothing(bank):
    result = kb("import", str(SEED), "--dry-run")
    assert result.exit_code == 0
    assert [p.name for p in bank.iterdir()] == ["_categories.yml"]
    assert result.stdout.startswith("Dry run: nothing is written.\n")
    assert f"{SEED}: 21 entries, 4 questions" in result.stdout
    assert "  create    entries/prefix-lm-causal-lm.md" in result.stdout
    assert "prefix LM 和 causal LM 区别是什么？  (1 question)" in result.stdout
    assert "Would import 21 entries with 4 questions into entries" in result.stdout
    assert "Next steps" not in result.stdout


@needs_seed
@pytest.mark.parametrize("level", [2, 3])
def test_seed_at_deeper_split_levels_loads_without_errors(bank, level):
    result = kb("import", str(SEED), "--split-level", str(level))
    assert result.exit_code == 0, result.output
    assert errors(bank) == []
    if level == 3:  # two sections called 优点 are told apart by their parent headings
        titles = {front(p)["title"] for p in bank.glob("*.md")}
        assert {"优点（方式2：大模型反馈）", "优点（方式3：分层推理）"} <= titles


# -- an Obsidian vault --------------------------------------------------------------------------

VAULT = {
    "vault/.obsidian/workspace.md": "# Not a note\n\nsettings\n",
    "vault/Vector Database.md": """
        ---
        aliases: [向量库, VectorDB]
        tags: [rag, "#检索"]
        category: 检索增强
        created: 2025-03-01
        cssclass: wide
        ---
        # 向量数据库

        向量数据库存储 embedding，索引常用 [[HNSW]]，查询见 [[HNSW#查询过程|HNSW 的查询]]，块引用 [[HNSW#^b1c2]]。

        ![[diagram.png]]

        ## 为什么需要向量数据库？

        关系数据库不能高效做近邻搜索，参见 [[Missing Note]]。

        ```python
        # not a heading
        s = "**not a question？**"
        ```
        """,
    "vault/HNSW.md": """
        ---
        tags: ann
        ---
        # HNSW

        分层图，数据存进 [[Vector Database|向量数据库]]。

        ## 查询过程

        从顶层贪心下降。

        - **HNSW 的查询复杂度是多少？**
          近似 O(log n)。
        - 普通列表项
        """,
}


def test_obsidian_vault(bank):
    write(Path("."), VAULT)
    result = kb("import", "vault")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in bank.glob("*.md")) == ["hnsw.md", "vector-database.md"]  # .obsidian/ skipped

    vdb = bank / "vector-database.md"  # English file name beats pinyin of the Chinese title
    fm = front(vdb)
    assert fm["title"] == "向量数据库"
    assert fm["aliases"] == ["向量库", "VectorDB"]
    assert fm["tags"] == ["rag", "检索"]
    assert fm["category"] == "rag"  # the category's display name 检索增强 maps to its key
    assert fm["added"] == date(2025, 3, 1)
    assert fm["questions"][0]["q"] == "为什么需要向量数据库？"
    assert "# not a heading" in fm["questions"][0]["a"]
    text = body(vdb)
    assert "[[HNSW]]" in text and "[[HNSW#查询过程|HNSW 的查询]]" in text  # resolvable: kept as written
    assert "[[HNSW]]。" in text  # the block reference #^b1c2 is dropped, the link stays
    assert "![diagram](diagram.png)" in text  # image embed -> Markdown image
    hnsw = bank / "hnsw.md"
    assert "[[vector-database|向量数据库]]" in body(hnsw)  # by file name: rewritten to the id
    assert front(hnsw)["tags"] == ["ann"]
    assert front(hnsw)["questions"] == [{"id": "hnsw-q1", "q": "HNSW 的查询复杂度是多少？", "a": "近似 O(log n)。"}]
    assert "- 普通列表项" in body(hnsw)

    assert "note: front-matter keys with no place in an entry were dropped: cssclass" in result.stdout
    assert "note: vector-database: links to no entry, kept for `kb check` to report: [[Missing Note]]" in result.stdout
    assert ("note: vector-database: local files linked as written: diagram.png; copy them where the site can serve "
            "them, or link URLs") in result.stdout
    assert errors(bank) == [
        "vector-database.md:11: error [unresolved-link] link [[Missing Note]]: no such entry "
        "(no entry has that id, title or alias)"]
    corpus = load_corpus(bank)
    assert {(l.source, l.target) for l in corpus.edges} == {("vector-database", "hnsw"), ("hnsw", "vector-database")}


# -- a Notion export ----------------------------------------------------------------------------

NOTION = {
    "export/RAG 基础 0123456789abcdef0123456789abcdef.md": """
        # RAG 基础

        检索增强生成，另见 [Transformer](Transformer%20fedcba9876543210fedcba9876543210.md)。

        - **RAG 解决什么问题？**

        <aside>
        💡 让模型回答时引用外部知识，减少幻觉。

        也便于更新知识。
        </aside>

        - **RAG 的主要步骤有哪些？**

            1. 检索
            2. 生成

        **检索和生成分别用什么模型？**

        检索用 embedding 模型，生成用 LLM。

        <details>
        <summary>如何评估 RAG？</summary>

        看检索召回率和答案忠实度。

        </details>

        <aside>
        💡 chunk 大小很重要。
        </aside>
        """,
    "export/Transformer fedcba9876543210fedcba9876543210.md": """
        # Transformer

        注意力即一切。

        **What does self-attention compute?**

        A weighted sum of values.
        """,
}


def test_notion_export(bank):
    write(Path("."), NOTION)
    result = kb("import", "export", "--category", "rag")
    assert result.exit_code == 0, result.output
    rag = bank / "rag.md"
    fm = front(rag)
    assert fm["category"] == "rag"
    assert [(q["id"], q["q"], q["a"]) for q in fm["questions"]] == [
        ("rag-q1", "RAG 解决什么问题？", "让模型回答时引用外部知识，减少幻觉。\n\n也便于更新知识。"),
        ("rag-q2", "RAG 的主要步骤有哪些？", "1. 检索\n2. 生成"),
        ("rag-q3", "检索和生成分别用什么模型？", "检索用 embedding 模型，生成用 LLM。"),
        ("rag-q4", "如何评估 RAG？", "看检索召回率和答案忠实度。"),
    ]
    assert body(rag) == "检索增强生成，另见 [Transformer](transformer.md)。\n\n> chunk 大小很重要。\n"
    assert front(bank / "transformer.md")["questions"] == [
        {"id": "transformer-q1", "q": "What does self-attention compute?", "a": "A weighted sum of values."}]
    assert errors(bank) == []
    assert "<aside>" not in rag.read_text(encoding="utf-8")


# -- the bank is never clobbered ----------------------------------------------------------------

def test_existing_ids_titles_and_question_ids(bank):
    (bank / "attention.md").write_text(entry("注意力", category="foundations", questions=(
        "questions:\n  - id: softmax-q1\n    q: 为什么？\n    a: |\n      因为。\n")), encoding="utf-8")
    (bank / "other.md").write_text(entry("Other", extra="id: softmax-x\n", questions=(
        "questions:\n  - id: softmax-q1-x\n    q: 为什么？\n    a: |\n      因为。\n")), encoding="utf-8")
    write(Path("."), {"notes.md": """
        # Attention

        Scaled dot products.

        # 注意力

        另一个注意力。

        # Softmax

        ## Why softmax?

        It normalises.

        # Softmax

        Twice in one file.
        """})
    before = (bank / "attention.md").read_bytes()
    result = kb("import", "notes.md")
    assert result.exit_code == 0, result.output
    assert (bank / "attention.md").read_bytes() == before
    assert "Attention: entries/attention.md already exists (use --force to overwrite)" in result.stdout
    assert ("注意力: title '注意力' already names entry 'attention' (entries/attention.md); "
            "merge it by hand or rename the heading") in result.stdout
    created = sorted(p.stem for p in bank.glob("*.md"))
    assert created == ["attention", "other", "softmax-notes", "softmax-notes-2"]
    assert [front(bank / "softmax-notes.md")["title"], front(bank / "softmax-notes-2.md")["title"]] == [
        "Softmax（notes）", "Softmax（notes）（2）"]
    assert front(bank / "softmax-notes.md")["questions"][0]["id"] == "softmax-notes-q1"
    assert errors(bank) == []

    forced = kb("import", "notes.md", "--force")  # overwrites our own file, never someone else's entry
    assert forced.exit_code == 0
    assert "  overwrite entries/attention.md" in forced.stdout
    assert front(bank / "attention.md")["title"] == "Attention"
    assert "merge it by hand" not in forced.stdout  # 注意力 no longer names another entry: it is imported
    assert errors(bank) == []


def test_question_ids_never_collide_with_the_bank(bank):
    (bank / "x.md").write_text(entry("X", questions=(
        "questions:\n  - id: kv-cache-q1\n    q: 为什么？\n    a: |\n      因为。\n")), encoding="utf-8")
    write(Path("."), {"kv.md": "# KV Cache\n\n## 为什么需要 KV Cache？\n\n省计算。\n\n## 它占多少显存？\n\n很多。\n"})
    assert kb("import", "kv.md").exit_code == 0
    assert [q["id"] for q in front(bank / "kv-cache.md")["questions"]] == ["kv-cache-q2", "kv-cache-q3"]
    assert errors(bank) == []


# -- bad input ----------------------------------------------------------------------------------

def test_bad_input_is_reported_and_the_rest_imported(bank):
    write(Path("."), {
        "in/good.md": "# Good\n\nFine.\n",
        "in/empty.md": "  \n\n",
        "in/latin1.md": "# Caf\xe9\n".encode("latin-1"),
        "in/blob.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "in/flat.md": "## Only level two\n\ntext\n",
        "in/plain.md": "no headings at all\n",
        "in/hollow.md": "# Empty\n\n# Also empty\n",
        "in/sub/data.json": '{"a": 1}',
        "data.json": '{"a": 1}',
        "blank/readme.txt": "not markdown by name",
    })
    result = kb("import", "in", "data.json", "missing.md", "blank")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "missing.md: no such file or folder",
        "blank: no .md or .markdown files in this folder",
        "in/blob.md: not a text file (it contains NUL bytes); kb import reads Markdown",
        "in/empty.md: the file is empty",
        "in/flat.md: no level-1 headings (# Title) to split at; its headings are level 2: try --split-level 2",
        "in/hollow.md: every section is empty: nothing to import",
        "in/latin1.md: not UTF-8 (byte 0xe9 at offset 5); save it as UTF-8",
        "in/plain.md: no headings to split at: each entry starts at a heading (# Title); add headings or a "
        "front-matter title",
        "data.json: not a Markdown file (.json); kb import reads .md, .markdown or plain-text notes",
    ]
    assert [p.name for p in bank.glob("*.md")] == ["good.md"]
    assert "Imported 1 entry with 0 questions into entries (0 skipped, 0 unchanged, 9 files failed)." in result.stdout


def test_a_named_txt_file_is_read_as_markdown_and_a_titled_file_is_one_entry(bank):
    write(Path("."), {"post.txt": "---\ntitle: KV Cache\ndate: 2025-01-02\n---\n## 原理\n\n缓存 K 和 V。\n"})
    result = kb("import", "post.txt")
    assert result.exit_code == 0, result.output
    fm = front(bank / "kv-cache.md")
    assert (fm["title"], fm["added"]) == ("KV Cache", date(2025, 1, 2))
    assert body(bank / "kv-cache.md") == "## 原理\n\n缓存 K 和 V。\n"


def test_hugo_toml_setext_headings_and_awkward_answers(bank):
    write(Path("."), {"hugo.md": (
        '+++\ntitle = "Post"\ntags = ["a"]\ndate = 2024-05-06T10:00:00Z\n+++\n\r\n'
        "KV: cache\r\n=========\r\n\r\nsetext body\r\n\r\nWhy cache?\r\n----------\r\n\r\n    indented code\r\n\r\n"
        "# true\n\n## Tricky？\n\nline\n\ttab line\n\n---\n\n...\n")})
    result = kb("import", "hugo.md")
    assert result.exit_code == 0, result.output
    kv = bank / "kv-cache.md"
    assert front(kv)["title"] == "KV: cache" and front(kv)["added"] == date(2024, 5, 6)
    assert front(kv)["questions"][0] == {"id": "kv-cache-q1", "q": "Why cache?", "a": "    indented code"}
    tricky = bank / "true.md"
    assert front(tricky)["title"] == "true"  # quoted, so YAML keeps it a string
    assert front(tricky)["questions"][0]["a"] == "line\n    tab line\n\n---\n\n..."
    assert "  a: |-\n" in tricky.read_text(encoding="utf-8")  # still a block scalar
    assert errors(bank) == []


def test_bank_and_category_problems(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"n.md": "# A\n\ntext\n"})
    no_bank = kb("import", "n.md", "--into", "nowhere")
    assert no_bank.exit_code == 1
    assert no_bank.stderr == ("Aborted: nowhere is not a bank folder (folder does not exist); "
                              "create nowhere/_categories.yml first\n")
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "_categories.yml").write_text(CATEGORIES, encoding="utf-8")
    bad = kb("import", "n.md", "--category", "ragg")
    assert bad.exit_code == 2
    assert "unknown category 'ragg'; known: foundations, rag, inference" in bad.output
    assert not (tmp_path / "entries" / "a.md").exists()


def test_help_explains_the_options():
    result = kb("import", "--help")
    assert result.exit_code == 0
    for option in ("--into", "--split-level", "--category", "--dry-run", "--force"):
        assert option in result.output


@pytest.mark.parametrize(("title", "expected"), [
    ("HNSW算法", "hnsw"),
    ("prefix LM 和 causal LM 区别是什么？", "prefix-lm-causal-lm"),
    ("幻觉", "huanjue"),
    ("微调", "weitiao"),
    ("关于AI训练相关概念", "ai-xunlian"),
    ("Pretraining — 预训练阶段", "pretraining"),
    ("向量数据库与HNSW", "xiangliang-shujuku-hnsw"),
    ("Index", "index-entry"),
    ("💡", "entry"),
    ("一个非常非常长的标题用来测试截断是否在词的边界上进行处理以及结果", "yige-feichang-feichang-chang-biaoti"),
])
def test_make_id(title, expected):
    assert make_id(title) == expected
