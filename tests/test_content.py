"""The real bank: clean under --strict, every seed concept present, the RAG chain walkable."""

from __future__ import annotations

import pytest
from conftest import ROOT

from kb.links import norm, shortest_path
from kb.loading import load_corpus

# Every concept of the seed blog post (../shared/seeds/000_...txt), by a name an author would type.
SEED_CONCEPTS = [
    "幻觉", "RAG", "向量数据库", "HNSW", "多路召回", "RRF", "ChatCompletion", "微调", "Megatron-LM", "DeepSpeed",
    "RLHF", "奖励模型", "PPO", "MoE", "Mixtral 8x7B", "量化", "显存估算", "FP16", "BF16", "GGUF", "llama.cpp", "ONNX",
    "大小模型协作", "大模型训练阶段", "预训练", "SFT", "微调数据集构建", "灾难性遗忘", "CPU vs GPU", "数据并行",
    "张量并行", "流水线并行", "Prefix LM", "Causal LM", "涌现能力", "Milvus", "Faiss", "BPE", "WordPiece",
    "SentencePiece", "Unigram", "省显存方法", "剪枝", "知识蒸馏", "GLM vs LLaMA", "Pre-LN", "Post-LN", "QPS", "QPM",
    "TTFT",
]
EXPECTED = {"Mixtral 8x7B": "moe", "显存估算": "dtype-memory", "大模型训练阶段": "training-stages", "CPU vs GPU": "cpu-vs-gpu"}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(ROOT / "entries")


def test_bank_is_clean_under_strict(corpus):
    assert [i.format() for i in corpus.issues] == []


def test_bank_size(corpus):
    assert len(corpus.entries) >= 70
    assert len(corpus.questions) >= 240
    assert 8 <= len(corpus.categories) <= 12
    assert all(len(e.questions) >= 3 and e.sources and e.summary for e in corpus.entries.values())


@pytest.mark.parametrize("name", SEED_CONCEPTS)
def test_every_seed_concept_resolves(corpus, name):
    names = {norm(n): e.id for e in corpus.entries.values() for n in (e.id, e.title, *e.aliases)}
    found = names.get(norm(name)) or next((i for k, i in names.items() if norm(name) in k), None)
    assert found is not None, f"no entry for seed concept {name!r}"
    if name in EXPECTED:
        assert found == EXPECTED[name]


def test_rag_chain_is_walkable_by_body_links(corpus):
    body_links = {e.id: {l.target for l in e.links if l.kind == "link"} for e in corpus.entries.values()}
    assert "vector-database" in body_links["rag"]
    assert "hnsw" in body_links["vector-database"]
    assert {"milvus", "faiss"} <= body_links["hnsw"]
    path = shortest_path(lambda n: body_links[n], "rag", "faiss")
    assert path is not None and len(path) <= 4


def test_seed_errors_are_corrected(corpus):
    """A few of the seed's factual errors, checked where the bank states the fact."""
    assert "BERT" in corpus.entries["wordpiece"].body_text  # BERT uses WordPiece, not BPE
    assert "最底层包含全部向量" in corpus.entries["hnsw"].summary  # the bottom layer holds every point
    layernorm = corpus.entries["layernorm-placement"].body_text
    assert "GPT-3" in layernorm and "Pre-LN" in layernorm  # GPT-3 is Pre-LN, not Post-LN
