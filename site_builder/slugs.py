"""URL-safe names for tags, and short labels for graph nodes.

A tag page lives at `t/<slug>.html`. Tags are free text (often Chinese), so the slug is
ASCII: lowercase letters and digits kept, Chinese turned into pinyin, anything else a dash.
A tag that is not already a plain lowercase slug gets a short hash suffix, which keeps slugs
unique (`ANN` and `ann`, or two homophones, never share a page) and independent of which
other tags exist, so a slug never changes when another tag is added.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

PLAIN_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@lru_cache(maxsize=1)
def _pinyin_table() -> dict[int, str]:
    """pypinyin's character table (code point -> readings), without importing the package: its
    __init__ also loads the phrase dictionary, ~0.4 s, which single characters do not need."""
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("pypinyin")
        path = os.path.join(os.path.dirname(spec.origin), "pinyin_dict.py")  # type: ignore[union-attr, arg-type]
        table_spec = importlib.util.spec_from_file_location("_kb_pinyin_dict", path)
        module = importlib.util.module_from_spec(table_spec)  # type: ignore[arg-type]
        table_spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module.pinyin_dict
    except (ImportError, OSError, AttributeError):  # pragma: no cover - a differently packaged pypinyin
        from pypinyin.pinyin_dict import pinyin_dict

        return pinyin_dict


def _pinyin(char: str) -> str:
    """The first reading of a character, without tone marks ('' if unknown)."""
    readings = _pinyin_table().get(ord(char), "")
    return readings.split(",")[0]


@lru_cache(maxsize=None)
def tag_slug(tag: str) -> str:
    """`向量检索` -> `xiang-liang-jian-suo-1a2b3c`; `rag` -> `rag`."""
    text = unicodedata.normalize("NFKC", tag).strip()
    if PLAIN_RE.match(text) and text == tag:
        return text
    parts: list[str] = []
    word = ""
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            word += ch
            continue
        if word:
            parts.append(word)
            word = ""
        if CJK_RE.match(ch):
            py = re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", _pinyin(ch)).encode("ascii", "ignore").decode())
            if py:
                parts.append(py)
    if word:
        parts.append(word)
    base = "-".join(parts)[:48].strip("-") or "tag"
    return f"{base}-{hashlib.sha1(tag.encode()).hexdigest()[:6]}"


def tag_slugs(tags: set[str], known: dict[str, str] | None = None) -> dict[str, str]:
    """Slug of every tag (reusing `known` slugs); raises if two tags would share a page."""
    known = known or {}
    out = {t: known.get(t) or tag_slug(t) for t in sorted(tags)}
    seen: dict[str, str] = {}
    for tag, slug in out.items():
        if slug in seen:
            raise ValueError(f"tags '{seen[slug]}' and '{tag}' would share the page t/{slug}.html")
        seen[slug] = tag
    return out


def short_label(title: str, aliases: list[str], limit: float = 9) -> str:
    """A node label: the title if short, else its first word (`HNSW 分层可导航小世界图` -> `HNSW`,
    `向量数据库 Vector Database` -> `向量数据库`), else its shortest alias, else a cut title."""
    title = " ".join(title.split())
    if text_width(title) <= limit:
        return title
    head = title.split(" ")[0]
    if len(head) >= 2 and text_width(head) <= limit:
        return head
    usable = [a for a in aliases if len(a) >= 2 and text_width(a) <= limit]
    if usable:
        return min(usable, key=lambda a: (text_width(a), aliases.index(a)))
    out = ""
    for ch in title:
        if text_width(out + ch) > limit - 1:
            break
        out += ch
    return out.rstrip() + "…"


@lru_cache(maxsize=65536)
def text_width(text: str) -> float:
    """Width in ems, roughly: CJK and full-width characters 1, others 0.55."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.58 for ch in text)
