"""Answers as chat text: Markdown -> a small block/span model -> each platform's markup, cut cleanly.

The corpus keeps answers as Markdown and HTML; chat platforms want their own markup (Slack
mrkdwn, Telegram HTML, Discord/DingTalk/WeCom Markdown dialects, Feishu rich-text elements).
The answer is tokenised with the core's one Markdown configuration (`kb.markdown.parse`, the
same parser the site uses) and reduced to paragraphs of styled spans, which every platform
renders with its own escaping. Wikilinks show their label (or target, as written), like the
site; math shows its TeX source as code; tables become one line per row; footnotes are left out.

`cut()` shortens an answer to fit: whole paragraphs first, then the last paragraph at a
sentence end, and only when a single sentence is too long, at a character, marking the cut
with "…".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from kb.markdown import parse

ELLIPSIS = "…"
# Where a sentence (or clause, for long Chinese sentences) may end: after these characters.
SENTENCE_END = re.compile(r"[。！？!?；;](?:[”’」』）)\]]*)|\.(?=\s)|\n")


@dataclass(frozen=True)
class Span:
    text: str
    bold: bool = False
    italic: bool = False
    strike: bool = False
    code: bool = False  # inline code, and TeX math shown as code
    href: str | None = None


@dataclass(frozen=True)
class Block:
    """A paragraph (`spans`, with a list `prefix` such as "• ") or a code block (`code`)."""

    spans: tuple[Span, ...] = ()
    prefix: str = ""
    code: str | None = None
    tight: bool = False  # follows the previous block on the next line (list items, table rows)

    @property
    def plain(self) -> str:
        return self.prefix + (self.code if self.code is not None else "".join(s.text for s in self.spans))


def _is_url(href: str) -> bool:
    return href.startswith(("http://", "https://"))


def _spans(children: list) -> list[Span]:  # noqa: ANN001
    out: list[Span] = []
    style = {"bold": 0, "italic": 0, "strike": 0}
    hrefs: list[str | None] = []

    def add(text: str, **kw: object) -> None:
        if not text:
            return
        span = Span(text, bold=style["bold"] > 0, italic=style["italic"] > 0, strike=style["strike"] > 0,
                    href=next((h for h in reversed(hrefs) if h), None), **kw)  # type: ignore[arg-type]
        if out and replace(out[-1], text="") == replace(span, text=""):
            out[-1] = replace(out[-1], text=out[-1].text + text)
        else:
            out.append(span)

    for c in children:
        t = c.type
        if t == "text":
            add(c.content)
        elif t in ("softbreak", "hardbreak"):
            add("\n" if t == "hardbreak" else " ")
        elif t == "code_inline":
            add(c.content, code=True)
        elif t in ("math_inline", "math_inline_double"):
            add(c.content.strip(), code=True)
        elif t == "wikilink":
            add(c.meta.get("label") or c.meta.get("target") or "")
        elif t == "image":
            add(c.content or "")
        elif t.endswith("_open") and t[:-5] in ("strong", "em", "s"):
            style[{"strong": "bold", "em": "italic", "s": "strike"}[t[:-5]]] += 1
        elif t.endswith("_close") and t[:-6] in ("strong", "em", "s"):
            key = {"strong": "bold", "em": "italic", "s": "strike"}[t[:-6]]
            style[key] = max(0, style[key] - 1)
        elif t == "link_open":
            href = str(c.attrGet("href") or "")
            hrefs.append(href if _is_url(href) else None)
        elif t == "link_close" and hrefs:
            hrefs.pop()
    # CommonMark soft breaks between CJK characters read as nothing, not a space.
    return [replace(s, text=re.sub(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])", "", s.text))
            if not s.code else s for s in out]


def blocks_of(markdown_text: str) -> list[Block]:
    """The answer's paragraphs, list items, table rows and code blocks, in order."""
    tokens = parse(markdown_text).tokens
    blocks: list[Block] = []
    lists: list[list] = []  # per open list: [ordered, next number]
    pending_prefix = ""
    row: list[str] = []
    first_row = True
    skip = 0  # inside a footnote block
    for i, tok in enumerate(tokens):
        t = tok.type
        if t == "footnote_block_open":
            skip += 1
        elif t == "footnote_block_close":
            skip -= 1
        if skip:
            continue
        if t in ("bullet_list_open", "ordered_list_open"):
            start = tok.attrGet("start")
            lists.append([t == "ordered_list_open", int(start) if start else 1])
        elif t in ("bullet_list_close", "ordered_list_close") and lists:
            lists.pop()
        elif t == "list_item_open" and lists:
            ordered, number = lists[-1]
            indent = "  " * (len(lists) - 1)
            pending_prefix = indent + (f"{number}. " if ordered else "• ")
            lists[-1][1] = number + 1
        elif t == "inline" and tokens[i - 1].type in ("paragraph_open", "heading_open"):
            spans = _spans(tok.children or [])
            if tokens[i - 1].type == "heading_open":
                spans = [replace(s, bold=True) for s in spans]
            if spans:
                prefix = pending_prefix or ("  " * len(lists) if lists else "")
                tight = bool(lists) and bool(blocks) and (bool(blocks[-1].prefix) or blocks[-1].tight)
                blocks.append(Block(tuple(spans), prefix, tight=tight and bool(pending_prefix)))
                pending_prefix = ""
        elif t == "tr_open":
            row, first_row = [], tokens[i - 1].type in ("thead_open", "table_open")
        elif t == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            row.append("".join(s.text for s in _spans(tok.children or [])))
        elif t == "tr_close":
            blocks.append(Block((Span(" | ".join(row)),), tight=not first_row))
        elif t in ("fence", "code_block"):
            blocks.append(Block(code=tok.content.rstrip("\n")))
        elif t in ("math_block", "math_block_label"):
            blocks.append(Block((Span(tok.content.strip(), code=True),)))
    return blocks


def _cut_spans(spans: tuple[Span, ...], at: int) -> tuple[Span, ...]:
    """The first `at` characters of a paragraph's text, styles kept, with an ellipsis."""
    out, left = [], at
    for s in spans:
        if left <= 0:
            break
        out.append(s if len(s.text) <= left else replace(s, text=s.text[:left]))
        left -= len(s.text)
    if out and not out[-1].code:
        out[-1] = replace(out[-1], text=out[-1].text.rstrip() + ELLIPSIS)
    else:
        out.append(Span(ELLIPSIS))
    return tuple(out)


def _sentence_cuts(block: Block) -> list[int]:
    """Offsets (in the block's text, decreasing) just after each sentence end outside code."""
    if block.code is not None:
        text = block.code
        return sorted({m.end() for m in re.finditer(r"\n", text)}, reverse=True)
    cuts, pos = set(), 0
    for s in block.spans:
        if not s.code:
            cuts.update(pos + m.end() for m in SENTENCE_END.finditer(s.text))
        pos += len(s.text)
    return sorted((c for c in cuts if 0 < c < pos), reverse=True)


def _cut_block(block: Block, at: int) -> Block:
    if block.code is not None:
        return replace(block, code=block.code[:at].rstrip("\n") + "\n" + ELLIPSIS)
    return replace(block, spans=_cut_spans(block.spans, at))


def _mark(block: Block) -> Block:
    """A block that ends where the answer was cut at a paragraph boundary: add the ellipsis."""
    if block.code is not None:
        return replace(block, code=block.code + "\n" + ELLIPSIS)
    spans = list(block.spans)
    if spans and not spans[-1].code:
        spans[-1] = replace(spans[-1], text=spans[-1].text.rstrip() + ELLIPSIS)
    else:
        spans.append(Span(ELLIPSIS))
    return replace(block, spans=tuple(spans))


def candidates(blocks: list[Block]) -> Iterator[tuple[list[Block], bool]]:
    """The answer, then ever shorter clean cuts of it: (blocks, was_cut), longest first.
    A cut answer always ends with "…"."""
    yield blocks, False
    for i in range(len(blocks) - 1, -1, -1):
        for at in _sentence_cuts(blocks[i]):
            yield blocks[:i] + [_cut_block(blocks[i], at)], True
        if i > 0:
            yield blocks[: i - 1] + [_mark(blocks[i - 1])], True
    if blocks:  # one long first sentence: cut it at a character, halving until it fits
        size = len(blocks[0].plain) - len(blocks[0].prefix)
        while size > 1:
            size //= 2
            yield [_cut_block(blocks[0], size)], True
    yield [], True


def cut(blocks: list[Block], fits: Callable[[list[Block], bool], bool]) -> tuple[list[Block], bool]:
    """The longest candidate for which `fits(blocks, was_cut)` holds (the empty answer last)."""
    for cand, was_cut in candidates(blocks):
        if fits(cand, was_cut):
            return cand, was_cut
    return [], True


def plain_length(blocks: list[Block]) -> int:
    return sum(len(b.plain) for b in blocks)


# ---- per-platform inline markup ------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length as JavaScript and Telegram count it (characters outside the BMP count twice)."""
    return len(text.encode("utf-16-le")) // 2


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attr_escape(text: str) -> str:
    return html_escape(text).replace('"', "&quot;")


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|<>\[\]()@])|^([#-])", re.MULTILINE)


def discord_escape(text: str) -> str:
    """Backslash-escape Discord Markdown (a backslash before punctuation shows it literally)."""
    return _DISCORD_SPECIAL.sub(lambda m: "\\" + (m.group(1) or m.group(2)), text)


def _code(text: str, tick: str = "`") -> str:
    text = text.replace("\n", " ")
    return f"{tick}{text}{tick}" if tick not in text else f"{tick * 2} {text} {tick * 2}"


def render_span(span: Span, dialect: str) -> str:
    """One span in a dialect: plain, slack, discord, telegram, markdown (DingTalk/WeCom)."""
    text = span.text
    if dialect == "plain":
        return text
    if dialect == "slack":
        out = _code(slack_escape(text)) if span.code else slack_escape(text)
        if not span.code:
            if span.bold and out.strip():
                out = f"*{out}*"
            if span.italic and out.strip():
                out = f"_{out}_"
            if span.strike and out.strip():
                out = f"~{out}~"
        return f"<{slack_escape(span.href)}|{out}>" if span.href else out
    if dialect == "discord":
        out = _code(text) if span.code else discord_escape(text)
        if not span.code and out.strip():
            out = f"**{out}**" if span.bold else out
            out = f"*{out}*" if span.italic else out
            out = f"~~{out}~~" if span.strike else out
        return f"[{out}](<{span.href}>)" if span.href else out
    if dialect == "telegram":
        out = html_escape(text)
        for on, tag in ((span.code, "code"), (span.bold, "b"), (span.italic, "i"), (span.strike, "s")):
            if on and out.strip():
                out = f"<{tag}>{out}</{tag}>"
        return f'<a href="{attr_escape(span.href)}">{out}</a>' if span.href else out
    if dialect == "markdown":
        out = _code(text) if span.code else text
        if span.bold and not span.code and out.strip():
            out = f"**{out}**"
        return f"[{out}]({span.href})" if span.href else out
    raise ValueError(f"unknown dialect {dialect}")


def render_blocks(blocks: list[Block], dialect: str, sep: str = "\n\n", tight_sep: str = "\n") -> str:
    """Blocks in a dialect, joined by `sep` (`tight_sep` before list items and table rows)."""
    parts = []
    for n, b in enumerate(blocks):
        if n:
            parts.append(tight_sep if b.tight else sep)
        if b.code is not None:
            if dialect in ("slack", "discord"):
                body = b.code.replace("```", "`\u200b``")
                parts.append(f"```\n{body}\n```" if dialect == "discord" else f"```{slack_escape(body)}```")
            elif dialect == "telegram":
                parts.append(f"<pre>{html_escape(b.code)}</pre>")
            else:
                parts.append(b.code)
        else:
            prefix = html_escape(b.prefix) if dialect == "telegram" else b.prefix
            if dialect == "discord":
                prefix = discord_escape(prefix)
            parts.append(prefix + "".join(render_span(s, dialect) for s in b.spans))
    return "".join(parts)
