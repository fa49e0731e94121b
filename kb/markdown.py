"""Markdown rendering: one configured markdown-it-py, parsed once per text.

`parse()` returns tokens plus what the rest of the core needs from them (links with
their lines, headings, plain text); links are resolved on the tokens, then `render()`
turns the same tokens into HTML. Raw HTML in entries is escaped, never passed through.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from dataclasses import dataclass, field
from functools import lru_cache

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from kb.model import Heading

WIKILINK_RE = re.compile(r"\[\[([^\[\]\n|#]*)(?:#([^\[\]\n|]*))?(?:\|([^\[\]\n]*))?\]\]")


@dataclass
class RawLink:
    """A link found in Markdown, before resolution: `target` is what the author wrote."""

    target: str
    anchor: str | None
    label: str | None
    line: int  # 1-based, relative to the start of the parsed text
    token: Token
    kind: str  # "wikilink" or "md"


@dataclass
class Parsed:
    tokens: list[Token]
    env: dict
    links: list[RawLink] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
    math_errors: list[tuple[int, str]] = field(default_factory=list)
    text: str = ""


def slugify(title: str) -> str:
    """Heading slug: lowercase, spaces to dashes, keep letters, digits and CJK."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", title.strip().lower().replace(" ", "-"))


# latex2mathml copies \text{...} verbatim and turns \href, \style and \class into attributes, so
# `$\text{<img/src="x"/onerror="...">}$` or `$\href{javascript:...}{x}$` would put live HTML into
# the page. Its output is rebuilt from an allowlist: MathML elements and presentation attributes
# only, every text and attribute value escaped.
MATHML_TAGS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup mfrac msqrt mroot mstyle mtable mtr mtd mlabeledtr "
    "mover munder munderover mpadded mphantom menclose merror mmultiscripts mprescripts none semantics "
    "annotation maligngroup malignmark".split())
MATHML_ATTRS = frozenset(
    "display mathvariant mathsize mathcolor mathbackground dir stretchy fence separator lspace rspace accent "
    "accentunder linethickness columnalign rowalign columnspacing rowspacing columnlines rowlines frame "
    "framespacing width height depth notation displaystyle scriptlevel movablelimits largeop symmetric "
    "minsize maxsize form open close separators align columnspan rowspan equalrows equalcolumns voffset "
    "bevelled numalign denomalign encoding".split())
MATHML_NS = "http://www.w3.org/1998/Math/MathML"


class _MathMLSanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag not in MATHML_TAGS:
            return False
        kept = "".join(f' {k}="{html.escape(v or "", quote=True)}"' for k, v in attrs if k in MATHML_ATTRS)
        if tag == "math":
            kept = f' xmlns="{MATHML_NS}"' + kept
        self.out.append(f"<{tag}{kept}>")
        return True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._start(tag, attrs):
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._start(tag, attrs):
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open:
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{t}>" for t in reversed(self.open))


def sanitize_mathml(markup: str) -> str:
    """`markup` with only MathML elements and presentation attributes left, all text escaped."""
    parser = _MathMLSanitizer()
    parser.feed(markup)
    return parser.result()


@lru_cache(maxsize=4096)
def _math(content: str, display: bool) -> str:
    return sanitize_mathml(latex_to_mathml(content, display="block" if display else "inline"))


def math_error(content: str) -> str | None:
    """The reason LaTeX cannot be converted to MathML, or None when it can."""
    try:
        _math(content, False)
    except Exception as exc:  # latex2mathml raises many types on bad input
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _render_math(content: str, config: dict) -> str:
    try:
        return _math(content, bool(config.get("display_mode")))
    except Exception:
        return f'<code class="math-error">{html.escape(content)}</code>'


_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    lang = (lang or "").strip().split()[0] if lang else ""
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    body = highlight(code, lexer, _FORMATTER) if lexer else html.escape(code)
    cls = f' class="language-{html.escape(lang)}"' if lang else ""
    return f'<pre class="highlight"><code{cls}>{body}</code></pre>\n'


def _wikilink_rule(state: StateInline, silent: bool) -> bool:
    if not state.src.startswith("[[", state.pos):
        return False
    match = WIKILINK_RE.match(state.src, state.pos)
    if not match:
        return False
    if not silent:
        token = state.push("wikilink", "a", 0)
        token.meta = {
            "target": match.group(1).strip(),
            "anchor": (match.group(2) or "").strip() or None,
            "label": (match.group(3) or "").strip() or None,
        }
        token.content = match.group(0)
    state.pos = match.end()
    return True


def wikilinks_plugin(md: MarkdownIt) -> None:
    """`[[target]]`, `[[target#heading]]`, `[[target|label]]` become `wikilink` tokens.

    The href is set later, by link resolution, in `token.attrs`; an unresolved link
    renders as plain text so a broken link is never a clickable dead end.
    """
    md.inline.ruler.before("link", "wikilink", _wikilink_rule)

    def render(self, tokens, idx, _options, _env):  # noqa: ANN001
        token = tokens[idx]
        label = html.escape(token.meta.get("display") or token.meta["label"] or token.meta["target"])
        href = token.attrGet("href")
        if not href:
            return f'<span class="wikilink broken">{label}</span>'
        return f'<a class="wikilink" href="{html.escape(str(href))}">{label}</a>'

    md.add_render_rule("wikilink", render)


def make_md() -> MarkdownIt:
    """The one Markdown configuration of the bank."""
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin)
    md.use(dollarmath_plugin, renderer=_render_math, double_inline=True, allow_digits=False)
    md.use(anchors_plugin, min_level=1, max_level=4, slug_func=slugify)
    md.use(wikilinks_plugin)
    # Tables scroll on narrow screens: wrap them.
    md.add_render_rule("table_open", lambda *a: '<div class="table-wrap"><table>\n')
    md.add_render_rule("table_close", lambda *a: "</table></div>\n")
    return md


_MD = make_md()
_MD.disable(["html_block", "html_inline"])  # with "html": False they match nothing: not tried at every block


def _is_local_md(href: str) -> bool:
    return bool(href) and "://" not in href and not href.startswith(("#", "/", "mailto:")) and (
        href.split("#", 1)[0].endswith(".md")
    )


def parse(text: str) -> Parsed:
    """Parse Markdown once; collect links (with lines), headings, math errors and plain text."""
    env: dict = {}
    tokens = _MD.parse(text, env)
    parsed = Parsed(tokens=tokens, env=env)
    words: list[str] = []
    for i, tok in enumerate(tokens):
        line = (tok.map[0] + 1) if tok.map else 1
        if tok.type == "heading_open":
            inline = tokens[i + 1]
            title = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
            parsed.headings.append(Heading(int(tok.tag[1]), title, str(tok.attrGet("id") or "")))
        if tok.type in ("math_block", "math_block_label"):
            if err := math_error(tok.content):
                parsed.math_errors.append((line, err))
            words.append(tok.content)
        if tok.type in ("fence", "code_block"):
            words.append(tok.content)
        cursor = 0  # inline children carry no lines: find each link in the block's source
        for child in tok.children or []:
            if child.type in ("wikilink", "link_open"):
                needle = child.content if child.type == "wikilink" else str(child.attrGet("href") or "")
                found = tok.content.find(needle, cursor) if needle else -1
                if found >= 0:
                    cursor = found + len(needle)
                line = (tok.map[0] + 1 if tok.map else 1) + tok.content.count("\n", 0, max(found, 0))
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type == "math_inline" or child.type == "math_inline_double":
                if err := math_error(child.content):
                    parsed.math_errors.append((line, err))
                words.append(child.content)
            elif child.type == "wikilink":
                meta = child.meta
                words.append(meta["label"] or meta["target"])
                parsed.links.append(
                    RawLink(meta["target"], meta["anchor"], meta["label"], line, child, "wikilink")
                )
            elif child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if _is_local_md(href):
                    path, _, anchor = href.partition("#")
                    target = path.rsplit("/", 1)[-1][: -len(".md")]
                    parsed.links.append(RawLink(target, anchor or None, None, line, child, "md"))
            elif child.type == "softbreak":
                words.append("\n")
        if tok.type.endswith("_close") and tok.block:
            words.append("\n")
    parsed.text = re.sub(r"[ \t]*\n\s*", "\n", " ".join(words)).strip()
    return parsed


def render(parsed: Parsed) -> str:
    """HTML of parsed tokens (after their links were resolved)."""
    return _MD.renderer.render(parsed.tokens, _MD.options, parsed.env)

