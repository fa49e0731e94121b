"""Shared fixtures: small real banks written to temp folders."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = "foundations: 基础概念\nrag: 检索增强\ninference: 推理与部署\n"


def entry(title: str, *, category: str = "rag", body: str = "", extra: str = "", questions: str | None = None) -> str:
    """The text of a valid entry file; `extra` adds front-matter lines, `questions` replaces the default."""
    slug = "q-" + hashlib.sha1(title.encode()).hexdigest()[:8]
    qs = questions if questions is not None else (
        f"questions:\n  - id: {slug}-q1\n    q: 什么是 {title}？\n    difficulty: 1\n    a: |\n      {title} 的答案。\n"
    )
    return (
        f"---\ntitle: {title}\ncategory: {category}\ndifficulty: 2\nadded: 2026-01-01\n"
        f"summary: {title} 的一句话定义。\nsources:\n  - \"Some paper, 2020\"\n{extra}{qs}---\n{body}\n"
    )


def write_bank(root: Path, files: dict[str, str | bytes], categories: str = CATEGORIES) -> Path:
    """Write `files` (name -> text or bytes) and a categories file into `root`; return root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_categories.yml").write_text(categories, encoding="utf-8")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content) if content.startswith("\n") else content, encoding="utf-8")
    return root


@pytest.fixture
def make_bank(tmp_path: Path):
    """make_bank(files) -> path of a bank folder holding those files and a categories file."""

    def make(files: dict[str, str | bytes], categories: str = CATEGORIES, name: str = "entries") -> Path:
        return write_bank(tmp_path / name, files, categories)

    return make


@pytest.fixture
def chain_bank(make_bank):
    """A small valid bank: rag -> vector-database -> hnsw -> milvus / faiss."""
    return make_bank({
        "rag.md": entry("RAG", body="检索增强生成依赖 [[vector-database|向量数据库]]。"),
        "vector-database.md": entry("向量数据库", extra="aliases: [Vector Database]\n", body="索引常用 [[HNSW]]。"),
        "hnsw.md": entry("HNSW", extra="prerequisites: [vector-database]\n",
                         body="## 查询过程\n\n实现见 [[milvus]] 与 [[faiss]]。"),
        "milvus.md": entry("Milvus", body="Milvus 支持 [[hnsw#查询过程|HNSW]]。"),
        "faiss.md": entry("Faiss", body="Faiss 是一个库，参见 [Milvus](milvus.md)。"),
    })
