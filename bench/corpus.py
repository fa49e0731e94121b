"""Generate a deterministic zh+en bank of N entries for benchmarks (`python -m bench.corpus N DIR`).

Words are drawn from the real bank's own vocabulary, so segmentation and term statistics look
like real content: ~1,300 characters of body per entry, 3 questions, aliases, tags, links.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ROOT / "entries" / "_categories.yml"
TERMS = ["Transformer", "KV Cache", "LoRA", "RLHF", "MoE", "HNSW", "Faiss", "Milvus", "RoPE", "BPE", "SFT", "DPO",
         "FlashAttention", "vLLM", "GQA", "RMSNorm", "ZeRO", "FSDP", "GGUF", "ONNX", "BM25", "RRF", "PPO"]


def vocabulary() -> list[str]:
    """Chinese words of the real bank (or a small fixed list when it is absent)."""
    import rjieba

    text = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "entries").glob("*.md")))
    # its own segmenter: kb.analysis adds a bank's words to rjieba's default one
    words = [w for w in rjieba.Jieba().cut(text) if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", w)]
    return sorted(set(words)) or ["模型", "训练", "推理", "显存", "检索", "向量", "注意力", "参数"]


def generate(n: int, out: Path, seed: int = 7) -> Path:
    """Write n entries and the categories file into `out` (replaced)."""
    rng = random.Random(seed)
    words = vocabulary()
    cats = list(yaml.safe_load(CATEGORIES.read_text(encoding="utf-8")))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(CATEGORIES, out / "_categories.yml")
    for i in range(n):
        term = f"{rng.choice(TERMS)}{i}"
        zh = "".join(rng.sample(words, 2))
        links = sorted({rng.randrange(n) for _ in range(3)} - {i})
        paras = []
        for p in range(6):
            sentence = "，".join("".join(rng.choices(words, k=rng.randint(3, 7))) for _ in range(rng.randint(6, 12)))
            extra = f" [[e{links[p % len(links)]}]]" if links and p < 3 else ""
            paras.append(f"{sentence}，与 {rng.choice(TERMS)} 相关{extra}。")
        body = "\n\n".join(f"## 小节 {k}\n\n{para}" for k, para in enumerate(paras))
        fm = {
            "title": f"{zh} {term}",
            "aliases": [term, f"{zh}{i}"],
            "category": cats[i % len(cats)],
            "tags": rng.sample(words[:60], 2),
            "difficulty": rng.randint(1, 3),
            "added": "2026-01-01",
            "summary": "".join(rng.choices(words, k=12)) + "。",
            "prerequisites": [f"e{j}" for j in links if j < i][:1],
            "sources": ["Generated benchmark entry"],
            "questions": [
                {"id": f"e{i}-q{k}", "q": f"{term} 的{rng.choice(words)}是什么？", "difficulty": rng.randint(1, 3),
                 "a": "".join(rng.choices(words, k=80)) + "。\n"}
                for k in range(3)
            ],
        }
        text = "---\n" + yaml.safe_dump(fm, allow_unicode=True, sort_keys=False) + "---\n" + body + "\n"
        (out / f"e{i}.md").write_text(text, encoding="utf-8")
    return out


if __name__ == "__main__":
    generate(int(sys.argv[1]), Path(sys.argv[2]))
