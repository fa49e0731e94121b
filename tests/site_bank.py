"""A small but complete bank for the site tests: the RAG chain, MoE with its Chinese alias,
code, a table, math, footnotes, Chinese tags, and (optionally) hostile titles, aliases and tags."""

from __future__ import annotations

from pathlib import Path

CATEGORIES = "architecture: 模型架构\ninference: 推理与部署\nrag: 检索增强\n"


def _entry(title: str, category: str, body: str, *, aliases: str = "[]", tags: str = "[]", prereq: str = "[]",
           related: str = "[]", difficulty: int = 2, added: str = "2026-01-01", questions: list[tuple] = (),
           summary: str | None = None, sources: str = '  - "Some paper, 2020, arXiv:1603.09320"\n') -> str:
    qs = "".join(
        f"  - id: {qid}\n    q: {q}\n    difficulty: {d}\n    a: |\n" + "".join(f"      {line}\n" for line in a.splitlines())
        for qid, q, d, a in questions
    )
    return (f"---\ntitle: {title}\naliases: {aliases}\ncategory: {category}\ntags: {tags}\ndifficulty: {difficulty}\n"
            f"added: {added}\nsummary: {summary if summary is not None else title + ' 的一句话定义。'}\n"
            f"prerequisites: {prereq}\nrelated: {related}\nsources:\n{sources}questions:\n{qs}---\n{body}\n")


FILES = {
    "rag.md": _entry(
        "RAG 检索增强生成", "rag",
        "## 流程\n\n检索增强生成先用 [[vector-database|向量数据库]] 召回，再交给模型生成。"
        "向量索引常用 [[hnsw]]，见 [[hnsw#查询过程|HNSW 的查询过程]]。\n\n"
        "## 评估\n\n| 指标 | 含义 |\n|---|---|\n| Recall@k | 前 k 个结果里有多少相关文档 |\n| 忠实度 | 回答是否基于检索到的内容 |\n",
        aliases="[RAG, Retrieval-Augmented Generation]", tags="[检索, RAG]", related="[moe]", added="2026-02-01",
        questions=[("rag-what", "RAG 的基本流程是什么？", 1, "先检索，再生成。检索用 [[vector-database]]。"),
                   ("rag-eval", "如何评估一个 RAG 系统？", 2, "看召回率和忠实度。")]),
    "vector-database.md": _entry(
        "向量数据库", "rag", "## 是什么\n\n存储向量并做近似最近邻检索。索引常用 [[HNSW]] 或 IVF。\n\n```python\nindex.search(q, k=10)\n```\n",
        aliases="[Vector Database, VectorDB]", tags="[检索, ANN]", prereq="[rag]",
        questions=[("vdb-what", "向量数据库与传统数据库有何不同？", 1, "按相似度检索，而不是精确匹配。")]),
    "hnsw.md": _entry(
        "HNSW 分层可导航小世界图", "rag",
        "## 查询过程\n\n从顶层贪心搜索，逐层下降。复杂度约为 $O(\\log N)$。\n\n$$\nP(l) = e^{-l/m_L}\n$$\n\n"
        "实现见 [[milvus]] 与 [[faiss]][^1]。\n\n## 参数\n\n`M` 与 `efConstruction`。\n\n[^1]: 两者都支持 HNSW。\n",
        aliases="[HNSW, Hierarchical Navigable Small World]", tags="[检索, ANN, 图索引]", prereq="[vector-database]",
        related="[faiss, milvus]", difficulty=3,
        questions=[("hnsw-search", "HNSW 的查询过程是怎样的？为什么快？", 2, "分层跳表式的贪心搜索。\n\n- 顶层稀疏\n- 底层稠密"),
                   ("hnsw-params", "M 和 efSearch 参数如何影响召回与速度？", 3, "M 越大图越稠密，召回高、内存大。")]),
    "milvus.md": _entry(
        "Milvus", "rag", "Milvus 是开源向量数据库，支持 [[hnsw#查询过程|HNSW]] 等索引。\n",
        tags="[向量数据库产品]", prereq="[hnsw]",
        questions=[("milvus-arch", "Milvus 的架构有哪些组件？", 2, "存储与计算分离：proxy、query node、data node。")]),
    "faiss.md": _entry(
        "Faiss", "rag", "Faiss 是 Meta 的向量检索库，参见 [Milvus](milvus.md)。\n",
        tags="[向量数据库产品, ANN]", prereq="[hnsw]",
        questions=[("faiss-index", "Faiss 常见的索引类型有哪些？", 2, "Flat、IVF、PQ、HNSW。")]),
    "moe.md": _entry(
        "混合专家 MoE (Mixture of Experts)", "architecture",
        "## 是什么\n\n把 [[transformer]] 的 FFN 换成多个专家，由路由器为每个 token 选 top-$k$ 个专家。\n",
        aliases="[MoE, Mixture of Experts, 混合专家模型, 稀疏专家模型]", tags="[稀疏激活, 路由]", prereq="[transformer]",
        added="2026-03-01",
        questions=[("moe-how", "MoE 层是如何工作的？", 1, "路由器打分，选 top-$k$ 专家，加权求和。"),
                   ("moe-balance", "为什么 MoE 需要负载均衡？", 2, "避免专家坍塌：加辅助损失与容量因子。")]),
    "transformer.md": _entry(
        "Transformer", "architecture",
        "## 结构\n\n由自注意力与 FFN 组成。推理时用 [[kv-cache|KV Cache]] 加速。混合专家见 [[MoE]]。\n",
        aliases="[Transformer 架构]", tags="[注意力]", difficulty=1,
        questions=[("transformer-parts", "Transformer 由哪些部分组成？", 1, "多头注意力、FFN、残差与归一化。")]),
    "kv-cache.md": _entry(
        "KV Cache", "inference", "## 原理\n\n缓存历史 token 的 K 与 V，避免重复计算。显存约为 $2 \\times L \\times d$ 每 token。\n",
        aliases="[KV 缓存]", tags="[推理加速, 注意力]", prereq="[transformer]",
        questions=[("kv-cache-why", "KV Cache 为什么能加速推理？", 1, "解码时只算新 token 的 Q、K、V。")]),
}


def hostile_files() -> dict[str, str]:
    """Entries whose text tries to inject markup into the pages that show it."""
    evil = "<script>alert(1)</script>"
    return {
        "evil.md": _entry(
            f'Evil {evil} "quoted" <img src=x onerror=alert(1)>', "rag",
            "Body with raw <script>alert(2)</script> and <b onmouseover=alert(3)>bold</b>, links to [[rag]].\n",
            aliases='["<svg onload=alert(4)>", "x\\" onerror=\\"alert(5)"]', tags='["<i>tag</i>", "a&b"]',
            summary="Summary <iframe src=javascript:alert(6)></iframe>",
            sources='  - "<a href=javascript:alert(7)>click</a> https://example.org/p?a=1&b=<2>"\n',
            questions=[("evil-q", "Question <script>alert(8)</script>?", 1, "Answer <img src=x onerror=alert(9)>")]),
    }


def write_site_bank(root: Path, extra: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_categories.yml").write_text(CATEGORIES, encoding="utf-8")
    for name, text in {**FILES, **(extra or {})}.items():
        (root / name).write_text(text, encoding="utf-8")
    return root
