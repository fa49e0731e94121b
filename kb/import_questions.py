"""The Markdown side of `kb import`: split a note into sections, find its questions, fix its links.

Everything here works on source lines located by markdown-it tokens (`token.map`), never by
regular expressions over raw text: a `#` in a code block is not a heading, and `**Q？**` in a
fence is not a question. Only the inside of an HTML block that tokens found (`<aside>`,
`<details>`) is read with a pattern.

A question is what authors mark as one: a heading, a bold paragraph or a bold list item whose
text ends in `？` or `?`. Its answer is what follows it: under a heading, everything up to the
next heading of the same or a higher level; after a bold paragraph or an empty bold list item,
everything up to the next heading, question or `---`; a list item's own sub-list or paragraphs;
a `<details>` block's content. Notion's `<aside>` callouts are unwrapped inside answers and
become block quotes in bodies (entries never render raw HTML).
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from pathlib import Path
from urllib.parse import quote, unquote

from markdown_it.token import Token

from kb import markdown
from kb.links import norm
from kb.markdown import make_md

_MD = make_md()
_MD.options["html"] = True  # see <aside> and <details> as HTML blocks; entries still escape raw HTML

QUESTION_END = ("?", "？")
REGION_TAGS = ("aside", "details")
_MARKER = re.compile(r"^\s*(?:(?:Q|问题?)\s*\d*\s*[:：.]?)?\s*$", re.IGNORECASE)
_NUMBERING = re.compile(r"^(?:\d{1,2}[.．)]\s+|\d{1,2}、\s*|[一二三四五六七八九十]{1,3}、\s*|(?:Q|问题?)\s*\d*\s*[:：]\s*)",
                        re.IGNORECASE)
MEDIA = frozenset("png jpg jpeg gif svg webp bmp avif mp4 webm mp3 pdf".split())
NOTION_HASH = re.compile(r"\s+[0-9a-f]{32}$")  # Notion export file names: "Page title 0123...cdef.md"
_ICON_IMG = re.compile(r"<img\b[^>]*>\s*", re.IGNORECASE)


@dataclass
class Item:
    """A top-level list item: its lines, and its question if its first paragraph is one."""

    start: int
    end: int
    body_start: int  # first line after the item's first paragraph
    question: str | None = None
    rest: str = ""  # text after the bold question in the same paragraph


@dataclass
class Block:
    """A top-level block of a text, by line range [start, end)."""

    kind: str  # heading, paragraph, list, aside, details, hr, other
    start: int
    end: int
    level: int = 0
    text: str = ""  # heading text; summary of a <details>
    setext: bool = False
    question: str | None = None
    rest: str = ""
    items: list[Item] = field(default_factory=list)

    @property
    def opens_question(self) -> bool:
        return self.question is not None or any(i.question for i in self.items)


@dataclass
class QA:
    q: str
    a: str
    line: int  # 0-based line in the section text; -1 for the section's own heading


@dataclass
class Section:
    title: str
    line: int  # 0-based line of the heading in the parsed text
    text: str  # the lines under the heading, up to the next heading at or above the split level
    parent: str  # text of the nearest heading above the split level, "" if none


def _is_symbol(ch: str) -> bool:
    """Icons, spaces and their marks (💡, ❓, ✅, variation selectors, bullets); not $, +, letters or ？."""
    return unicodedata.category(ch) in ("So", "Cf", "Mn", "Zs") or ch in "•·▶►→"


def clean_text(text: str) -> str:
    """A heading or question as a title: icons, list numbering and trailing colons removed."""
    text = " ".join(text.split())
    text = text.lstrip("".join(c for c in text[:4] if _is_symbol(c))).strip()
    text = _NUMBERING.sub("", text, count=1).strip()
    return text.rstrip(":：").strip()


def is_question(text: str) -> bool:
    return clean_text(text).endswith(QUESTION_END) and len(clean_text(text)) > 1


def _plain(children: list[Token]) -> str:
    parts = []
    for c in children:
        if c.type in ("text", "code_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif c.type == "wikilink":
            parts.append(c.meta["label"] or c.meta["target"])
        elif c.type == "image":
            parts.append(c.content)
        elif c.type in ("math_inline", "math_inline_double"):
            parts.append(f"${c.content}$")
    return " ".join("".join(parts).split())


def _bold_question(inline: Token) -> tuple[str | None, str]:
    """(question, rest) if a paragraph starts with bold text that ends in ？/? (after an icon)."""
    kids = inline.children or []
    k = 0
    while k < len(kids) and kids[k].type == "text" and (_MARKER.match(kids[k].content)
                                                         or all(map(_is_symbol, kids[k].content))):  # 💡, Q1:
        k += 1
    if k >= len(kids) or kids[k].type != "strong_open":
        return None, ""
    depth, m = 0, k
    for m in range(k, len(kids)):
        depth += {"strong_open": 1, "strong_close": -1}.get(kids[m].type, 0)
        if depth == 0:
            break
    question = _plain(kids[k + 1 : m])
    after = _plain(kids[m + 1 :])
    if after.startswith(QUESTION_END):
        question += after[0]
    if not is_question(question):
        return None, ""
    content, marker = inline.content, kids[k].markup
    close = content.find(marker, content.find(marker) + len(marker))
    rest = content[close + len(marker) :] if close >= 0 else ""
    return clean_text(question), rest.lstrip("?？:： \t").strip()


def _region_tag(html: str) -> str | None:
    return next((tag for tag in REGION_TAGS if html.lstrip().lower().startswith(f"<{tag}")), None)


def _region_end(lines: list[str], start: int, own_end: int, tag: str) -> int:
    for i in range(start, len(lines)):
        if f"</{tag}" in lines[i].lower():
            return i + 1
    return own_end  # never closed: just the HTML block itself


def _region_inner(block: Block, lines: list[str]) -> tuple[str, str]:
    """(summary, inner Markdown) of an <aside> or <details> region."""
    text = "\n".join(lines[block.start : block.end])
    summary = ""
    if block.kind == "details":
        m = re.search(r"<summary[^>]*>(.*?)</summary>", text, re.IGNORECASE | re.DOTALL)
        if m:
            summary = " ".join(re.sub(r"<[^>]+>|\*\*|__", "", m.group(1)).split())
            text = text[: m.start()] + text[m.end() :]
    text = re.sub(rf"</?{block.kind}\b[^>]*>", "", text, flags=re.IGNORECASE)
    text = _ICON_IMG.sub("", text) if block.kind == "aside" else text
    inner = textwrap.dedent(text).strip("\n")
    first = inner.lstrip()
    if block.kind == "aside" and first and _is_symbol(first[0]):  # Notion's callout icon, e.g. 💡
        inner = first.lstrip("".join(c for c in first[:3] if _is_symbol(c))).lstrip()
    return summary, inner


def scan(text: str) -> tuple[list[str], list[Block]]:
    """Lines of `text` and its top-level blocks (from tokens, so code never counts)."""
    tokens = _MD.parse(text)
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.level != 0 or t.map is None or t.nesting == -1:
            i += 1
            continue
        start, end = t.map
        if t.type == "heading_open":
            text = _plain(tokens[i + 1].children or [])
            blocks.append(Block("heading", start, end, level=int(t.tag[1]), text=text, setext=t.markup in ("=", "-"),
                                question=clean_text(text) if is_question(text) else None))
        elif t.type == "paragraph_open":
            question, rest = _bold_question(tokens[i + 1])
            blocks.append(Block("paragraph", start, end, question=question, rest=rest))
        elif t.type in ("bullet_list_open", "ordered_list_open"):
            block = Block("list", start, end)
            j = i + 1
            while not (tokens[j].level == 0 and tokens[j].nesting == -1):
                it = tokens[j]
                if it.type == "list_item_open" and it.level == 1 and it.map:
                    first = tokens[j + 1]
                    question, rest, body_start = None, "", it.map[0] + 1
                    if first.type == "paragraph_open" and first.map:
                        question, rest = _bold_question(tokens[j + 2])
                        body_start = first.map[1]
                    block.items.append(Item(it.map[0], it.map[1], body_start, question, rest))
                j += 1
            blocks.append(block)
            i = j
        elif t.type == "html_block" and (tag := _region_tag(t.content)):
            block = Block(tag, start, _region_end(lines, start, end, tag))
            if tag == "details":
                block.text, _ = _region_inner(block, lines)
                if is_question(block.text):
                    block.question = clean_text(block.text)
            blocks.append(block)
            while i + 1 < len(tokens) and (tokens[i + 1].map is None or tokens[i + 1].map[0] < block.end):
                i += 1
        else:
            blocks.append(Block("hr" if t.type == "hr" else "other", start, end))
        i += 1
    return lines, blocks


def tidy(text: str) -> str:
    """Strip trailing spaces, collapse runs of blank lines outside code, trim blank edges."""
    lines = [line.rstrip() for line in text.split("\n")]
    protected: set[int] = set()
    for t in _MD.parse("\n".join(lines)):
        if t.map and t.type in ("fence", "code_block", "math_block"):
            protected.update(range(t.map[0] + 1, t.map[1]))
    out: list[str] = []
    for i, line in enumerate(lines):
        if line == "" and (not out or out[-1] == "") and i not in protected:
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def emit(lines: list[str], blocks: list[Block], keep: list[bool], mode: str, start: int = 0,
         end: int | None = None, shift: int = 0) -> str:
    """The kept lines of [start, end) as Markdown for a body (`mode="body"`) or an answer.

    Body: headings move up by `shift` levels, <aside> becomes a block quote. Answer: headings
    become bold lines, <aside> is unwrapped. Both turn <details> into a bold summary + content.
    """
    end = len(lines) if end is None else end
    at = {b.start: b for b in blocks}
    out: list[str] = []
    ln = start
    while ln < end:
        b = at.get(ln)
        if not keep[ln]:
            ln += 1
            continue
        if b is not None and b.kind == "heading":
            if mode == "answer":
                out += ["", f"**{b.text}**", ""]
            else:
                hashes = "#" * max(1, min(6, b.level - shift))
                m = re.match(r" {0,3}(#{1,6})", lines[ln])
                out.append(f"{hashes} {lines[ln].strip()}" if b.setext or not m else
                           lines[ln][: m.start(1)] + hashes + lines[ln][m.end(1) :])
            ln = b.end
            continue
        if b is not None and b.kind in REGION_TAGS:
            summary, inner = _region_inner(b, lines)
            if b.kind == "aside" and mode == "body":
                out += ["", *(f"> {line}".rstrip() for line in inner.split("\n")), ""]
            else:
                out += ["", *([f"**{summary}**", ""] if summary else []), inner, ""]
            ln = b.end
            continue
        out.append(lines[ln])
        ln += 1
    return tidy("\n".join(out))


def answer(text: str) -> str:
    """A snippet of Markdown as an answer (headings to bold lines, callouts unwrapped)."""
    lines, blocks = scan(tidy(text))
    return emit(lines, blocks, [True] * len(lines), "answer")


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def extract(text: str, title_question: str | None = None) -> tuple[str, list[QA]]:
    """Split a section's text into (body, questions). `title_question`: the section's own
    heading when it is a question; its answer is the text before the first sub-heading."""
    lines, blocks = scan(text)
    keep = [True] * len(lines)
    found: list[QA] = []

    def stop(idx: int, level: int | None = None) -> int:
        for b in blocks[idx + 1 :]:
            if b.kind == "heading" and (level is None or b.level <= level or b.question):
                return b.start
            if level is None and (b.kind == "hr" or b.opens_question):
                return b.start
        return len(lines)

    def take(q: str, a: str, line: int, start: int, end: int) -> bool:
        if not a.strip():
            return False
        found.append(QA(q, a, line))
        keep[start:end] = [False] * (end - start)
        return True

    i = 0
    while i < len(blocks):
        b, end = blocks[i], blocks[i].end
        if b.kind == "heading" and b.question:
            end = stop(i, b.level)
            if not take(b.question, answer("\n".join(lines[b.end : end])), b.start, b.start, end):
                end = b.end
        elif b.kind == "paragraph" and b.question:
            end = stop(i)
            a = _join(answer(b.rest), answer("\n".join(lines[b.end : end])))
            if not take(b.question, a, b.start, b.start, end):
                end = b.end
        elif b.kind == "details" and b.question:
            take(b.question, answer(_region_inner(b, lines)[1]), b.start, b.start, b.end)
        elif b.kind == "list":
            for k, it in enumerate(b.items):
                if not it.question:
                    continue
                a = _join(answer(it.rest), answer(textwrap.dedent("\n".join(lines[it.body_start : it.end]))))
                item_end = it.end
                if not a and k == len(b.items) - 1:  # `- **Q？**` followed by an unindented answer (Notion)
                    item_end = stop(i)
                    a = answer("\n".join(lines[b.end : item_end]))
                if take(it.question, a, it.start, it.start, item_end):
                    end = max(end, item_end)
        i += 1
        while i < len(blocks) and blocks[i].start < end:
            i += 1
    if title_question:
        lead_end = next((b.start for b in blocks if b.kind == "heading" and keep[b.start]), len(lines))
        lead = emit(lines, blocks, keep, "answer", 0, lead_end)
        if lead:
            found.insert(0, QA(title_question, lead, -1))
            keep[:lead_end] = [False] * lead_end
    levels = [b.level for b in blocks if b.kind == "heading" and keep[b.start]]
    body = emit(lines, blocks, keep, "body", shift=min(levels) - 2 if levels else 0)
    return body, sorted(found, key=lambda qa: qa.line)


def split_sections(text: str, level: int) -> tuple[list[Section], list[int], int]:
    """(sections at `level`, heading levels present, first line of unimported text or -1).

    A section runs from its heading to the next heading at `level` or above; text outside
    every section (before the first one, or under a higher heading) is not imported.
    """
    lines, blocks = scan(text)
    heads = [b for b in blocks if b.kind == "heading"]
    sections: list[Section] = []
    covered = [False] * len(lines)
    parent = ""
    for n, h in enumerate(heads):
        if h.level < level:
            parent = h.text
            covered[h.start : h.end] = [True] * (h.end - h.start)
        if h.level != level:
            continue
        end = next((x.start for x in heads[n + 1 :] if x.level <= level), len(lines))
        sections.append(Section(h.text, h.start, "\n".join(lines[h.end : end]), parent))
        covered[h.start : end] = [True] * (end - h.start)
    dropped = next((i for i, line in enumerate(lines) if not covered[i] and line.strip()), -1)
    return sections, sorted({h.level for h in heads}), dropped


# -- links --------------------------------------------------------------------------------------

class Linker:
    """Rewrites wikilinks and links to .md files so that the bank resolves them.

    `names`: every name kb itself resolves (ids, titles, aliases, file stems), normalised, to an
    id. `extra`: names only the source knew (a note's file name, a heading before cleaning), to
    an id; links by those names are rewritten to `[[id|name]]`. `bodies`: id -> body, to keep a
    `#heading` anchor only where the heading exists. A link that resolves nowhere is kept (and
    listed in `unresolved`), so `kb check` reports it; links to local files are listed in `local`.
    """

    def __init__(self, names: dict[str, str], extra: dict[str, str], bodies: dict[str, str]) -> None:
        self.names, self.extra, self.bodies = names, extra, bodies
        self._slugs: dict[str, set[str]] = {}

    def find(self, name: str) -> tuple[str | None, bool]:
        """(id, whether kb resolves the name as written)."""
        name = name.strip()
        for variant in (name, name.removesuffix(".md"), name.removesuffix(".md").rsplit("/", 1)[-1]):
            if norm(variant) in self.names:
                return self.names[norm(variant)], variant == name
        key = norm(NOTION_HASH.sub("", name.removesuffix(".md").rsplit("/", 1)[-1]))
        return self.extra.get(key, self.names.get(key)), False

    def anchor_ok(self, entry_id: str, anchor: str | None) -> bool:
        if not anchor or anchor.startswith("^"):
            return False
        if entry_id not in self._slugs:
            self._slugs[entry_id] = {h.slug for h in markdown.parse(self.bodies.get(entry_id, "")).headings}
        return markdown.slugify(anchor) in self._slugs[entry_id]

    def rewrite(self, text: str, self_id: str, unresolved: list[str], local: list[str]) -> str:
        if "[[" not in text and ".md" not in text and "](" not in text:
            return text
        lines = text.split("\n")
        parsed = markdown.parse(text)
        for tok in parsed.tokens:
            if not tok.children or not tok.map:
                continue
            span = range(tok.map[0], tok.map[1])
            for child in tok.children:
                for old, new in self._replacements(child, self_id, unresolved, local, lines, span):
                    for i in span:
                        lines[i] = lines[i].replace(old, new)
        return "\n".join(lines)

    def _replacements(self, child: Token, self_id: str, unresolved: list[str], local: list[str], lines: list[str],
                      span: range) -> Iterator[tuple[str, str]]:
        """(written, replacement) pairs for one inline token."""
        if child.type == "wikilink":
            target, anchor, label = child.meta["target"], child.meta["anchor"], child.meta["label"]
            old = child.content
            embed = any("!" + old in lines[i] for i in span)
            if "." in target and target.rsplit(".", 1)[-1].lower() in MEDIA:  # ![[diagram.png]]
                image = embed and not target.lower().endswith(".pdf")
                shown = f"![{Path(target).stem}]" if image else f"[{target}]"
                yield ("!" + old if embed else old), f"{shown}({quote(target)})"
                local.append(target)
                return
            dest, as_written = (self_id, True) if not target else self.find(target)
            if dest is None:
                unresolved.append(old)
                return
            keep_anchor = self.anchor_ok(dest, anchor)
            if not target and not keep_anchor:
                yield ("!" + old if embed else old), (label or anchor or "")
                return
            if as_written and (keep_anchor or not anchor) and not embed:
                return
            shown = label or (None if as_written else target)
            new = f"[[{target if as_written else dest}{'#' + anchor if keep_anchor else ''}"
            new += f"{'|' + shown if shown else ''}]]"
            yield ("!" + old if embed else old), new
        elif child.type in ("link_open", "image"):
            href = str(child.attrGet("href") or child.attrGet("src") or "")
            if not href or "://" in href or href.startswith(("#", "/", "mailto:", "data:")):
                return
            path, _, anchor = href.partition("#")
            if not unquote(path).lower().endswith(".md") or child.type == "image":
                local.append(unquote(path))
                return
            dest, _ = self.find(unquote(path).rsplit("/", 1)[-1])  # Notion: "Page 0123...cdef.md"
            if dest is None:
                unresolved.append(f"({unquote(path)})")
                return
            new = f"{dest}.md" + (f"#{unquote(anchor)}" if self.anchor_ok(dest, unquote(anchor)) else "")
            for written in (f"<{unquote(href)}>", href, unquote(href)):
                yield f"]({written}", f"]({new}"
